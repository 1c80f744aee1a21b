import { randomBytes, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { quietCli } from '../integration/revocation/helpers/cli'
import { mint, secretKey } from '../helpers/tokens'
import {
  cleanupTestKeys,
  noRedisReason,
  PrivateRedis,
  sharedRedisUrl,
  testPrefix,
} from '../integration/revocation/helpers/redis-server'
import { startKongTarget, type KongTarget } from './helpers/kong-target'

// Our plugins behind Kong's BUNDLED jwt plugin (issue 4: "a scenario with Kong's bundled jwt token
// in ctx"): Kong's jwt verifies an HS256 token against the jwt_secrets credential of legacy-app and
// stores it in kong.ctx.shared.authenticated_jwt_token; scope-acl (and jwt-revocation) read it
// from there. On the emulator, Kong's jwt is emulated from Kong 3.9.3's source, not recorded.

const SECRET = randomBytes(32).toString('hex') // per run, never committed
const KEY = 'legacy-app-key'

function kongYml(revocation?: { url: string; prefix: string }): string {
  const revocationPlugin =
    revocation === undefined
      ? ''
      : `
          - name: jwt-revocation
            config:
              redis: { url: "${revocation.url}" }
              key_prefix: "${revocation.prefix}"`
  return `
_format_version: "3.0"
consumers:
  - username: legacy-app
    custom_id: legacy-001
    jwt_secrets:
      - key: ${KEY}
        secret: "${SECRET}"
        algorithm: HS256
services:
  - name: orders
    url: http://orders.internal:8080
    routes:
      - name: orders
        paths: [/orders]
        plugins:
          - name: jwt
            config:
              claims_to_verify: [exp]
          - name: scope-acl
            config:
              rules:
                - { methods: [GET], scopes: ["orders:read"] }
                - { methods: [POST], scopes: ["orders:write"] }${revocationPlugin}
`
}

/** A token as the legacy app's issuer mints it: iss names the jwt_secrets key. */
const legacyToken = (
  claims: Record<string, unknown>,
  o: { now?: number; secret?: string } = {},
): Promise<string> =>
  mint(
    { iss: KEY, sub: 'legacy-user', ...claims },
    { key: secretKey(o.secret ?? SECRET), ...(o.now !== undefined ? { now: o.now } : {}) },
  )

const request = (kong: KongTarget, method: string, token?: string): Promise<Response> =>
  kong.proxy('/orders/17', {
    method,
    headers: token === undefined ? {} : { Authorization: `Bearer ${token}` },
    ...(method === 'POST' ? { body: '{"item":"widget"}' } : {}),
  })

interface EchoBody {
  readonly headers: Record<string, string | undefined>
}

describe("scope-acl behind Kong's bundled jwt plugin (e2e: token from kong.ctx.shared.authenticated_jwt_token)", () => {
  let kong: KongTarget

  beforeAll(async () => {
    kong = await startKongTarget({ config: kongYml() })
  })

  afterAll(async () => {
    await kong?.stop()
  })

  it('lets a GET with orders:read through as the consumer Kong authenticated', async () => {
    const res = await request(kong, 'GET', await legacyToken({ scope: 'orders:read' }))
    expect(res.status).toBe(200)
    const upstream = (await res.json()) as EchoBody
    expect(upstream.headers['x-consumer-username']).toBe('legacy-app')
    expect(upstream.headers['x-consumer-custom-id']).toBe('legacy-001')
    expect(upstream.headers['x-credential-identifier']).toBe(KEY)
  })

  it('refuses a POST with only orders:read: 403 ERR_SCOPE_INSUFFICIENT naming orders:write', async () => {
    const res = await request(kong, 'POST', await legacyToken({ scope: 'orders:read' }))
    expect(res.status).toBe(403)
    expect(await res.json()).toEqual({
      message: 'Insufficient scope',
      code: 'ERR_SCOPE_INSUFFICIENT',
    })
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"')
    expect(res.headers.get('www-authenticate')).toContain('scope="orders:write"')
    expect(kong.upstreamRequestFor(res)).toBeUndefined()
  })

  it('lets a POST with orders:write through', async () => {
    const res = await request(
      kong,
      'POST',
      await legacyToken({ scope: 'orders:read orders:write' }),
    )
    expect(res.status).toBe(200)
  })

  it("answers a request without a token with Kong's own 401, before scope-acl runs", async () => {
    const res = await request(kong, 'GET')
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({ message: 'Unauthorized' })
    expect(res.headers.get('www-authenticate')).toBe('Bearer')
    expect(kong.upstreamRequestFor(res)).toBeUndefined()
  })

  it("answers a bad signature with Kong's 401 Invalid signature", async () => {
    const forged = await legacyToken(
      { scope: 'orders:read orders:write' },
      { secret: randomBytes(32).toString('hex') },
    )
    const res = await request(kong, 'GET', forged)
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({ message: 'Invalid signature' })
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
    expect(kong.upstreamRequestFor(res)).toBeUndefined()
  })

  it("answers an expired token with Kong's claim error (claims_to_verify: [exp])", async () => {
    const expired = await legacyToken(
      { scope: 'orders:read' },
      { now: Math.floor(Date.now() / 1000) - 600 },
    )
    const res = await request(kong, 'GET', expired)
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({ exp: 'token expired' })
  })
})

const skip = noRedisReason()

;(skip !== undefined ? describe.skip : describe)(
  `jwt-revocation behind Kong's bundled jwt plugin (e2e: revoke with the CLI, the next request is refused) ${skip ?? ''}`.trim(),
  () => {
    let kong: KongTarget
    let server: PrivateRedis | undefined
    let url: string
    const prefix = testPrefix('e2e-kong-jwt')

    beforeAll(async () => {
      url = sharedRedisUrl() ?? (server = await PrivateRedis.start()).url
      kong = await startKongTarget({ config: kongYml({ url, prefix }) })
    })

    afterAll(async () => {
      await kong?.stop()
      if (server === undefined && url !== undefined) await cleanupTestKeys(url)
      await server?.dispose()
    })

    const cli = (...args: string[]): Promise<number> => quietCli(url, prefix)(...args)

    it('refuses a token with 401 ERR_TOKEN_REVOKED once its jti is revoked', async () => {
      const token = await legacyToken({ scope: 'orders:read', jti: randomUUID() })
      expect((await request(kong, 'GET', token)).status).toBe(200)
      expect(await cli('revoke', 'jti', '--token', token)).toBe(0)
      const res = await request(kong, 'GET', token)
      expect(res.status).toBe(401)
      expect(await res.json()).toEqual({ message: 'Token revoked', code: 'ERR_TOKEN_REVOKED' })
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"')
      expect(kong.upstreamRequestFor(res)).toBeUndefined()
    })

    it('cuts off the consumer Kong authenticated (revoke consumer by username), and lets it back in once lifted', async () => {
      const token = await legacyToken(
        { scope: 'orders:read', jti: randomUUID() },
        { now: Math.floor(Date.now() / 1000) - 5 },
      )
      expect((await request(kong, 'GET', token)).status).toBe(200)
      expect(await cli('revoke', 'consumer', 'legacy-app', '--username')).toBe(0)
      const res = await request(kong, 'GET', token)
      expect(res.status).toBe(401)
      expect(((await res.json()) as { code: string }).code).toBe('ERR_TOKEN_REVOKED')
      expect(await cli('revoke', 'lift', 'consumer', 'legacy-app', '--username')).toBe(0)
      expect((await request(kong, 'GET', token)).status).toBe(200)
    })
  },
)
