import { describe, expect, it } from '@jest/globals'
import { JwtRevocationHandler, throttledLog } from '../../../../plugins/jwt-revocation/handler'
import type { Config } from '../../../../plugins/jwt-revocation/schema'
import type { Clock } from '../../../../plugins/shared/clock'
import type { RevocationStore } from '../../../../plugins/shared/revocation/revocation-store'
import { FakeKong } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'
import { MemoryRevocationStore } from '../../../helpers/memory-revocation-store'

const NOW = 1_700_000_000
const clock: Clock = { now: () => NOW * 1000 }

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
/** Only decoded by the plugin (it trusts the authentication plugin's verification). */
const jwt = (claims: Record<string, unknown>): string =>
  `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.c2ln`

const claims = {
  jti: 'tok-1',
  sub: 'alice',
  iss: 'https://idp.example',
  iat: NOW - 60,
  exp: NOW + 240,
}

/** `token: null` leaves kong.ctx.shared without a verified token. */
function setup(config: Record<string, unknown> = {}, token: string | null = jwt(claims)) {
  const store = new MemoryRevocationStore('jwt-revocation:', clock)
  const logger = new MemoryLogger()
  const storeConfigs: Config[] = []
  // Every refusal written with its detail, so tests can see what reached the log.
  const handler = new JwtRevocationHandler(
    { log_refusals: 'every', ...config },
    {
      logger,
      clock,
      storeFor: (c) => {
        storeConfigs.push(c)
        return store
      },
    },
  )
  const kong = new FakeKong({ headers: { authorization: 'Bearer x' } })
  if (token !== null) kong.shared.set('authenticated_jwt_token', token)
  kong.authenticated = { consumer: { id: 'c-1', username: 'partner' }, credential: null }
  return { store, logger, handler, kong, storeConfigs }
}

describe('jwt-revocation: (handler)', () => {
  it('refuses a token more than the jti retention past exp, whose jti revocation may be forgotten', async () => {
    const { handler, kong, store } = setup({}, jwt({ ...claims, exp: NOW - 301 }))
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(401)
    expect(kong.exitResult?.body.code).toBe('ERR_TOKEN_EXPIRED')
    expect(store.lookups).toEqual([])
  })

  it('refuses a token issued in the future, which no revocation cutoff could reach', async () => {
    const { handler, kong } = setup({}, jwt({ ...claims, iat: NOW + 3600 * 24 * 365 }))
    await handler.accessWith(kong)
    expect(kong.exitResult?.body.code).toBe('ERR_TOKEN_NOT_YET_VALID')
  })

  it('passes a token nothing revokes: 2 PDK calls (3 round trips), one store lookup, no exit', async () => {
    const { handler, kong, store } = setup()
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
    expect(kong.calls).toEqual(['kong.ctx.shared.get', 'kong.client.get_consumer'])
    expect(kong.roundTrips).toBe(3)
    expect(store.lookups).toEqual([
      [
        'jwt-revocation:jti:tok-1',
        'jwt-revocation:sub:alice',
        'jwt-revocation:iss:https%3A%2F%2Fidp.example:sub:alice',
        'jwt-revocation:consumer:id:c-1',
        'jwt-revocation:consumer:username:partner',
      ],
    ])
  })

  it('skips the consumer call when consumer revocations are not checked', async () => {
    const { handler, kong } = setup({ check: ['jti', 'subject'] })
    await handler.accessWith(kong)
    expect(kong.calls).toEqual(['kong.ctx.shared.get'])
    expect(kong.roundTrips).toBe(2)
  })

  it.each([
    ['a revoked jti', { kind: 'jti', jti: 'tok-1' }, NOW - 5],
    ['a subject cutoff after iat', { kind: 'subject', sub: 'alice' }, NOW],
    [
      'a per-issuer subject cutoff',
      { kind: 'subject', sub: 'alice', iss: 'https://idp.example' },
      NOW,
    ],
    ['a consumer cutoff by id', { kind: 'consumer', id: 'c-1' }, NOW],
    ['a consumer cutoff by username', { kind: 'consumer_username', username: 'partner' }, NOW],
  ] as const)(
    'refuses %s with 401 ERR_TOKEN_REVOKED and an invalid_token challenge',
    async (_, target, at) => {
      const { handler, kong, store, logger } = setup()
      await store.revoke(target, { at, reason: 'test' })
      await handler.accessWith(kong)
      expect(kong.exitResult?.status).toBe(401)
      expect(kong.exitResult?.body).toEqual({ message: 'Token revoked', code: 'ERR_TOKEN_REVOKED' })
      expect(kong.exitResult?.headers['WWW-Authenticate']).toBe(
        'Bearer realm="kong", error="invalid_token", error_description="Token revoked"',
      )
      expect(logger.text()).toMatch(/ERR_TOKEN_REVOKED.*revoked/)
    },
  )

  it('passes a token issued after its subject was revoked (the user logged in again)', async () => {
    const { handler, kong, store } = setup()
    await store.revoke({ kind: 'subject', sub: 'alice' }, { at: NOW - 120 })
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
  })

  it('ignores a per-issuer cutoff of another issuer', async () => {
    const { handler, kong, store } = setup()
    await store.revoke({ kind: 'subject', sub: 'alice', iss: 'https://other' }, { at: NOW })
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
  })

  it('uses the configured realm and key prefix', async () => {
    const { handler, kong, store, storeConfigs } = setup({ realm: 'api', key_prefix: 'staging:' })
    await handler.accessWith(kong)
    expect(storeConfigs[0]?.key_prefix).toBe('staging:')
    // The memory store here was built with the default prefix: the handler hands the prefix to
    // the store factory rather than spelling keys itself.
    expect(store.lookups).toHaveLength(1)
    const revoked = setup({ realm: 'api' })
    await revoked.store.revoke({ kind: 'jti', jti: 'tok-1' }, { at: NOW })
    await revoked.handler.accessWith(revoked.kong)
    expect(revoked.kong.exitResult?.headers['WWW-Authenticate']).toMatch(
      /^Bearer realm="api", error="invalid_token"/,
    )
  })

  it('refuses a token without jti with 401 ERR_CLAIM_MISSING, before fetching the consumer', async () => {
    const { handler, kong, store } = setup({}, jwt({ sub: 'alice', iat: NOW }))
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(401)
    expect(kong.exitResult?.body['code']).toBe('ERR_CLAIM_MISSING')
    expect(kong.calls).toEqual(['kong.ctx.shared.get', 'kong.response.exit'])
    expect(store.lookups).toHaveLength(0)
  })

  it('refuses a token without iat whose subject has a cutoff, with 401 ERR_CLAIM_MISSING', async () => {
    const { handler, kong, store } = setup({}, jwt({ jti: 'j', sub: 'alice' }))
    await store.revoke({ kind: 'subject', sub: 'alice' }, { at: NOW })
    await handler.accessWith(kong)
    expect(kong.exitResult?.body['code']).toBe('ERR_CLAIM_MISSING')
  })

  describe('without a verified token in the context', () => {
    it("passes by default (authentication, and anonymous access, are the auth plugin's call)", async () => {
      const { handler, kong, store } = setup({}, null)
      await handler.accessWith(kong)
      expect(kong.exitResult).toBeUndefined()
      expect(kong.calls).toEqual(['kong.ctx.shared.get'])
      expect(store.lookups).toHaveLength(0)
    })

    it('refuses with 401 ERR_SCOPE_CONTEXT_MISSING when require_token is set', async () => {
      const { handler, kong } = setup({ require_token: true }, null)
      await handler.accessWith(kong)
      expect(kong.exitResult?.status).toBe(401)
      expect(kong.exitResult?.body['code']).toBe('ERR_SCOPE_CONTEXT_MISSING')
      expect(kong.exitResult?.headers['WWW-Authenticate']).toBe('Bearer realm="kong"')
    })
  })

  describe('when the store is unavailable', () => {
    it('refuses with 503 ERR_REVOCATION_UNAVAILABLE and no challenge under fail_closed (default)', async () => {
      const { handler, kong, store } = setup()
      store.unavailable = true
      await handler.accessWith(kong)
      expect(kong.exitResult?.status).toBe(503)
      expect(kong.exitResult?.body['code']).toBe('ERR_REVOCATION_UNAVAILABLE')
      expect(kong.exitResult?.headers['WWW-Authenticate']).toBeUndefined()
    })

    it('passes and logs under fail_open', async () => {
      const { handler, kong, store, logger } = setup({ on_unavailable: 'fail_open' })
      store.unavailable = true
      await handler.accessWith(kong)
      expect(kong.exitResult).toBeUndefined()
      expect(logger.lines.some((l) => l.level === 'warn' && /fail_open/.test(l.message))).toBe(true)
    })

    it('logs fail_open passes at most once per interval, with a count', () => {
      const logger = new MemoryLogger()
      let t = 0
      const log = throttledLog(logger, 5000, () => t)
      log('a')
      t = 1000
      log('b')
      log('c')
      t = 6000
      log('d')
      expect(logger.lines.map((l) => l.message)).toEqual(['a', 'd [+2 more since the last report]'])
    })
  })

  it('an unexpected exception produces 500 ERR_INTERNAL and never lets the request through, even under fail_open', async () => {
    const { handler, kong, store, logger } = setup({ on_unavailable: 'fail_open' })
    store.failWith = new TypeError('bug in the store')
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body).toEqual({ message: 'Internal error', code: 'ERR_INTERNAL' })
    expect(logger.text()).toMatch(/bug in the store/)
  })

  it('a failing PDK call produces 500, not a pass', async () => {
    const { handler, kong } = setup()
    kong.failOn = 'kong.client.get_consumer'
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(500)
  })

  it('junk in kong.ctx.shared produces 500, not a pass', async () => {
    const { handler, kong } = setup({}, 'not-a-jwt')
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(500)
  })

  it('an invalid config refuses every request with 500 ERR_CONFIG_INVALID; the constructor does not throw', async () => {
    let handler: JwtRevocationHandler | undefined
    expect(() => {
      handler = new JwtRevocationHandler({ check: [] }, { logger: new MemoryLogger() })
    }).not.toThrow()
    const kong = new FakeKong()
    await handler?.accessWith(kong)
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body['code']).toBe('ERR_CONFIG_INVALID')
    expect(kong.calls).toEqual(['kong.log.err', 'kong.response.exit'])
    expect(kong.kongErrors.join('\n')).toContain('check')
  })

  it('creates its store once, on first use, not in the constructor', async () => {
    let made = 0
    const store: RevocationStore = { lookup: async (t) => t.map(() => undefined) }
    const handler = new JwtRevocationHandler(
      { check: ['jti'] },
      { logger: new MemoryLogger(), clock, storeFor: () => (made++, store) },
    )
    expect(made).toBe(0)
    for (let i = 0; i < 3; i++) {
      const kong = new FakeKong()
      kong.shared.set('authenticated_jwt_token', jwt(claims))
      await handler.accessWith(kong)
    }
    expect(made).toBe(1)
  })
})
