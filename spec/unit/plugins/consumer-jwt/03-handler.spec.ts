import { describe, expect, it } from '@jest/globals'
import { ConsumerJwtHandler } from '../../../../plugins/consumer-jwt/handler'
import { FakeKong, type FakeRequest } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'
import { HS_SECRET, keyPair, mint, secretKey } from '../../../helpers/tokens'

const NOW = 1_800_000_000
const clock = { now: () => NOW * 1000 }
const WEB = { id: '0a0a0a0a-0000-4000-8000-000000000001', username: 'web-app', custom_id: 'web-1' }
const ANON = { id: '0a0a0a0a-0000-4000-8000-0000000000ff', username: 'anonymous' }

function setup(config: Record<string, unknown> = {}, req: FakeRequest = {}) {
  const logger = new MemoryLogger()
  const handler = new ConsumerJwtHandler(
    {
      credentials: [{ key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET }],
      claims_to_headers: [{ claim: 'sub', header: 'X-Subject' }],
      // Every refusal written with its detail, so tests can see what reached the log.
      log_refusals: 'every',
      ...config,
    },
    { clock, env: {}, logger },
  )
  const kong = new FakeKong(req)
  kong.consumers.push(WEB, ANON)
  return { handler, kong, logger }
}

const token = (claims: Record<string, unknown> = {}, ttl = 300) =>
  mint({ iss: 'web', sub: 'user-42', ...claims }, { key: secretKey(), now: NOW, ttl })

describe('consumer-jwt: (handler)', () => {
  it('sets the identity headers, shares the token and authenticates the consumer last, in 5 round trips', async () => {
    const t = await token()
    const { handler, kong } = setup(
      {},
      { headers: { authorization: `Bearer ${t}`, 'x-subject': 'spoofed' } },
    )
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
    expect(kong.authenticated?.consumer).toEqual(WEB)
    expect(kong.authenticated?.credential).toMatchObject({ consumer_id: WEB.id, key: 'web' })
    expect(kong.upstreamHeader('X-Consumer-ID')).toBe(WEB.id)
    expect(kong.upstreamHeader('X-Consumer-Username')).toBe('web-app')
    expect(kong.upstreamHeader('X-Consumer-Custom-ID')).toBe('web-1')
    expect(kong.upstreamHeader('X-Credential-Identifier')).toBe('web')
    expect(kong.upstreamHeaders['x-anonymous-consumer']).toEqual([])
    expect(kong.upstreamHeader('X-Subject')).toBe('user-42')
    expect(kong.shared.get('authenticated_jwt_token')).toBe(t)
    expect(kong.calls).toEqual([
      'kong.request.get_headers',
      'kong.client.load_consumer',
      'kong.service.request.set_headers',
      'kong.ctx.shared.set',
      'kong.client.authenticate',
    ])
  })

  it('needs 5 round trips in total once the consumer is cached', async () => {
    const t = await token()
    const { handler } = setup()
    const first = new FakeKong({ headers: { authorization: `Bearer ${t}` } })
    first.consumers.push(WEB)
    await handler.accessWith(first)
    const second = new FakeKong({ headers: { authorization: `Bearer ${t}` } })
    await handler.accessWith(second)
    expect(second.exitResult).toBeUndefined()
    expect(second.roundTrips).toBe(5)
  })

  it('refuses a request without a token with 401 ERR_TOKEN_MISSING, a challenge without error, in 2 round trips', async () => {
    const { handler, kong } = setup({ realm: 'orders' })
    await handler.accessWith(kong)
    expect(kong.exitResult).toEqual({
      status: 401,
      body: { message: 'Unauthorized', code: 'ERR_TOKEN_MISSING' },
      headers: { 'WWW-Authenticate': 'Bearer realm="orders"' },
    })
    expect(kong.roundTrips).toBe(2)
    expect(kong.authenticated).toBeUndefined()
  })

  it('refuses an expired token with invalid_token and keeps the detail in the log, not the body', async () => {
    const t = await token({}, -100)
    const { handler, kong, logger } = setup(
      { leeway: 0 },
      { headers: { authorization: `Bearer ${t}` } },
    )
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(401)
    expect(kong.exitResult?.body).toEqual({ message: 'Token expired', code: 'ERR_TOKEN_EXPIRED' })
    expect(kong.exitResult?.headers['WWW-Authenticate']).toBe(
      'Bearer realm="kong", error="invalid_token", error_description="Token expired"',
    )
    expect(logger.text()).toContain('ERR_TOKEN_EXPIRED')
    expect(kong.roundTrips).toBe(2)
  })

  it('refuses two different tokens with ERR_TOKEN_MULTIPLE', async () => {
    const [a, b] = [await token({ sub: 'a' }), await token({ sub: 'b' })]
    const { handler, kong } = setup(
      { cookie_names: ['session'] },
      { headers: { authorization: `Bearer ${a}`, cookie: `session=${b}` } },
    )
    await handler.accessWith(kong)
    expect(kong.exitResult?.body.code).toBe('ERR_TOKEN_MULTIPLE')
  })

  it('accepts the token from a cookie and, with hide_credentials, removes only that cookie upstream', async () => {
    const t = await token()
    const { handler, kong } = setup(
      { cookie_names: ['session'], hide_credentials: true },
      { headers: { cookie: `theme=dark; session=${t}` } },
    )
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
    expect(kong.upstreamHeader('Cookie')).toBe('theme=dark')
  })

  it('with hide_credentials removes the Authorization header upstream', async () => {
    const t = await token()
    const { handler, kong } = setup(
      { hide_credentials: true },
      { headers: { authorization: `Bearer ${t}` } },
    )
    await handler.accessWith(kong)
    expect(kong.upstreamHeaders.authorization).toEqual([])
  })

  it('accepts the token from a query parameter and hides it with one more call', async () => {
    const t = await token()
    const { handler, kong } = setup(
      { uri_param_names: ['jwt'], hide_credentials: true },
      { query: { jwt: t, page: '2' } },
    )
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
    expect(kong.rawQuery).toBe('page=2')
  })

  it('removes a claim header the client sent when the token lacks the claim', async () => {
    const t = await token({ sub: null })
    const { handler, kong } = setup(
      {},
      { headers: { authorization: `Bearer ${t}`, 'x-subject': 'spoofed' } },
    )
    await handler.accessWith(kong)
    expect(kong.upstreamHeaders['x-subject']).toEqual([])
  })

  it('ignores an Authorization header of another scheme (another plugin may own it)', async () => {
    const { handler, kong } = setup({}, { headers: { authorization: 'Basic dXNlcjpwYXNz' } })
    await handler.accessWith(kong)
    expect(kong.exitResult?.body.code).toBe('ERR_TOKEN_MISSING')
  })

  it('refuses with 401 ERR_CONSUMER_NOT_FOUND when Kong has no such consumer', async () => {
    const t = await token()
    const { handler, kong } = setup({}, { headers: { authorization: `Bearer ${t}` } })
    kong.consumers.length = 0
    await handler.accessWith(kong)
    expect(kong.exitResult?.body.code).toBe('ERR_CONSUMER_NOT_FOUND')
  })

  it('falls back to the anonymous consumer on failure, with X-Anonymous-Consumer: true', async () => {
    const { handler, kong } = setup({ anonymous: 'anonymous' })
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
    expect(kong.authenticated).toEqual({ consumer: ANON, credential: null })
    expect(kong.upstreamHeader('X-Anonymous-Consumer')).toBe('true')
    expect(kong.upstreamHeaders['x-credential-identifier']).toEqual([])
    expect(kong.shared.has('authenticated_jwt_token')).toBe(false)
  })

  it('with anonymous set, leaves a request another auth plugin authenticated alone, but removes claim headers the client sent', async () => {
    const { handler, kong } = setup(
      { anonymous: 'anonymous' },
      { headers: { 'x-subject': 'spoofed' } },
    )
    kong.authenticated = { consumer: WEB, credential: { id: 'key-auth-cred' } }
    await handler.accessWith(kong)
    expect(kong.calls).toEqual(['kong.client.get_credential', 'kong.service.request.set_headers'])
    expect(kong.upstreamHeaders).toEqual({ 'x-subject': [] })
    expect(kong.exitResult).toBeUndefined()
  })

  it('with anonymous set, reads a nil credential decoded as null as none: the request without a token is not waved through', async () => {
    const { handler, kong } = setup({ anonymous: 'anonymous' })
    kong.client.getCredential = () => Promise.resolve(null)
    await handler.accessWith(kong)
    // No token: the anonymous fallback authenticates, rather than the request passing as if
    // another plugin had already authenticated it.
    expect(kong.authenticated?.consumer).toEqual(ANON)
    expect(kong.calls).toContain('kong.client.authenticate')
  })

  it('with anonymous set and no claim headers configured, costs one call when another plugin authenticated', async () => {
    const { handler, kong } = setup({ anonymous: 'anonymous', claims_to_headers: [] })
    kong.authenticated = { consumer: WEB, credential: { id: 'key-auth-cred' } }
    await handler.accessWith(kong)
    expect(kong.calls).toEqual(['kong.client.get_credential'])
  })

  it("refuses with 400 ERR_REQUEST_INVALID when a token could hide past Kong's header limit", async () => {
    const t = await token()
    const headers: Record<string, string[]> = { authorization: [`Bearer ${t}`] }
    for (let i = 0; i < 1000; i++) headers[`x-filler-${i}`] = ['x']
    const { handler, kong } = setup({ anonymous: 'anonymous' }, { headers })
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(400)
    expect(kong.exitResult?.body.code).toBe('ERR_REQUEST_INVALID')
    expect(kong.exitResult?.headers['WWW-Authenticate']).toContain('error="invalid_request"')
  })

  it('refuses a scope claim it cannot read instead of ignoring it (no ceiling bypass upstream)', async () => {
    const t = await token({ scope: ['orders:read', 'orders:admin orders:write'] })
    const { handler, kong } = setup({}, { headers: { authorization: `Bearer ${t}` } })
    await handler.accessWith(kong)
    expect(kong.exitResult?.body.code).toBe('ERR_CLAIM_INVALID')
  })

  it('refuses with 500 ERR_CONFIG_INVALID when the anonymous consumer does not exist', async () => {
    const { handler, kong } = setup({ anonymous: 'ghost' })
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body.code).toBe('ERR_CONFIG_INVALID')
  })

  it('lets OPTIONS preflights through unauthenticated when run_on_preflight is false, without client claim headers', async () => {
    const { handler, kong } = setup(
      { run_on_preflight: false },
      { method: 'OPTIONS', headers: { 'x-subject': 'spoofed' } },
    )
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
    expect(kong.authenticated).toBeUndefined()
    expect(kong.calls).toEqual(['kong.request.get_method', 'kong.service.request.set_headers'])
    expect(kong.upstreamHeaders).toEqual({ 'x-subject': [] })
  })

  it('authenticates OPTIONS preflights by default', async () => {
    const { handler, kong } = setup({}, { method: 'OPTIONS' })
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(401)
  })

  it('refuses every request with 500 ERR_CONFIG_INVALID when its config is broken', async () => {
    const logger = new MemoryLogger()
    const handler = new ConsumerJwtHandler({ credentials: [] }, { logger })
    const kong = new FakeKong()
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body).toEqual({ message: 'Internal error', code: 'ERR_CONFIG_INVALID' })
    expect(kong.exitResult?.headers).toEqual({})
    expect(logger.text()).toContain('credentials')
  })

  it('refuses with 503 ERR_KEY_SOURCE_UNAVAILABLE, without a challenge, when the JWKS endpoint is dead and no keys are cached', async () => {
    const logger = new MemoryLogger()
    const handler = new ConsumerJwtHandler(
      {
        credentials: [
          {
            key: 'partner',
            consumer: 'web-app',
            algorithms: ['RS256'],
            jwks_uri: 'http://127.0.0.1:9/jwks',
            jwks_allow_http: true,
          },
        ],
        jwks_timeout_ms: 200,
        log_refusals: 'every',
      },
      {
        clock,
        env: {},
        logger,
        fetch: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9')),
      },
    )
    const { pair } = await keyPair('RS256')
    const rs = await mint({ iss: 'partner' }, { alg: 'RS256', key: pair.privateKey, now: NOW })
    const kong = new FakeKong({ headers: { authorization: `Bearer ${rs}` } })
    kong.consumers.push(WEB)
    await handler.accessWith(kong)
    expect(kong.exitResult).toEqual({
      status: 503,
      body: { message: 'Key source unavailable', code: 'ERR_KEY_SOURCE_UNAVAILABLE' },
      headers: {},
    })
    expect(logger.text()).toContain('ECONNREFUSED')
  })

  it('answers an unexpected exception with 500 ERR_INTERNAL and never lets the request through', async () => {
    const t = await token()
    const { handler, kong, logger } = setup({}, { headers: { authorization: `Bearer ${t}` } })
    kong.failOn = 'kong.service.request.set_headers'
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body.code).toBe('ERR_INTERNAL')
    expect(kong.shared.has('authenticated_jwt_token')).toBe(false)
    expect(kong.authenticated).toBeUndefined()
    expect(logger.text()).toContain('fake failure')
  })

  it('sends a scope claim upstream as the scopes it checked, joined by single spaces, whatever separated them', async () => {
    const t = await token({ scope: 'orders:read\torders:write\r\n  orders:admin' })
    const { handler, kong } = setup(
      { claims_to_headers: [{ claim: 'scope', header: 'X-Scope' }] },
      { headers: { authorization: `Bearer ${t}` } },
    )
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
    expect(kong.upstreamHeader('X-Scope')).toBe('orders:read orders:write orders:admin')
  })

  it('turns each run of control characters of another claim into one space, never joining words', async () => {
    const t = await token({ team: 'blue\tteam\r\nnorth\u0000east' })
    const { handler, kong } = setup(
      { claims_to_headers: [{ claim: 'team', header: 'X-Team' }] },
      { headers: { authorization: `Bearer ${t}` } },
    )
    await handler.accessWith(kong)
    expect(kong.upstreamHeader('X-Team')).toBe('blue team north east')
  })
})
