import { createHmac, createSign, KeyObject } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { beforeAll, describe, expect, it, jest } from '@jest/globals'
import { exportJWK } from 'jose'
import { buildRuntime } from '../../../../plugins/consumer-jwt/handler'
import type { Clock } from '../../../../plugins/shared/clock'
import { HS_SECRET, keyPair, mint, secretKey, unsigned } from '../../../helpers/tokens'

// The attack catalogue of the README's security section: each test is one named attack, run
// against the verifier the plugin uses (buildRuntime, as in 02-core.spec.ts). Every forged
// token below that carries an HMAC is signed with the credential's real secret, so a refusal
// comes from the rule under test and not from a bad signature.

const NOW = 1_800_000_000
const clock: Clock = { now: () => NOW * 1000 }
const b64 = (text: string) => Buffer.from(text).toString('base64url')

/** A token with the header and payload written as raw JSON text, HMAC-signed with `secret`. */
function forgeHs(headerJson: string, payloadJson: string, secret = HS_SECRET, alg = 'sha256') {
  const input = `${b64(headerJson)}.${b64(payloadJson)}`
  return `${input}.${createHmac(alg, secret).update(input).digest('base64url')}`
}

const claims = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ iss: 'web', aud: 'orders', sub: 'u1', iat: NOW, exp: NOW + 60, ...extra })

let rsa: Awaited<ReturnType<typeof keyPair>>
let ec: Awaited<ReturnType<typeof keyPair>>
let ec2: Awaited<ReturnType<typeof keyPair>>
let attacker: Awaited<ReturnType<typeof keyPair>>

beforeAll(async () => {
  ;[rsa, ec, ec2, attacker] = await Promise.all([
    keyPair('RS256'),
    keyPair('ES256', 'ec-1'),
    keyPair('ES256', 'ec-2'),
    keyPair('RS256', 'attacker'),
  ])
})

const fetchSpy = jest.fn<typeof fetch>()

function runtime(extra: Record<string, unknown> = {}) {
  return buildRuntime(
    {
      credentials: [
        {
          key: 'web',
          consumer: 'web-app',
          issuer: 'web',
          algorithms: ['HS256'],
          secret: HS_SECRET,
          audiences: ['orders'],
        },
        { key: 'partner', consumer: 'partner-acme', algorithms: ['RS256'], public_key: rsa.pem },
        {
          key: 'mobile',
          consumer: 'mobile-app',
          algorithms: ['ES256'],
          jwks: JSON.stringify({ keys: [ec.jwk] }),
        },
        {
          key: 'globex',
          consumer: 'partner-globex',
          algorithms: ['ES256'],
          jwks: JSON.stringify({ keys: [ec2.jwk] }),
        },
      ],
      ...extra,
    },
    { clock, env: {}, fetch: fetchSpy },
  )
}

async function codeOf(token: string, rt = runtime()): Promise<string> {
  try {
    await rt.verifier.verify(token)
  } catch (e) {
    return (e as { code: string }).code
  }
  return 'PASSED'
}

describe('consumer-jwt: (attack catalogue)', () => {
  it('accepts the well-formed forged-by-hand token the attacks start from', async () => {
    expect(await codeOf(forgeHs('{"alg":"HS256","typ":"JWT"}', claims()))).toBe('PASSED')
  })

  it('alg none: refuses an unsigned token whatever the casing of none', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const token = unsigned(JSON.parse(claims()) as Record<string, unknown>, { alg })
      expect([alg, await codeOf(token)]).toEqual([alg, 'ERR_ALGORITHM_NOT_ALLOWED'])
      // …and with the HMAC left on: the alg header still decides nothing.
      const signed = forgeHs(JSON.stringify({ alg }), claims())
      expect([alg, await codeOf(signed)]).toEqual([alg, 'ERR_ALGORITHM_NOT_ALLOWED'])
    }
  })

  it('HS/RS confusion: refuses a token HMAC-signed with the public key of an RS256 credential', async () => {
    const pem = rsa.pem
    const der = KeyObject.from(rsa.pair.publicKey).export({ type: 'spki', format: 'der' })
    for (const secret of [pem, pem.trim(), der.toString('binary')]) {
      const token = forgeHs(
        '{"alg":"HS256"}',
        JSON.stringify({ iss: 'partner', exp: NOW + 60 }),
        secret,
      )
      expect(await codeOf(token)).toBe('ERR_ALGORITHM_NOT_ALLOWED')
    }
  })

  it('alg swapped within a family: refuses HS512 for an HS256 credential, RS512 and PS256 for an RS256 one', async () => {
    expect(await codeOf(forgeHs('{"alg":"HS512"}', claims(), HS_SECRET, 'sha512'))).toBe(
      'ERR_ALGORITHM_NOT_ALLOWED',
    )
    for (const alg of ['RS512', 'PS256']) {
      const token = await mint({ iss: 'partner' }, { alg, key: rsa.pair.privateKey, now: NOW })
      expect([alg, await codeOf(token)]).toEqual([alg, 'ERR_ALGORITHM_NOT_ALLOWED'])
    }
  })

  it('kid injection: a kid is only ever compared with the credential keys, never used as a path or query', async () => {
    for (const kid of ['../../../../dev/null', "' OR '1'='1", '/etc/passwd', '', 'ec-1\u0000']) {
      const header = JSON.stringify({ alg: 'ES256', kid })
      const input = `${b64(header)}.${b64(JSON.stringify({ iss: 'mobile', exp: NOW + 60 }))}`
      const sig = createSign('SHA256')
        .update(input)
        .sign({ key: KeyObject.from(attacker.pair.privateKey), dsaEncoding: 'ieee-p1363' })
      expect(await codeOf(`${input}.${sig.toString('base64url')}`)).not.toBe('PASSED')
    }
    // Selecting the credential by kid: an injected kid names no credential.
    const byKid = runtime({ key_claim_name: 'kid' })
    const token = forgeHs(JSON.stringify({ alg: 'HS256', kid: '../web' }), claims())
    expect(await codeOf(token, byKid)).toBe('ERR_CREDENTIAL_UNKNOWN')
  })

  it('jku, x5u, jwk and x5c headers are ignored: a token signed by a key it names itself is refused, and nothing is fetched', async () => {
    let hits = 0
    const server: Server = createServer((_req, res) => {
      hits++
      res.end(JSON.stringify({ keys: [attacker.jwk] }))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
    const globalFetch = jest.spyOn(globalThis, 'fetch')
    try {
      const attackerJwk = await exportJWK(attacker.pair.publicKey)
      const headers = [
        { jku: url, kid: 'attacker' },
        { x5u: url },
        { jwk: attackerJwk },
        { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] },
      ]
      for (const extra of headers) {
        const input = `${b64(JSON.stringify({ alg: 'RS256', ...extra }))}.${b64(JSON.stringify({ iss: 'partner', exp: NOW + 60 }))}`
        const sig = createSign('RSA-SHA256')
          .update(input)
          .sign(KeyObject.from(attacker.pair.privateKey))
          .toString('base64url')
        expect([Object.keys(extra)[0], await codeOf(`${input}.${sig}`)]).toEqual([
          Object.keys(extra)[0],
          'ERR_SIGNATURE_INVALID',
        ])
      }
      expect(hits).toBe(0)
      expect(globalFetch).not.toHaveBeenCalled()
      expect(fetchSpy).not.toHaveBeenCalled()
    } finally {
      globalFetch.mockRestore()
      await new Promise((r) => server.close(r))
    }
  })

  it('crit: refuses a token whose crit names an extension it does not understand', async () => {
    const token = forgeHs('{"alg":"HS256","crit":["exp-x"],"exp-x":true}', claims())
    expect(await codeOf(token)).not.toBe('PASSED')
    expect(['ERR_ALGORITHM_NOT_ALLOWED', 'ERR_TOKEN_MALFORMED']).toContain(await codeOf(token))
  })

  it('b64: false: refuses an unencoded payload (RFC 7797)', async () => {
    const header = '{"alg":"HS256","b64":false,"crit":["b64"]}'
    const payload = claims()
    // Signed over the raw payload (what b64: false means), and over the encoded one.
    const raw = `${b64(header)}.${payload}`
    const rawSig = createHmac('sha256', HS_SECRET).update(raw).digest('base64url')
    expect(await codeOf(`${raw}.${rawSig}`)).toBe('ERR_TOKEN_MALFORMED')
    expect(await codeOf(`${b64(header)}..${rawSig}`)).not.toBe('PASSED')
    expect(await codeOf(forgeHs(header, payload))).toBe('ERR_TOKEN_MALFORMED')
  })

  it('nested JWT: refuses a token whose payload is another token (cty: JWT), signed or not', async () => {
    const inner = forgeHs('{"alg":"HS256"}', claims())
    expect(await codeOf(forgeHs('{"alg":"HS256","cty":"JWT"}', JSON.stringify(inner)))).toBe(
      'ERR_TOKEN_MALFORMED',
    )
    const raw = `${b64('{"alg":"HS256","cty":"JWT"}')}.${b64(inner)}`
    const sig = createHmac('sha256', HS_SECRET).update(raw).digest('base64url')
    expect(await codeOf(`${raw}.${sig}`)).toBe('ERR_TOKEN_MALFORMED')
  })

  it('JWE: refuses an encrypted token (five parts) without trying to decrypt it', async () => {
    const jwe = `${b64('{"alg":"dir","enc":"A256GCM"}')}..${b64('iv')}.${b64('ciphertext')}.${b64('tag')}`
    expect(await codeOf(jwe)).toBe('ERR_TOKEN_MALFORMED')
  })

  it('oversize token: refuses a token over 8192 characters before decoding it', async () => {
    const big = forgeHs('{"alg":"HS256"}', claims({ pad: 'x'.repeat(7000) }))
    expect(big.length).toBeGreaterThan(8192)
    expect(await codeOf(big)).toBe('ERR_TOKEN_MALFORMED')
    const justUnder = forgeHs('{"alg":"HS256"}', claims({ pad: 'x'.repeat(5800) }))
    expect(justUnder.length).toBeLessThanOrEqual(8192)
    expect(await codeOf(justUnder)).toBe('PASSED')
  })

  it('bad base64url: refuses segments with padding, the + / alphabet, spaces or non-ASCII', async () => {
    const good = forgeHs('{"alg":"HS256"}', claims())
    const [h, p, s] = good.split('.') as [string, string, string]
    const variants = [
      `${h}=.${p}.${s}`,
      `${h}.${p}==.${s}`,
      `${h.replace(/-/g, '+').replace(/_/g, '/')}+/.${p}.${s}`,
      `${h}.${p.slice(0, 10)} ${p.slice(10)}.${s}`,
      `${h}.${p}é.${s}`,
      `${h}.${p}.${s}*`,
    ]
    for (const token of variants)
      expect([token, await codeOf(token)]).toEqual([token, 'ERR_TOKEN_MALFORMED'])
    // The same signature bytes spelled another way (the last character's unused bits set):
    // one token must have one string.
    const last = s[s.length - 1] ?? 'A'
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const sibling = alphabet[alphabet.indexOf(last) ^ 1] ?? 'A' // HS256: 43 characters, the last 2 bits unused
    const respelled = `${h}.${p}.${s.slice(0, -1)}${sibling}`
    expect(Buffer.from(respelled.split('.')[2] ?? '', 'base64url')).toEqual(
      Buffer.from(s, 'base64url'),
    )
    expect(await codeOf(respelled)).toBe('ERR_TOKEN_MALFORMED')
  })

  it('duplicate JSON keys: refuses a claims set or header naming a member twice, even escaped', async () => {
    const twice =
      '{"iss":"web","aud":"orders","sub":"victim","sub":"u1","iat":1800000000,"exp":1800000060}'
    expect(await codeOf(forgeHs('{"alg":"HS256"}', twice))).toBe('ERR_TOKEN_MALFORMED')
    const escaped = twice.replace('"sub":"u1"', '"\\u0073ub":"u1"')
    expect(await codeOf(forgeHs('{"alg":"HS256"}', escaped))).toBe('ERR_TOKEN_MALFORMED')
    expect(await codeOf(forgeHs('{"alg":"none","alg":"HS256"}', claims()))).toBe(
      'ERR_TOKEN_MALFORMED',
    )
  })

  it('exp, nbf and iat of the wrong type: refuses strings, booleans, arrays, objects and null', async () => {
    for (const claim of ['exp', 'nbf', 'iat']) {
      for (const value of [String(NOW + 60), true, [NOW + 60], { t: NOW + 60 }, null]) {
        const token = forgeHs('{"alg":"HS256"}', claims({ [claim]: value }))
        expect([claim, value, await codeOf(token)]).toEqual([claim, value, 'ERR_CLAIM_INVALID'])
      }
    }
  })

  it('aud empty or an array: refuses an empty aud, an empty list and a list without the audience; accepts a list holding it (RFC 7519 §4.1.3)', async () => {
    for (const aud of ['', [], ['other'], [''], [1, 2]]) {
      const token = forgeHs('{"alg":"HS256"}', claims({ aud }))
      expect([aud, await codeOf(token)]).toEqual([aud, 'ERR_AUDIENCE_INVALID'])
    }
    expect(await codeOf(forgeHs('{"alg":"HS256"}', claims({ aud: ['other', 'orders'] })))).toBe(
      'PASSED',
    )
  })

  it('cross-consumer key binding: a token naming one consumer is checked only against that consumer keys', async () => {
    // Signed by globex's key, with globex's kid, but claiming to be mobile-app.
    const asMobile = await mint(
      { iss: 'mobile' },
      { alg: 'ES256', kid: 'ec-2', key: ec2.pair.privateKey, now: NOW },
    )
    expect(await codeOf(asMobile)).not.toBe('PASSED')
    // Signed with web-app's HMAC secret but claiming partner-acme (an RS256 credential).
    const asPartner = forgeHs('{"alg":"HS256"}', JSON.stringify({ iss: 'partner', exp: NOW + 60 }))
    expect(await codeOf(asPartner)).toBe('ERR_ALGORITHM_NOT_ALLOWED')
    // The genuine globex token passes, so the refusals above are the binding, not the key.
    const genuine = await mint(
      { iss: 'globex' },
      { alg: 'ES256', kid: 'ec-2', key: ec2.pair.privateKey, now: NOW },
    )
    expect(await codeOf(genuine)).toBe('PASSED')
    expect(
      await codeOf(await mint({ iss: 'web', aud: 'orders' }, { key: secretKey(), now: NOW })),
    ).toBe('PASSED')
  })
})
