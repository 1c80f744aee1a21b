import crypto from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { BUILTIN_PLUGINS, jwtClock } from '../../emulator/builtin-plugins'
import {
  ConfigError,
  parseDeclarativeConfig,
  type DeclarativeConfig,
} from '../../cli/kong/declarative-config'
import { startEchoUpstream, type EchoUpstream } from '../../emulator/echo-upstream'
import { start, type RunningEmulator } from '../../emulator/emulator'
import { callPdk, type PdkEnvironment } from '../../emulator/pdk'
import { HeaderList, RequestContext } from '../../emulator/request-context'
import { processConfig } from '../../cli/kong/schema'
import { keyPair, mint, secretKey, unsigned, type KeyPair } from '../helpers/tokens'

// Kong 3.9.3's bundled jwt plugin as the emulator reproduces it from kong/plugins/jwt/handler.lua
// and jwt_parser.lua (no recording covers it).

const SECRET = 'legacy-app-shared-secret-0123456789abcdef'
const B64_RAW_SECRET = 'raw bytes behind a base64url secret!!'
const LEGACY_ID = '6f1c2a3b-0000-4000-8000-00000000a001'

/** An HS256 token with any header and claims (jose refuses some of the shapes Kong must survive). */
function hs256(
  claims: unknown,
  secret = SECRET,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
  const input = `${b64(header)}.${b64(claims)}`
  return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`
}

const now = (): number => Math.floor(Date.now() / 1000)
const legacy = (claims: Record<string, unknown> = {}): Promise<string> =>
  mint({ iss: 'legacy-key', scope: 'orders:read', ...claims }, { key: secretKey(SECRET) })

let echo: EchoUpstream
let emu: RunningEmulator
let rsa: { pair: KeyPair; pem: string }
let ec: { pair: KeyPair; pem: string }
let otherRsa: { pair: KeyPair; pem: string }

const indent = (pem: string): string => pem.trim().split('\n').join('\n          ')

beforeAll(async () => {
  rsa = await keyPair('RS256')
  ec = await keyPair('ES256')
  otherRsa = await keyPair('RS256')
  echo = await startEchoUpstream()
  emu = await start({
    pluginDirs: [],
    config: `
_format_version: "3.0"
consumers:
  - id: ${LEGACY_ID}
    username: legacy-app
    custom_id: legacy-42
    jwt_secrets:
      - key: legacy-key
        secret: ${SECRET}
  - username: rsa-app
    jwt_secrets:
      - key: rsa-key
        algorithm: RS256
        rsa_public_key: |
          ${indent(rsa.pem)}
  - username: ec-app
    jwt_secrets:
      - key: ec-key
        algorithm: ES256
        rsa_public_key: |
          ${indent(ec.pem)}
  - username: b64-app
  - username: anonymous-user
jwt_secrets:
  - consumer: b64-app
    key: b64-key
    secret: ${Buffer.from(B64_RAW_SECRET).toString('base64url')}
services:
  - name: echo
    url: ${echo.url}
    routes:
      - { name: default, paths: [/default], plugins: [{ name: jwt }] }
      - name: sources
        paths: [/sources]
        plugins:
          - name: jwt
            config: { uri_param_names: [jwt, token], cookie_names: [jwt_cookie], header_names: [authorization, x_jwt] }
      - name: claims
        paths: [/claims]
        plugins: [{ name: jwt, config: { claims_to_verify: [exp, nbf], realm: orders } }]
      - name: max-exp
        paths: [/max-exp]
        plugins: [{ name: jwt, config: { claims_to_verify: [exp], maximum_expiration: 60 } }]
      - { name: b64, paths: [/b64], plugins: [{ name: jwt, config: { secret_is_base64: true } }] }
      - { name: kid, paths: [/kid], plugins: [{ name: jwt, config: { key_claim_name: kid } }] }
      - { name: anon, paths: [/anon], plugins: [{ name: jwt, config: { anonymous: anonymous-user } }] }
      - { name: preflight, paths: [/preflight], plugins: [{ name: jwt, config: { run_on_preflight: false } }] }
`,
  })
})

afterAll(async () => {
  await emu?.stop()
  await echo?.stop()
})

const call = (path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${emu.proxyUrl}${path}`, init)
const bearer = (token: string, extra: Record<string, string> = {}): RequestInit => ({
  headers: { Authorization: `Bearer ${token}`, ...extra },
})
const upstreamOf = (res: Response): EchoUpstream['received'][number] | undefined =>
  echo.byRequestId(res.headers.get('x-kong-request-id') ?? '')

/** Kong's refusal: 401, the exact JSON body (no request_id), WWW-Authenticate, not proxied. */
async function expectRefused(
  res: Response,
  body: unknown,
  wwwAuthenticate: string | null,
): Promise<void> {
  expect(res.status).toBe(401)
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
  expect(await res.json()).toEqual(body)
  expect(res.headers.get('www-authenticate')).toBe(wwwAuthenticate)
  expect(upstreamOf(res)).toBeUndefined()
}

describe('emulator: Kong jwt — where the token is found', () => {
  it('accepts a Bearer token in Authorization, "bearer" in lower case too', async () => {
    expect((await call('/default', bearer(await legacy()))).status).toBe(200)
    const lower = await call('/default', { headers: { Authorization: `bearer ${await legacy()}` } })
    expect(lower.status).toBe(200)
  })

  it('refuses an Authorization header that is not a Bearer token as if there were no token', async () => {
    const res = await call('/default', { headers: { Authorization: `Token ${await legacy()}` } })
    await expectRefused(res, { message: 'Unauthorized' }, 'Bearer')
  })

  it('reads the jwt query argument by default, and every configured one', async () => {
    const token = await legacy()
    expect((await call(`/default?jwt=${token}`)).status).toBe(200)
    expect((await call(`/sources?token=${token}`)).status).toBe(200)
    await expectRefused(
      await call(`/default?token=${token}`),
      { message: 'Unauthorized' },
      'Bearer',
    )
  })

  it('reads configured cookies only', async () => {
    const token = await legacy()
    const cookie = { headers: { Cookie: `theme=dark; JWT_COOKIE=${token}` } }
    expect((await call('/sources', cookie)).status).toBe(200)
    await expectRefused(await call('/default', cookie), { message: 'Unauthorized' }, 'Bearer')
  })

  it('reads a configured header (underscore matches a dash), Bearer prefix required', async () => {
    const token = await legacy()
    expect((await call('/sources', { headers: { 'X-Jwt': `Bearer ${token}` } })).status).toBe(200)
    await expectRefused(
      await call('/sources', { headers: { 'X-Jwt': token } }),
      { message: 'Unauthorized' },
      'Bearer',
    )
  })

  it('counts the same token found twice once', async () => {
    const token = await legacy()
    expect((await call(`/default?jwt=${token}`, bearer(token))).status).toBe(200)
  })

  it('refuses two different tokens with "Multiple tokens provided"', async () => {
    const res = await call(
      `/default?jwt=${await legacy({ jti: 'a' })}`,
      bearer(await legacy({ jti: 'b' })),
    )
    await expectRefused(
      res,
      { message: 'Multiple tokens provided' },
      'Bearer error="invalid_token"',
    )
  })

  it('refuses a jwt query argument without a value (Lua true) as "Unrecognizable token"', async () => {
    await expectRefused(
      await call('/default?jwt'),
      { message: 'Unrecognizable token' },
      'Bearer error="invalid_token"',
    )
  })

  it('skips OPTIONS without a token only when run_on_preflight is false', async () => {
    expect((await call('/preflight', { method: 'OPTIONS' })).status).toBe(200)
    await expectRefused(
      await call('/default', { method: 'OPTIONS' }),
      { message: 'Unauthorized' },
      'Bearer',
    )
  })
})

describe('emulator: Kong jwt — refusals (exact 401 bodies of handler.lua)', () => {
  const withError = 'Bearer error="invalid_token"'

  it('answers {"message":"Unauthorized"} with WWW-Authenticate: Bearer when there is no token', async () => {
    await expectRefused(await call('/default'), { message: 'Unauthorized' }, 'Bearer')
  })

  it.each([
    ['not a JWT', 'abc', 'Bad token; invalid JSON'],
    ['two segments', 'eyJhbGciOiJIUzI1NiJ9.e30', 'Bad token; invalid JSON'],
    ['a payload that is not base64url', 'eyJhbGciOiJIUzI1NiJ9.a+b.c', 'Bad token; invalid JSON'],
    ['alg none', unsigned({ iss: 'legacy-key' }), 'Bad token; invalid alg'],
    [
      'an unknown alg',
      hs256({ iss: 'legacy-key' }, SECRET, { alg: 'HS999' }),
      'Bad token; invalid alg',
    ],
    [
      'a signature that is not base64url',
      `${hs256({ iss: 'legacy-key' }).split('.').slice(0, 2).join('.')}.a+b`,
      'Bad token; invalid signature',
    ],
    ['no iss', hs256({ sub: 'x' }), "No mandatory 'iss' in claims"],
    ['an empty iss', hs256({ iss: '' }), "Invalid 'iss' in claims"],
    ['an unknown key', hs256({ iss: 'nobody' }), "No credentials found for given 'iss'"],
  ])('refuses a token with %s', async (_what, token, message) => {
    await expectRefused(await call('/default', bearer(token)), { message }, withError)
  })

  it('refuses a token whose alg differs from the credential algorithm', async () => {
    const token = await mint({ iss: 'legacy-key' }, { alg: 'HS512', key: secretKey(SECRET) })
    await expectRefused(
      await call('/default', bearer(token)),
      { message: 'Invalid algorithm' },
      withError,
    )
  })

  it('refuses a token signed with another secret', async () => {
    const token = await mint(
      { iss: 'legacy-key' },
      { key: secretKey('not-the-shared-secret-but-long-enough!!') },
    )
    await expectRefused(
      await call('/default', bearer(token)),
      { message: 'Invalid signature' },
      withError,
    )
  })

  it('answers Kong 500 when the key claim is not a string (the DAO raises)', async () => {
    const res = await call('/default', bearer(hs256({ iss: 42 })))
    expect(res.status).toBe(500)
    expect(((await res.json()) as { message: string }).message).toBe('An unexpected error occurred')
  })

  it('does not check exp unless claims_to_verify lists it', async () => {
    const expired = await legacy({ exp: now() - 3600 })
    expect((await call('/default', bearer(expired))).status).toBe(200)
  })

  it('refuses an expired token with the claim map as the body and the realm in the challenge', async () => {
    const res = await call('/claims', bearer(await legacy({ exp: now() - 10, nbf: now() - 60 })))
    await expectRefused(
      res,
      { exp: 'token expired' },
      'Bearer realm="orders" error="invalid_token"',
    )
  })

  it('refuses a token not valid yet', async () => {
    const res = await call('/claims', bearer(await legacy({ nbf: now() + 600 })))
    await expectRefused(
      res,
      { nbf: 'token not valid yet' },
      'Bearer realm="orders" error="invalid_token"',
    )
  })

  it('refuses missing exp and nbf claims as "must be a number", both at once', async () => {
    const res = await call('/claims', bearer(hs256({ iss: 'legacy-key', exp: 'soon' })))
    await expectRefused(
      res,
      { exp: 'must be a number', nbf: 'must be a number' },
      'Bearer realm="orders" error="invalid_token"',
    )
  })

  it('enforces maximum_expiration', async () => {
    const long = await legacy({ exp: now() + 3600 })
    await expectRefused(
      await call('/max-exp', bearer(long)),
      { exp: 'exceeds maximum allowed expiration' },
      withError,
    )
    expect((await call('/max-exp', bearer(await legacy({ exp: now() + 30 })))).status).toBe(200)
  })
})

describe('emulator: Kong jwt — credentials and algorithms', () => {
  it('verifies RS256 and ES256 tokens with the credential public key', async () => {
    const rs = await mint({ iss: 'rsa-key' }, { alg: 'RS256', key: rsa.pair.privateKey })
    const es = await mint({ iss: 'ec-key' }, { alg: 'ES256', key: ec.pair.privateKey })
    expect((await call('/default', bearer(rs))).status).toBe(200)
    expect((await call('/default', bearer(es))).status).toBe(200)
  })

  it('refuses an RS256 token signed by another key pair', async () => {
    const forged = await mint({ iss: 'rsa-key' }, { alg: 'RS256', key: otherRsa.pair.privateKey })
    await expectRefused(
      await call('/default', bearer(forged)),
      { message: 'Invalid signature' },
      'Bearer error="invalid_token"',
    )
  })

  it('answers Kong 500 for an ES256 signature that is not 64 bytes (jwt_parser asserts)', async () => {
    const es = await mint({ iss: 'ec-key' }, { alg: 'ES256', key: ec.pair.privateKey })
    const truncated = `${es.slice(0, es.lastIndexOf('.'))}.${Buffer.alloc(10).toString('base64url')}`
    expect((await call('/default', bearer(truncated))).status).toBe(500)
  })

  it('base64url-decodes the secret only when secret_is_base64 is true', async () => {
    const token = await mint({ iss: 'b64-key' }, { key: secretKey(B64_RAW_SECRET) })
    expect((await call('/b64', bearer(token))).status).toBe(200)
    await expectRefused(
      await call('/default', bearer(token)),
      { message: 'Invalid signature' },
      'Bearer error="invalid_token"',
    )
  })

  it('takes the key from the token header when the claims lack key_claim_name', async () => {
    const token = await mint({ sub: 'x' }, { key: secretKey(SECRET), kid: 'legacy-key' })
    expect((await call('/kid', bearer(token))).status).toBe(200)
  })
})

describe('emulator: Kong jwt — what an authenticated request carries upstream', () => {
  it('sets X-Consumer-* and X-Credential-Identifier (the credential key), clears X-Anonymous-Consumer', async () => {
    const token = await legacy()
    const res = await call(
      '/default',
      bearer(token, { 'X-Consumer-Username': 'spoofed', 'X-Anonymous-Consumer': 'true' }),
    )
    expect(res.status).toBe(200)
    const seen = upstreamOf(res)?.headers
    expect(seen?.['x-consumer-id']).toBe(LEGACY_ID)
    expect(seen?.['x-consumer-custom-id']).toBe('legacy-42')
    expect(seen?.['x-consumer-username']).toBe('legacy-app')
    expect(seen?.['x-credential-identifier']).toBe('legacy-key')
    expect(seen?.['x-anonymous-consumer']).toBeUndefined()
    expect(seen?.['authorization']).toBe(`Bearer ${token}`)
  })

  it('clears X-Consumer-Custom-ID for a consumer without one', async () => {
    const rs = await mint({ iss: 'rsa-key' }, { alg: 'RS256', key: rsa.pair.privateKey })
    const res = await call('/default', bearer(rs, { 'X-Consumer-Custom-ID': 'spoofed' }))
    expect(upstreamOf(res)?.headers['x-consumer-custom-id']).toBeUndefined()
    expect(upstreamOf(res)?.headers['x-consumer-username']).toBe('rsa-app')
  })

  it('lets a request without a valid token through as the anonymous consumer when configured', async () => {
    const res = await call('/anon', bearer(hs256({ iss: 'legacy-key' }, 'wrong-secret')))
    expect(res.status).toBe(200)
    const seen = upstreamOf(res)?.headers
    expect(seen?.['x-consumer-username']).toBe('anonymous-user')
    expect(seen?.['x-anonymous-consumer']).toBe('true')
    expect(seen?.['x-credential-identifier']).toBeUndefined()
  })
})

describe('emulator: Kong jwt — kong.ctx.shared.authenticated_jwt_token', () => {
  const jwt = BUILTIN_PLUGINS.find((p) => p.name === 'jwt')
  const access = jwt?.handlers.access
  const conf = processConfig(jwt?.fields ?? [], {})
  const config = parseDeclarativeConfig(`
_format_version: "3.0"
consumers:
  - username: legacy-app
    jwt_secrets: [{ key: legacy-key, secret: ${SECRET} }]
`)
  const env: PdkEnvironment = { config, nodeId: 'node', log: () => undefined, kongVersion: '3.9.3' }
  const ctxWith = (authorization: string): RequestContext => {
    const ctx = new RequestContext(
      'rid',
      Date.now(),
      'GET',
      '/',
      undefined,
      1.1,
      new HeaderList([['Authorization', authorization]]),
      Buffer.alloc(0),
      '127.0.0.1',
      5555,
      8000,
      'http',
      'h',
    )
    ctx.phase = 'access'
    return ctx
  }

  it('stores the raw token where a plugin server reads it with kong.ctx.shared.get', async () => {
    const token = await legacy()
    const ctx = ctxWith(`Bearer ${token}`)
    await access?.(ctx, conf, config)
    expect(ctx.exit).toBeUndefined()
    expect(callPdk(ctx, 'kong.ctx.shared.get', ['authenticated_jwt_token'], env)).toEqual({
      kind: 'value',
      value: token,
    })
    expect(callPdk(ctx, 'kong.client.get_credential', [], env)).toMatchObject({
      kind: 'value',
      value: { key: 'legacy-key', algorithm: 'HS256', consumer: { id: config.consumers[0]?.id } },
    })
  })

  it('stores nothing when the token is refused', async () => {
    const ctx = ctxWith(`Bearer ${hs256({ iss: 'legacy-key' }, 'wrong-secret')}`)
    await access?.(ctx, conf, config)
    expect(ctx.exit?.status).toBe(401)
    expect(callPdk(ctx, 'kong.ctx.shared.get', ['authenticated_jwt_token'], env)).toEqual({
      kind: 'value',
      value: undefined,
    })
  })

  it('answers 401 "Could not find consumer" without a challenge when the credential has no consumer', async () => {
    const orphan: DeclarativeConfig = { ...config, consumers: [] }
    const ctx = ctxWith(`Bearer ${await legacy()}`)
    await access?.(ctx, conf, orphan)
    expect(ctx.exit?.status).toBe(401)
    expect(ctx.exit?.body?.toString()).toBe(
      `{"message":"Could not find consumer for 'iss=legacy-key'"}`,
    )
    expect(ctx.exit?.headers.get('www-authenticate')).toBeUndefined()
  })

  it('checks exp against ngx.time(), expired at exp itself', async () => {
    const saved = jwtClock.now
    jwtClock.now = () => 2_000_000_000
    try {
      const claimsConf = processConfig(jwt?.fields ?? [], { claims_to_verify: ['exp'] })
      const atExp = ctxWith(`Bearer ${hs256({ iss: 'legacy-key', exp: 2_000_000_000 })}`)
      await access?.(atExp, claimsConf, config)
      expect(atExp.exit?.body?.toString()).toBe('{"exp":"token expired"}')
      const before = ctxWith(`Bearer ${hs256({ iss: 'legacy-key', exp: 2_000_000_001 })}`)
      await access?.(before, claimsConf, config)
      expect(before.exit).toBeUndefined()
    } finally {
      jwtClock.now = saved
    }
  })
})

describe('emulator: jwt_secrets in kong.yml (kong/plugins/jwt/daos.lua)', () => {
  const load = (body: string): DeclarativeConfig =>
    parseDeclarativeConfig(`_format_version: "3.0"\n${body}`)

  it('fills Kong defaults: generated key and secret, algorithm HS256, the consumer reference', () => {
    const c = load('consumers: [{ username: app, jwt_secrets: [{}] }]')
    expect(c.jwtSecrets).toHaveLength(1)
    expect(c.jwtSecrets[0]).toMatchObject({
      algorithm: 'HS256',
      consumer: { id: c.consumers[0]?.id },
    })
    expect(c.jwtSecrets[0]?.key).toMatch(/^[0-9a-f]{32}$/)
    expect(c.jwtSecrets[0]?.secret).toMatch(/^[0-9a-f]{32}$/)
  })

  it('resolves a top-level credential by consumer username or id', () => {
    const c = load(`
consumers: [{ id: ${LEGACY_ID}, username: app }]
jwt_secrets:
  - { consumer: app, key: k1, secret: s1 }
  - { consumer: { id: ${LEGACY_ID} }, key: k2, secret: s2 }
`)
    expect(c.jwtSecrets.map((s) => [s.key, s.consumer.id])).toEqual([
      ['k1', LEGACY_ID],
      ['k2', LEGACY_ID],
    ])
  })

  it.each([
    [
      'an unknown consumer',
      'consumers: [{ username: app }]\njwt_secrets: [{ consumer: nobody, key: k }]',
      /consumer 'nobody' not found/,
    ],
    [
      'an algorithm Kong does not know',
      'consumers: [{ username: app, jwt_secrets: [{ algorithm: none }] }]',
      /algorithm: expected one of/,
    ],
    [
      'RS256 without rsa_public_key',
      'consumers: [{ username: app, jwt_secrets: [{ algorithm: RS256 }] }]',
      /rsa_public_key: required field missing/,
    ],
    [
      'RS256 with a key that is not a key',
      'consumers: [{ username: app, jwt_secrets: [{ algorithm: RS256, rsa_public_key: nope }] }]',
      /rsa_public_key: invalid key/,
    ],
    [
      'two credentials with one key',
      'consumers: [{ username: a, jwt_secrets: [{ key: k }] }, { username: b, jwt_secrets: [{ key: k }] }]',
      /uniqueness violation/,
    ],
    [
      'an unknown field',
      'consumers: [{ username: app, jwt_secrets: [{ key: k, kid: x }] }]',
      /unknown field 'kid'/,
    ],
  ])('refuses %s', (_what, body, message) => {
    expect(() => load(body)).toThrow(ConfigError)
    expect(() => load(body)).toThrow(message)
  })
})
