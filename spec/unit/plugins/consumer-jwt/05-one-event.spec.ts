import { describe, expect, it } from '@jest/globals'
import { processConfig, type SchemaField } from '../../../../cli/kong/schema'
import { ConsumerJwtHandler } from '../../../../plugins/consumer-jwt/handler'
import { Schema } from '../../../../plugins/consumer-jwt/schema'
import { FakeKong, type FakeRequest } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'
import { MemoryRevocationStore } from '../../../helpers/memory-revocation-store'
import { HS_SECRET, mint, secretKey } from '../../../helpers/tokens'

/**
 * consumer-jwt deciding the whole request in one event: authentication, then the `revocation`
 * lookup and the `scopes` rules, then the upstream headers and `authenticate` as the last call.
 */
const NOW = 1_800_000_000
const clock = { now: () => NOW * 1000 }
const WEB = { id: '0a0a0a0a-0000-4000-8000-000000000001', username: 'web-app', custom_id: 'web-1' }
const ANON = { id: '0a0a0a0a-0000-4000-8000-0000000000ff', username: 'anonymous' }

const METHOD_RULES = {
  rules: [
    { methods: ['GET', 'HEAD'], scopes: ['orders:read'] },
    { methods: ['DELETE'], scopes: ['orders:admin'] },
  ],
}

const REVOCATION = { check: ['jti', 'subject', 'consumer'], redis: { url: 'redis://unused:6379' } }

function setup(config: Record<string, unknown> = {}) {
  const logger = new MemoryLogger()
  const store = new MemoryRevocationStore('jwt-revocation:', clock)
  const handler = new ConsumerJwtHandler(
    {
      credentials: [{ key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET }],
      claims_to_headers: [{ claim: 'sub', header: 'X-Subject' }],
      share_token: false,
      ...config,
    },
    { clock, env: {}, logger, revocationStoreFor: () => store },
  )
  const request = async (req: FakeRequest, consumers = [WEB, ANON]) => {
    const kong = new FakeKong(req)
    kong.consumers.push(...consumers)
    await handler.accessWith(kong)
    return kong
  }
  return { handler, store, logger, request }
}

const token = (claims: Record<string, unknown> = {}) =>
  mint(
    { iss: 'web', sub: 'user-42', jti: 'jti-1', scope: 'orders:read', ...claims },
    { key: secretKey(), now: NOW, ttl: 300 },
  )

const bearer = async (
  claims: Record<string, unknown> = {},
  method = 'GET',
): Promise<FakeRequest> => ({
  method,
  headers: { authorization: `Bearer ${await token(claims)}` },
})

describe('consumer-jwt: one event decides the request', () => {
  it('allows a cached request on a route whose rules do not depend on the method in 4 round trips, authenticate last', async () => {
    const { request } = setup({
      scopes: { default_rule: { scopes: ['orders:read'] } },
      revocation: REVOCATION,
    })
    const req = await bearer()
    await request(req)
    const kong = await request(req, [])
    expect(kong.exitResult).toBeUndefined()
    expect(kong.calls).toEqual([
      'kong.request.get_headers',
      'kong.service.request.set_headers',
      'kong.client.authenticate',
    ])
    expect(kong.roundTrips).toBe(4)
    expect(kong.upstreamHeader('X-Consumer-Username')).toBe('web-app')
  })

  it('reads the method once, and only after verification, when the rules differ by method: 5 round trips', async () => {
    const { request } = setup({ scopes: METHOD_RULES })
    const req = await bearer()
    await request(req)
    const kong = await request(req, [])
    expect(kong.exitResult).toBeUndefined()
    expect(kong.calls).toEqual([
      'kong.request.get_headers',
      'kong.request.get_method',
      'kong.service.request.set_headers',
      'kong.client.authenticate',
    ])
  })

  it('refuses a method the token has no scope for with 403 ERR_SCOPE_INSUFFICIENT, authenticating nobody', async () => {
    const { request } = setup({ scopes: METHOD_RULES })
    const kong = await request(await bearer({}, 'DELETE'))
    expect(kong.exitResult).toMatchObject({
      status: 403,
      body: { code: 'ERR_SCOPE_INSUFFICIENT' },
      headers: { 'WWW-Authenticate': expect.stringContaining('scope="orders:admin"') },
    })
    expect(kong.authenticated).toBeUndefined()
    expect(kong.calls).not.toContain('kong.service.request.set_headers')
  })

  it('refuses a method no rule lists with 403 (deny by default)', async () => {
    const { request } = setup({ scopes: METHOD_RULES })
    const kong = await request(await bearer({ scope: 'orders:read orders:admin' }, 'POST'))
    expect(kong.exitResult?.status).toBe(403)
    expect(kong.exitResult?.body.code).toBe('ERR_SCOPE_INSUFFICIENT')
  })

  it('refuses a bad signature in 2 round trips even with scopes and revocation configured, and asks Redis nothing', async () => {
    const { request, store } = setup({
      scopes: METHOD_RULES,
      revocation: REVOCATION,
    })
    const forged = await mint(
      { iss: 'web', sub: 'user-42', jti: 'x' },
      { key: secretKey('another-secret-that-is-at-least-32-bytes!!'), now: NOW, ttl: 300 },
    )
    const kong = await request({ headers: { authorization: `Bearer ${forged}` } })
    expect(kong.exitResult?.body.code).toBe('ERR_SIGNATURE_INVALID')
    expect(kong.roundTrips).toBe(2)
    expect(store.lookups).toEqual([])
  })

  it('refuses a revoked jti with 401 ERR_TOKEN_REVOKED before the scope rules are read', async () => {
    const { request, store } = setup({
      scopes: METHOD_RULES,
      revocation: REVOCATION,
    })
    await store.revoke({ kind: 'jti', jti: 'jti-1' }, { at: NOW - 10 })
    const kong = await request(await bearer())
    expect(kong.exitResult).toMatchObject({ status: 401, body: { code: 'ERR_TOKEN_REVOKED' } })
    expect(kong.calls).not.toContain('kong.request.get_method')
    expect(kong.authenticated).toBeUndefined()
  })

  it('refuses every token of a consumer revoked before a moment, by the consumer it names', async () => {
    const { request, store } = setup({ revocation: REVOCATION })
    await store.revoke({ kind: 'consumer_username', username: 'web-app' }, { at: NOW })
    const kong = await request(await bearer({ iat: NOW - 5 }))
    expect(kong.exitResult?.body.code).toBe('ERR_TOKEN_REVOKED')
    const later = await request(await bearer({ iat: NOW + 1, jti: 'jti-2' }))
    expect(later.exitResult).toBeUndefined()
  })

  it('answers 503 ERR_REVOCATION_UNAVAILABLE when Redis is down under fail_closed, and passes under fail_open', async () => {
    const closed = setup({ revocation: REVOCATION })
    closed.store.unavailable = true
    const refused = await closed.request(await bearer())
    expect(refused.exitResult).toMatchObject({
      status: 503,
      body: { code: 'ERR_REVOCATION_UNAVAILABLE' },
    })
    expect(refused.authenticated).toBeUndefined()

    const open = setup({
      revocation: { ...REVOCATION, on_unavailable: 'fail_open' },
    })
    open.store.unavailable = true
    const passed = await open.request(await bearer())
    expect(passed.exitResult).toBeUndefined()
    expect(passed.authenticated?.consumer).toEqual(WEB)
    expect(open.logger.text()).toContain('fail_open')
  })

  it('shares the token for separate plugins only when share_token is set (one more call)', async () => {
    const { request } = setup({ share_token: true })
    const kong = await request(await bearer())
    expect(kong.shared.get('authenticated_jwt_token')).toEqual(expect.any(String))
    expect(kong.calls.slice(-2)).toEqual(['kong.ctx.shared.set', 'kong.client.authenticate'])
  })

  it('applies the rules to an anonymous fallback as scope-acl would: a rule needing scopes refuses with 401', async () => {
    const { request } = setup({ scopes: METHOD_RULES, anonymous: 'anonymous' })
    const kong = await request({ method: 'GET' })
    expect(kong.exitResult).toMatchObject({
      status: 401,
      body: { code: 'ERR_SCOPE_CONTEXT_MISSING' },
    })
    expect(kong.authenticated).toBeUndefined()
  })

  it('authenticates the anonymous consumer last when the rules let the method pass', async () => {
    const { request } = setup({
      scopes: { ...METHOD_RULES, allow_unlisted_methods: true },
      anonymous: 'anonymous',
    })
    const kong = await request({ method: 'POST' })
    expect(kong.exitResult).toBeUndefined()
    expect(kong.authenticated?.consumer).toEqual(ANON)
    expect(kong.calls.at(-1)).toBe('kong.client.authenticate')
  })

  it('publishes the token scopes as authenticated groups when scopes.publish_groups is set', async () => {
    const { request } = setup({ scopes: { ...METHOD_RULES, publish_groups: true } })
    const kong = await request(await bearer({ scope: 'orders:read orders:write' }))
    expect(kong.shared.get('authenticated_groups')).toEqual(['orders:read', 'orders:write'])
  })

  it('reads the route once for per-route rules, and refuses per-route rules on a route-bound instance', async () => {
    const { handler } = setup({
      scopes: {
        routes: [{ route: 'orders', rules: [{ methods: ['GET'], scopes: ['orders:admin'] }] }],
        allow_unlisted_methods: true,
      },
    })
    const kong = new FakeKong(await bearer())
    kong.consumers.push(WEB)
    kong.route = { id: 'r1', name: 'orders' }
    await handler.accessWith(kong)
    expect(kong.exitResult?.body.code).toBe('ERR_SCOPE_INSUFFICIENT')
    expect(kong.calls.filter((c) => c === 'kong.router.get_route')).toHaveLength(1)

    const bound = setup({
      route_id: 'r1',
      scopes: { routes: [{ route: 'orders', rules: [{ methods: ['GET'], scopes: ['x'] }] }] },
    })
    const refused = await bound.request(await bearer())
    expect(refused.exitResult?.body.code).toBe('ERR_CONFIG_INVALID')
    expect(bound.logger.text()).toContain('scopes.routes')
  })

  it('names the nested field of a bad scopes or revocation setting in the config error', async () => {
    const dup = setup({
      scopes: {
        rules: [
          { methods: ['GET'], scopes: ['a'] },
          { methods: ['GET'], scopes: ['b'] },
        ],
      },
    })
    const kong = await dup.request(await bearer())
    expect(kong.exitResult?.status).toBe(500)
    expect(dup.logger.text()).toContain('scopes.rules[1].methods')

    const badRedis = setup({ revocation: { check: ['jti'], redis: { url: 'ftp://nope' } } })
    await badRedis.request(await bearer())
    expect(badRedis.logger.text()).toContain('revocation.redis')
    expect(badRedis.logger.text()).not.toContain('revocation.revocation')
    const noRedis = setup({ revocation: { check: ['jti'] } })
    await noRedis.request(await bearer())
    expect(noRedis.logger.text()).toContain('revocation.redis: must name the Redis')
    expect(noRedis.logger.text()).not.toContain('revocation.revocation')
    expect(dup.logger.text()).not.toContain('scopes.scopes')
  })

  /** The config as Kong sends it: every record filled with its fields' defaults (F7). */
  const kongFilled = (config: Record<string, unknown>): Record<string, unknown> =>
    processConfig(Schema as unknown as readonly SchemaField[], {
      credentials: [{ key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET }],
      share_token: false,
      ...config,
    })

  it('checks neither scopes nor revocation when neither was configured (Kong sends empty records)', async () => {
    const filled = kongFilled({})
    expect(filled.scopes).toEqual({ default_rule: {} })
    expect(filled.revocation).toEqual({ redis: {} })
    const { request, store } = setup(filled)
    const kong = await request(await bearer({}, 'DELETE'))
    expect(kong.exitResult).toBeUndefined()
    expect(store.lookups).toEqual([])
    expect(kong.calls).not.toContain('kong.request.get_method')
  })

  it("checks revocation with jwt-revocation's defaults (jti, subject, consumer) when only the Redis is written", async () => {
    const { request, store } = setup(
      kongFilled({ revocation: { redis: { url: 'redis://127.0.0.1:6379' } } }),
    )
    const kong = await request(await bearer())
    expect(kong.exitResult).toBeUndefined()
    expect(store.lookups).toHaveLength(1)
    expect(store.lookups[0]?.map((k) => k.split(':')[1])).toEqual([
      'jti',
      'sub',
      'iss',
      'consumer',
      'consumer',
    ])
  })

  it('refuses revocation settings that name no Redis, rather than asking a default one', async () => {
    for (const revocation of [{ on_unavailable: 'fail_open' }, { redis: { url: '' } }]) {
      const { request, logger } = setup(kongFilled({ revocation }))
      const kong = await request(await bearer())
      expect(kong.exitResult?.body.code).toBe('ERR_CONFIG_INVALID')
      expect(logger.text()).toContain('revocation.redis: must name the Redis to ask')
    }
  })

  it('checks the route scope of a Kong-filled config written as in kong.yml', async () => {
    const { request } = setup(
      kongFilled({ scopes: { default_rule: { scopes: ['orders:admin'] } } }),
    )
    const kong = await request(await bearer())
    expect(kong.exitResult?.body.code).toBe('ERR_SCOPE_INSUFFICIENT')
  })

  it('refuses scope settings without any rule, rather than ignoring them', async () => {
    const { request, logger } = setup(kongFilled({ scopes: { wildcard_suffix: true } }))
    const kong = await request(await bearer())
    expect(kong.exitResult?.body.code).toBe('ERR_CONFIG_INVALID')
    expect(logger.text()).toContain('scopes.rules: no rule')
  })

  it('applies the scope rules to a preflight it lets through (run_on_preflight: false), as scope-acl would', async () => {
    const { request } = setup({ scopes: METHOD_RULES, run_on_preflight: false })
    const kong = await request({ method: 'OPTIONS' })
    // No rule lists OPTIONS and there is no token: a missing login (401), as scope-acl answers.
    expect(kong.exitResult?.body.code).toBe('ERR_SCOPE_CONTEXT_MISSING')
    expect(kong.calls).toEqual(['kong.request.get_method', 'kong.response.exit'])
    const allowed = setup({
      scopes: { ...METHOD_RULES, allow_unlisted_methods: true },
      run_on_preflight: false,
    })
    const passed = await allowed.request({ method: 'OPTIONS' })
    expect(passed.exitResult).toBeUndefined()
    expect(passed.authenticated).toBeUndefined()
  })

  it('refuses a rule needing scopes when another auth plugin authenticated the request (logical OR)', async () => {
    const { handler } = setup({ scopes: METHOD_RULES, anonymous: 'anonymous' })
    const kong = new FakeKong({ method: 'GET' })
    kong.authenticated = { consumer: WEB, credential: { id: 'key-auth-cred', consumer_id: WEB.id } }
    await handler.accessWith(kong)
    expect(kong.exitResult?.body.code).toBe('ERR_SCOPE_CONTEXT_MISSING')
  })
})
