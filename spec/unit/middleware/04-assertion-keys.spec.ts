import { createPublicKey, createSecretKey, generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from '@jest/globals'
import { AssertionSigner, parseAssertion } from '../../../plugins/consumer-jwt/assertion'
import { algorithmOfKey, importAssertionKey } from '../../../plugins/shared/gateway-assertion-keys'
import { createAssertionVerifier } from '../../../middleware/verify'

const NOW = 1_800_000_000
const WEB = { id: '0a0a0a0a-0000-4000-8000-000000000001', username: 'web-app' }

const pairs = {
  EdDSA: () => generateKeyPairSync('ed25519'),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
} as const

describe('gateway assertion keys: the rules signer and verifier share', () => {
  it.each(Object.keys(pairs) as (keyof typeof pairs)[])(
    'gives %s for both keys of its pair, and the middleware verifies what consumer-jwt signs with it',
    async (algorithm) => {
      const { privateKey, publicKey } = pairs[algorithm]()
      expect(algorithmOfKey(privateKey)).toEqual({ algorithm })
      expect(algorithmOfKey(publicKey)).toEqual({ algorithm })
      const config = parseAssertion(
        {
          assertion: {
            audience: 'orders',
            private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          },
        },
        {},
      )
      expect(config?.algorithm).toBe(algorithm)
      if (config === undefined) throw new Error('assertion off')
      const signed = await new AssertionSigner(config, { now: () => NOW * 1000 }).sign({
        consumer: WEB,
        credential: 'web',
        subject: undefined,
        scopes: [],
        method: 'GET',
        path: '/orders/1',
      })
      const verifier = createAssertionVerifier({
        audience: 'orders',
        algorithm,
        publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        now: () => NOW * 1000,
      })
      await expect(
        verifier.verify({
          method: 'GET',
          url: '/orders/1',
          headers: { 'x-gateway-assertion': signed },
        }),
      ).resolves.toMatchObject({ consumer: WEB, credential: 'web' })
    },
  )

  it('says why a key signs none of the algorithms', () => {
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey
    expect(algorithmOfKey(rsa1024)).toEqual({ problem: 'an RSA key must have 2048 bits or more' })
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
    expect(algorithmOfKey(p384)).toEqual({
      problem: 'a ec key on secp384r1 signs none of EdDSA (Ed25519), ES256 (P-256), RS256',
    })
    const x25519 = generateKeyPairSync('x25519').publicKey
    expect(algorithmOfKey(x25519).problem).toMatch(/^a x25519 key signs none of/)
    expect(algorithmOfKey(createSecretKey(Buffer.alloc(32))).problem).toMatch(
      /^a unknown key signs none of/,
    )
  })

  it('imports a secret for HS256 only, a private key to sign and a public key to verify', async () => {
    const secret = new TextEncoder().encode('the-gateway-assertion-secret-of-32+-bytes')
    await expect(importAssertionKey('HS256', secret, 'sign')).resolves.toMatchObject({
      usages: ['sign'],
    })
    await expect(importAssertionKey('HS256', secret, 'verify')).resolves.toMatchObject({
      usages: ['verify'],
    })
    await expect(importAssertionKey('EdDSA', secret, 'verify')).rejects.toThrow(
      'a secret signs HS256, not EdDSA',
    )
    const { privateKey, publicKey } = pairs.EdDSA()
    await expect(importAssertionKey('EdDSA', privateKey, 'sign')).resolves.toMatchObject({
      type: 'private',
    })
    await expect(importAssertionKey('EdDSA', publicKey, 'verify')).resolves.toMatchObject({
      type: 'public',
    })
    await expect(importAssertionKey('EdDSA', publicKey, 'sign')).rejects.toThrow(TypeError)
    await expect(importAssertionKey('EdDSA', privateKey, 'verify')).rejects.toThrow(TypeError)
    await expect(
      importAssertionKey('HS256', createPublicKey(privateKey), 'verify'),
    ).rejects.toThrow('HS256 takes a secret')
  })
})
