import { describe, expect, it } from '@jest/globals'
import { labelled } from '../../../helpers/labelled'
import * as manifest from '../../../../plugins/scope-acl/index'
import { ScopeAclPlugin } from '../../../../plugins/scope-acl/handler'
import type { Pdk } from '../../../../plugins/shared/pdk/port'
import { FakeKong, type FakeRequest } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'

const ORDERS = {
  rules: [
    { methods: ['GET', 'HEAD'], scopes: ['orders:read'], match: 'all', log_only: false },
    { methods: ['POST', 'PUT', 'PATCH'], scopes: ['orders:write'], match: 'all', log_only: false },
    { methods: ['DELETE'], scopes: ['orders:admin'], match: 'all', log_only: false },
  ],
  default_rule: null,
  allow_unlisted_methods: false,
  routes: [],
  scope_claims: ['scope', 'scp'],
  wildcard_suffix: false,
  publish_groups: false,
  realm: 'orders-api',
}

/** A compact JWT as a verifier shares it; scope-acl decodes it and never checks the signature. */
function jwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ iat: 1_700_000_000, exp: 4_000_000_000, ...claims })}.c2lnbmF0dXJl`
}

async function run(
  config: unknown,
  req: FakeRequest,
  token?: string,
  setup?: (fake: FakeKong) => void,
) {
  const fake = new FakeKong(req)
  if (token !== undefined) fake.shared.set('authenticated_jwt_token', token)
  setup?.(fake)
  const logger = new MemoryLogger()
  // Every refusal written with its detail, so tests can see what reached the log.
  const withLog =
    typeof config === 'object' && config !== null && !Array.isArray(config)
      ? { log_refusals: 'every', ...config }
      : config
  const plugin = new ScopeAclPlugin(withLog, { adapt: (kong) => kong as Pdk, logger })
  await plugin.access(fake)
  return { fake, logger }
}

describe('scope-acl: (handler)', () => {
  it('lets a GET with orders:read through without touching the response', async () => {
    const { fake } = await run(ORDERS, { method: 'GET' }, jwt({ scope: 'orders:read' }))
    expect(fake.exitResult).toBeUndefined()
    expect(fake.calls).toEqual(['kong.request.get_method', 'kong.ctx.shared.get'])
  })

  it('refuses a POST without orders:write with 403 ERR_SCOPE_INSUFFICIENT and an insufficient_scope challenge naming the scope', async () => {
    const { fake, logger } = await run(ORDERS, { method: 'POST' }, jwt({ scope: 'orders:read' }))
    expect(fake.exitResult).toEqual({
      status: 403,
      body: { message: 'Insufficient scope', code: 'ERR_SCOPE_INSUFFICIENT' },
      headers: {
        'WWW-Authenticate':
          'Bearer realm="orders-api", error="insufficient_scope", error_description="Insufficient scope", scope="orders:write"',
      },
    })
    expect(logger.text()).toContain('missing [orders:write]')
  })

  it('refuses a request without a verified token with 401 ERR_SCOPE_CONTEXT_MISSING, never 403', async () => {
    const { fake } = await run(ORDERS, { method: 'GET' })
    expect(fake.exitResult).toEqual({
      status: 401,
      body: { message: 'Unauthorized', code: 'ERR_SCOPE_CONTEXT_MISSING' },
      headers: { 'WWW-Authenticate': 'Bearer realm="orders-api"' },
    })
  })

  it("reads the token Kong's bundled jwt plugin left in kong.ctx.shared.authenticated_jwt_token", async () => {
    // Kong's jwt plugin stores the raw token string under this key after verifying it.
    const kongJwtToken = jwt({ iss: 'partner-key', scp: ['orders:read'] })
    const allowed = await run(ORDERS, { method: 'GET' }, kongJwtToken)
    expect(allowed.fake.exitResult).toBeUndefined()
    const refused = await run(ORDERS, { method: 'DELETE' }, kongJwtToken)
    expect(refused.fake.exitResult?.status).toBe(403)
    expect(refused.fake.exitResult?.headers['WWW-Authenticate']).toContain('scope="orders:admin"')
  })

  it('refuses a method no rule lists with 403 and no scope attribute', async () => {
    const { fake } = await run(
      ORDERS,
      { method: 'OPTIONS' },
      jwt({ scope: 'orders:read orders:write orders:admin' }),
    )
    expect(fake.exitResult?.status).toBe(403)
    expect(fake.exitResult?.body).toEqual({
      message: 'Insufficient scope',
      code: 'ERR_SCOPE_INSUFFICIENT',
    })
    expect(fake.exitResult?.headers['WWW-Authenticate']).not.toContain('scope=')
  })

  describe('round trips', () => {
    it('takes 3 when the rules depend on the method: HandleEvent, get_method, ctx.get', async () => {
      const { fake } = await run(ORDERS, { method: 'PUT' }, jwt({ scope: 'orders:write' }))
      expect(fake.roundTrips).toBe(3)
    })

    it('takes 2 and never reads the method when every method needs the same scopes', async () => {
      const { fake } = await run(
        { default_rule: { scopes: ['orders:read'] } },
        { method: 'DELETE' },
        jwt({ scope: 'orders:read' }),
      )
      expect(fake.calls).toEqual(['kong.ctx.shared.get'])
      expect(fake.roundTrips).toBe(2)
    })

    it('takes 2 and never reads the token for an unlisted method that is allowed', async () => {
      const { fake } = await run({ ...ORDERS, allow_unlisted_methods: true }, { method: 'OPTIONS' })
      expect(fake.exitResult).toBeUndefined()
      expect(fake.calls).toEqual(['kong.request.get_method'])
    })

    it('makes no call after the exit of a refusal, not even to publish groups', async () => {
      const { fake } = await run(
        { ...ORDERS, publish_groups: true },
        { method: 'POST' },
        jwt({ scope: 'orders:read' }),
      )
      expect(fake.calls).toEqual([
        'kong.request.get_method',
        'kong.ctx.shared.get',
        'kong.response.exit',
      ])
      expect(fake.shared.has('authenticated_groups')).toBe(false)
    })

    it('adds get_route only when there are per-route entries', async () => {
      const config = {
        ...ORDERS,
        routes: [
          { route: 'partner-orders', rules: [{ methods: ['GET'], scopes: ['partner:read'] }] },
        ],
      }
      const partner = await run(
        config,
        { method: 'GET' },
        jwt({ scope: 'orders:read' }),
        (fake) => {
          fake.route = { id: 'r1', name: 'partner-orders' }
        },
      )
      expect(partner.fake.calls).toEqual([
        'kong.router.get_route',
        'kong.request.get_method',
        'kong.ctx.shared.get',
        'kong.response.exit',
      ])
      expect(partner.fake.exitResult?.headers['WWW-Authenticate']).toContain('scope="partner:read"')
      const other = await run(config, { method: 'GET' }, jwt({ scope: 'orders:read' }), (fake) => {
        fake.route = { id: 'r2', name: 'web-orders' }
      })
      expect(other.fake.exitResult).toBeUndefined()
      expect(other.fake.roundTrips).toBe(4)
    })

    it('adds one ctx.set when publishing the scopes as authenticated groups', async () => {
      const { fake } = await run(
        { ...ORDERS, publish_groups: true },
        { method: 'GET' },
        jwt({ scope: 'orders:write orders:read' }),
      )
      expect(fake.exitResult).toBeUndefined()
      expect(fake.calls).toEqual([
        'kong.request.get_method',
        'kong.ctx.shared.get',
        'kong.ctx.shared.set',
      ])
      expect(fake.shared.get('authenticated_groups')).toEqual(['orders:read', 'orders:write'])
    })
  })

  it('publishes groups on an allowed unlisted method when a token is there, and skips it when none is', async () => {
    const config = { ...ORDERS, allow_unlisted_methods: true, publish_groups: true }
    const withToken = await run(config, { method: 'OPTIONS' }, jwt({ scp: ['b', 'a'] }))
    expect(withToken.fake.shared.get('authenticated_groups')).toEqual(['a', 'b'])
    const without = await run(config, { method: 'OPTIONS' })
    expect(without.fake.exitResult).toBeUndefined()
    expect(without.fake.calls).toEqual(['kong.request.get_method', 'kong.ctx.shared.get'])
  })

  it('lets a request a log-only rule would refuse through and logs the refusal', async () => {
    const config = {
      ...ORDERS,
      rules: [{ methods: ['GET'], scopes: ['orders:read'], log_only: true }],
      allow_unlisted_methods: true,
    }
    const refusedScope = await run(config, { method: 'GET' }, jwt({ scope: 'profile' }))
    expect(refusedScope.fake.exitResult).toBeUndefined()
    expect(refusedScope.logger.lines).toContainEqual({
      level: 'warn',
      message: expect.stringContaining('log-only: would refuse with ERR_SCOPE_INSUFFICIENT'),
    })
    const noToken = await run(config, { method: 'GET' })
    expect(noToken.fake.exitResult).toBeUndefined()
    expect(noToken.logger.text()).toContain('ERR_SCOPE_CONTEXT_MISSING')
  })

  it('answers 500 ERR_INTERNAL when something other than a JWT sits in authenticated_jwt_token', async () => {
    const { fake } = await run(ORDERS, { method: 'GET' }, undefined, (f) =>
      f.shared.set('authenticated_jwt_token', 'not-a-jwt'),
    )
    expect(fake.exitResult?.status).toBe(500)
    expect(fake.exitResult?.body).toEqual({ message: 'Internal error', code: 'ERR_INTERNAL' })
  })

  it('an unexpected exception in the core produces 500 ERR_INTERNAL and never lets the request through', async () => {
    for (const failing of ['kong.request.get_method', 'kong.ctx.shared.get']) {
      const { fake, logger } = await run(
        ORDERS,
        { method: 'GET' },
        jwt({ scope: 'orders:read' }),
        (f) => {
          f.failOn = failing
        },
      )
      labelled(fake.exitResult, failing).toEqual({
        status: 500,
        body: { message: 'Internal error', code: 'ERR_INTERNAL' },
        headers: {},
      })
      expect(logger.text()).toContain(`fake failure in ${failing}`)
    }
    // A claims value that throws when read stands for a bug inside the decision itself.
    const hostile = new FakeKong({ method: 'GET' })
    const plugin = new ScopeAclPlugin(ORDERS, { adapt: () => hostile, logger: new MemoryLogger() })
    hostile.ctx.get = () => Promise.resolve(jwt({ scope: 'orders:read' }))
    const original = hostile.request.getMethod
    hostile.request.getMethod = () =>
      original().then(
        () =>
          ({
            toUpperCase: () => {
              throw new Error('boom')
            },
          }) as unknown as string,
      )
    await plugin.access(hostile)
    expect(hostile.exitResult?.status).toBe(500)
    expect(hostile.exitResult?.body.code).toBe('ERR_INTERNAL')
  })

  it('never throws from the constructor and answers a bad config with 500 ERR_CONFIG_INVALID', async () => {
    expect(() => new ScopeAclPlugin({ rules: 'nope' })).not.toThrow()
    const { fake, logger } = await run(
      { ...ORDERS, rules: [{ methods: ['GET'], scopes: ['orders:*'] }] },
      { method: 'GET' },
      jwt({ scope: 'orders:read' }),
    )
    expect(fake.exitResult).toEqual({
      status: 500,
      body: { message: 'Internal error', code: 'ERR_CONFIG_INVALID' },
      headers: {},
    })
    // Kong's own error log gets the reason once, at [error], then the request its 500.
    expect(fake.calls).toEqual(['kong.log.err', 'kong.response.exit'])
    expect(fake.kongErrors.join('\n')).toContain('rules[0].scopes[0]')
    expect(logger.text()).toContain('rules[0].scopes[0]')
  })
})

describe('scope-acl: (manifest)', () => {
  it('exports exactly Name, Version, Priority, Schema and Plugin', () => {
    expect(Object.keys(manifest).sort()).toEqual([
      'Name',
      'Plugin',
      'Priority',
      'Schema',
      'Version',
    ])
    expect(manifest.Name).toBe('scope-acl')
    expect(manifest.Priority).toBe(960)
    expect(manifest.Version).toMatch(/^\d+\.\d+\.\d+$/)
    expect(typeof manifest.Plugin.prototype.access).toBe('function')
  })
})
