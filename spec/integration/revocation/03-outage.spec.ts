import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import { quietCli } from './helpers/cli'
import { JwtRevocationHandler } from '../../../plugins/jwt-revocation/handler'
import { closeSharedRedis } from '../../../plugins/shared/revocation/redis-clients'
import { forgetSharedRevocationStores } from '../../../plugins/shared/revocation/redis-revocation-store'
import { MemoryLogger } from '../../helpers/logger'
import { cacheLiveWithin, observedPlugin, request, token, within } from './helpers/plugin-requests'
import { noPrivateRedisReason, PrivateRedis, testPrefix } from './helpers/redis-server'
import { STORE_TESTS } from './helpers/plugin-requests'

/** The bound a decision must come within while Redis misbehaves: a bound, not a benchmark. */
const DECISION_BOUND_MS = 1500

const skip = noPrivateRedisReason()

;(skip !== undefined ? describe.skip : describe)(
  `jwt-revocation: (integration, Redis outages) ${skip ?? ''}`.trim(),
  () => {
    let server: PrivateRedis

    beforeAll(async () => {
      server = await PrivateRedis.start({ appendonly: true })
    })
    afterEach(async () => {
      // Each test gets fresh process-wide connections, as a new plugin server process would.
      await closeSharedRedis()
      forgetSharedRevocationStores()
      if (!server.running) await server.restart()
    })
    afterAll(async () => {
      await server?.dispose()
    })

    const plugin = (
      prefix: string,
      over: Record<string, unknown> = {},
    ): { handler: JwtRevocationHandler; logger: MemoryLogger } => {
      const logger = new MemoryLogger()
      const handler = new JwtRevocationHandler(
        {
          ...STORE_TESTS,
          redis: { url: server.url },
          key_prefix: prefix,
          timeout_ms: 200,
          ...over,
        },
        { logger },
      )
      return { handler, logger }
    }

    type Decision = { status: number; code: unknown; ms: number }

    /**
     * Sends requests back to back with fresh jtis (never cached) and records each decision;
     * `during` sees the decisions so far and returns when the scenario has played out.
     */
    async function traffic(
      handler: JwtRevocationHandler,
      during: (results: readonly Decision[]) => Promise<void>,
    ) {
      const results: Decision[] = []
      let stop = false
      const loop = (async () => {
        let i = 0
        while (!stop) {
          results.push(await request(handler, token({ jti: `t-${i++}`, sub: 'load' })))
          await new Promise((r) => setTimeout(r, 5))
        }
      })()
      try {
        await during(results)
      } finally {
        stop = true
        await loop
      }
      return results
    }

    /** Polls until the decisions after `from` hold one that `outage` recognises, and 5 more. */
    async function outageSeen(
      results: readonly Decision[],
      from: number,
      outage: (r: Decision) => boolean,
    ): Promise<void> {
      await within(5000, () => {
        const first = results.findIndex((r, i) => i >= from && outage(r))
        return Promise.resolve(first >= 0 && results.length - first > 5)
      })
    }

    it('fail_closed: Redis stopped mid-traffic turns into 503s, each decided within the bound, and recovers', async () => {
      const { handler } = plugin(testPrefix('stop-closed'), { cache_ttl_ms: 0 })
      let stoppedAt = 0
      const results = await traffic(handler, async (seen) => {
        await within(
          2000,
          async () => (await request(handler, token({ jti: 'warm' }))).status === 200,
        )
        await server.stop()
        stoppedAt = seen.length
        await outageSeen(seen, stoppedAt, (r) => r.status === 503)
      })
      // Once the outage is seen, every decision is the 503: none passes on a stale connection.
      const firstOutage = results.findIndex((r, i) => i >= stoppedAt && r.status === 503)
      expect(firstOutage).toBeGreaterThanOrEqual(0)
      expect(results.slice(firstOutage).every((r) => r.status === 503)).toBe(true)
      const statuses = new Set(results.map((r) => r.status))
      expect([...statuses].every((s) => s === 200 || s === 503)).toBe(true)
      expect(results.at(-1)).toMatchObject({ status: 503, code: 'ERR_REVOCATION_UNAVAILABLE' })
      expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(DECISION_BOUND_MS)
      await server.restart()
      const back = await within(
        5000,
        async () => (await request(handler, token({ jti: 'again' }))).status === 200,
        50,
      )
      expect(back).toBeLessThan(5000)
    })

    it('fail_open: Redis stopped mid-traffic lets requests through, logs it, within the bound', async () => {
      const { handler, logger } = plugin(testPrefix('stop-open'), {
        cache_ttl_ms: 0,
        on_unavailable: 'fail_open',
      })
      const unavailable = (): boolean =>
        logger.lines.some((l) => l.level === 'warn' && /fail_open/.test(l.message))
      const results = await traffic(handler, async (seen) => {
        await within(
          2000,
          async () => (await request(handler, token({ jti: 'warm' }))).status === 200,
        )
        expect(unavailable()).toBe(false)
        await server.stop()
        // Until the plugin has logged the outage, and decided 5 more requests after it.
        const from = seen.length
        await within(5000, () => Promise.resolve(unavailable()))
        const logged = seen.length
        await within(5000, () => Promise.resolve(seen.length - Math.max(from, logged) > 5))
      })
      expect(results.every((r) => r.status === 200)).toBe(true)
      expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(DECISION_BOUND_MS)
      expect(logger.lines.some((l) => l.level === 'warn' && /fail_open/.test(l.message))).toBe(true)
    })

    it('a hung Redis (SIGSTOP) is bounded by timeout_ms: 503 under fail_closed', async () => {
      const { handler } = plugin(testPrefix('hung'), { cache_ttl_ms: 0 })
      await within(
        2000,
        async () => (await request(handler, token({ jti: 'warm' }))).status === 200,
      )
      server.pause()
      try {
        for (let i = 0; i < 3; i++) {
          const r = await request(handler, token({ jti: `hung-${i}` }))
          expect(r).toMatchObject({ status: 503, code: 'ERR_REVOCATION_UNAVAILABLE' })
          expect(r.ms).toBeLessThan(DECISION_BOUND_MS)
        }
      } finally {
        server.resume()
      }
    })

    it('a Redis that was never reachable is bounded too (first connection)', async () => {
      await server.stop()
      const { handler } = plugin(testPrefix('never'), { cache_ttl_ms: 0 })
      const r = await request(handler, token({ jti: 'x' }))
      expect(r).toMatchObject({ status: 503, code: 'ERR_REVOCATION_UNAVAILABLE' })
      expect(r.ms).toBeLessThan(DECISION_BOUND_MS)
    })

    it('drops the cache when Redis goes away: a cached token is not waved through under fail_closed', async () => {
      const prefix = testPrefix('cache-drop')
      const p = observedPlugin({
        ...STORE_TESTS,
        redis: { url: server.url },
        key_prefix: prefix,
        timeout_ms: 200,
        cache_ttl_ms: 60_000,
      })
      const handler = p.handler
      const jwt = token({ jti: 'cached-then-down' })
      await within(2000, async () => (await request(handler, jwt)).status === 200)
      // The cache must be live and hold this token's "absent" before Redis goes, or the 503
      // below would prove nothing: a write nobody announces is not seen, so it is cached.
      await cacheLiveWithin(2000, p)
      expect((await request(handler, jwt)).status).toBe(200)
      const raw = new Redis(server.url)
      await raw.set(`${prefix}jti:cached-then-down`, '{"at":1}')
      await raw.quit()
      expect((await request(handler, jwt)).status).toBe(200)
      await server.stop()
      await within(1000, async () => (await request(handler, jwt)).status === 503)
    })

    it('keeps every revocation across a Redis restart: they live in Redis, not in the plugin', async () => {
      const prefix = testPrefix('restart')
      const cli = quietCli(server.url, prefix)
      const jwt = token({ jti: 'survivor', sub: 'grace', iss: 'https://idp' })
      expect(await cli('revoke', 'jti', '--token', jwt)).toBe(0)
      expect(await cli('revoke', 'subject', 'heidi', '--issuer', 'https://idp')).toBe(0)
      expect(await cli('revoke', 'consumer', 'c-9')).toBe(0)
      const { handler } = plugin(prefix)
      expect((await request(handler, jwt)).status).toBe(401)

      await server.restart()
      // The running plugin reconnects and still refuses…
      await within(5000, async () => (await request(handler, jwt)).status === 401, 50)
      // …and so does a brand-new plugin process.
      await closeSharedRedis()
      forgetSharedRevocationStores()
      const fresh = plugin(prefix).handler
      expect((await request(fresh, jwt)).status).toBe(401)
      expect(
        (await request(fresh, token({ jti: 'h', sub: 'heidi', iss: 'https://idp' }))).status,
      ).toBe(401)
      expect((await request(fresh, token({ jti: 'c' }), { id: 'c-9' })).status).toBe(401)
      expect((await request(fresh, token({ jti: 'ok', sub: 'ivan' }), { id: 'c-10' })).status).toBe(
        200,
      )
    })
  },
)
