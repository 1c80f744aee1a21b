import { afterEach, describe, expect, it } from '@jest/globals'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { calculateJwkThumbprint, type JWK } from 'jose'
import { parse } from 'yaml'
import { parseConfig } from '../../../plugins/consumer-jwt/schema'
import { cli, tempDir } from './helpers'

const cleanup: (() => void)[] = []
afterEach(() => {
  for (const c of cleanup.splice(0)) c()
})
const dir = (): string => {
  const t = tempDir()
  cleanup.push(t.dispose)
  return t.dir
}

/** The credential the command printed, parsed as the YAML it is. */
function snippet(out: string): Record<string, unknown> {
  const yaml = out.slice(out.indexOf('\n- key:') + 1)
  const parsed = parse(yaml.split('\n# ')[0] ?? '') as Record<string, unknown>[]
  return parsed[0] as Record<string, unknown>
}

describe('kong-jwt-toolkit keys generate: (cli)', () => {
  it.each([
    ['hs256', 32],
    ['hs384', 48],
    ['hs512', 64],
  ])(
    '%s: a secret as long as the hash output (%i bytes, RFC 7518 §3.2), base64url, with a credential the plugin accepts',
    async (type, bytes) => {
      const r = await cli(['keys', 'generate', '--type', type, '--consumer', 'c', '--issuer', 'i'])
      expect(r.code).toBe(0)
      const secret = /secret, \d+ random bytes, base64url\n(\S+)/.exec(r.out)?.[1] ?? ''
      expect(Buffer.from(secret, 'base64url')).toHaveLength(bytes)
      const credential = snippet(r.out)
      expect(credential).toMatchObject({
        key: 'i',
        issuer: 'i',
        consumer: 'c',
        algorithms: [type.toUpperCase()],
        secret: '{vault://env/c-jwt-secret}',
        secret_is_base64: true,
      })
      // The secret as Kong's env vault would hand it over (the CLI prints the variable).
      expect(r.out).toContain(`export C_JWT_SECRET=${secret}`)
      const config = parseConfig({ credentials: [{ ...credential, secret }] }, {})
      const source = config.credentials.get('i')?.keySource
      expect(source).toEqual({
        kind: 'secret',
        secret: new Uint8Array(Buffer.from(secret, 'base64url')),
      })
    },
  )

  it.each(['rs256', 'ps256', 'es256', 'es384', 'eddsa'])(
    '%s: a key pair as PEM and JWK, kid = the RFC 7638 thumbprint, and a JWKS credential the plugin accepts',
    async (type) => {
      const r = await cli(['keys', 'generate', '--type', type])
      expect(r.code).toBe(0)
      expect(r.out).toContain('-----BEGIN PRIVATE KEY-----')
      expect(r.out).toContain('-----BEGIN PUBLIC KEY-----')
      const credential = snippet(r.out)
      const jwks = JSON.parse(credential.jwks as string) as { keys: JWK[] }
      const [jwk] = jwks.keys as [JWK]
      expect(jwk).not.toHaveProperty('d')
      expect(jwk.kid).toBe(await calculateJwkThumbprint(jwk))
      expect(r.out).toContain(`# kid: ${jwk.kid} (RFC 7638 thumbprint)`)
      expect(credential.key).toBe('<issuer>')
      expect(() => parseConfig({ credentials: [credential] }, {})).not.toThrow()
    },
  )

  it('--out-dir: writes files, private ones with mode 0600, and prints no private key', async () => {
    const d = dir()
    const r = await cli(['keys', 'generate', '--type', 'es256', '--kid', 'web-1', '--out-dir', d])
    expect(r.code).toBe(0)
    const mode = (f: string): number => statSync(join(d, f)).mode & 0o777
    expect(mode('web-1.private.pem')).toBe(0o600)
    expect(mode('web-1.private.jwk.json')).toBe(0o600)
    expect(mode('web-1.public.pem')).toBe(0o644)
    expect(mode('web-1.jwks.json')).toBe(0o644)
    expect(r.out).not.toContain('PRIVATE KEY')
    expect(r.out).not.toContain('"d"')
    expect(r.out).toContain(`# wrote ${join(d, 'web-1.private.pem')} (mode 0600: private)`)
    const priv = JSON.parse(readFileSync(join(d, 'web-1.private.jwk.json'), 'utf8')) as JWK
    expect(priv).toMatchObject({ kid: 'web-1', alg: 'ES256', use: 'sig', crv: 'P-256' })
    expect(priv.d).toEqual(expect.any(String))
    const jwks = JSON.parse(readFileSync(join(d, 'web-1.jwks.json'), 'utf8')) as { keys: JWK[] }
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).not.toHaveProperty('d')
  })

  it('--out-dir with an HS secret: the secret only in 0600 files, the credential reads it from the environment', async () => {
    const d = dir()
    const r = await cli([
      'keys',
      'generate',
      '--type',
      'hs256',
      '--kid',
      'g',
      '--out-dir',
      d,
      '--consumer',
      'partner',
    ])
    expect(r.code).toBe(0)
    const secret = readFileSync(join(d, 'g.secret'), 'utf8').trim()
    expect(statSync(join(d, 'g.secret')).mode & 0o777).toBe(0o600)
    expect(statSync(join(d, 'g.jwk.json')).mode & 0o777).toBe(0o600)
    expect(r.out).not.toContain(secret)
    expect(r.out).toContain(`export PARTNER_JWT_SECRET="$(cat ${join(d, 'g.secret')})"`)
  })

  it('--format pem: a credential with public_key and only PEM files', async () => {
    const d = dir()
    const r = await cli([
      'keys',
      'generate',
      '--type',
      'eddsa',
      '--kid',
      'm',
      '--format',
      'pem',
      '--out-dir',
      d,
    ])
    expect(r.code).toBe(0)
    expect(existsSync(join(d, 'm.private.pem'))).toBe(true)
    expect(existsSync(join(d, 'm.private.jwk.json'))).toBe(false)
    expect(snippet(r.out).public_key).toBe(readFileSync(join(d, 'm.public.pem'), 'utf8'))
  })

  it('refuses to overwrite existing files without --force, and replaces them with their mode with it', async () => {
    const d = dir()
    writeFileSync(join(d, 'k.private.pem'), 'old', { mode: 0o644 })
    const r = await cli(['keys', 'generate', '--type', 'es256', '--kid', 'k', '--out-dir', d])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(
      /k\.private\.pem already exists; choose another --kid or --out-dir, or --force/,
    )
    expect(readFileSync(join(d, 'k.private.pem'), 'utf8')).toBe('old')
    expect(
      (await cli(['keys', 'generate', '--type', 'es256', '--kid', 'k', '--out-dir', d, '--force']))
        .code,
    ).toBe(0)
    expect(statSync(join(d, 'k.private.pem')).mode & 0o777).toBe(0o600)
  })

  it('refuses an unknown type, a PEM of a secret, and an empty kid, with usage errors', async () => {
    const unknown = await cli(['keys', 'generate', '--type', 'rs1024'])
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(/argument 'rs1024' is invalid.*hs256/s)
    const pem = await cli(['keys', 'generate', '--type', 'hs256', '--format', 'pem'])
    expect(pem).toMatchObject({
      code: 2,
      err: expect.stringMatching(/an HS\* secret has no PEM form/),
    })
    expect((await cli(['keys', 'generate', '--type', 'hs256', '--kid', ' '])).code).toBe(2)
    expect((await cli(['keys', 'generate'])).err).toMatch(/required option '--type <type>'/)
  })
})
