import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import { ConsumerJwtHandler } from '../../../plugins/consumer-jwt/handler'
import { JwtRevocationHandler } from '../../../plugins/jwt-revocation/handler'
import { closeSharedRedis } from '../../../plugins/shared/revocation/redis-clients'
import { forgetSharedRevocationStores } from '../../../plugins/shared/revocation/redis-revocation-store'
import { FakeKong } from '../../helpers/fake-kong'
import { MemoryLogger } from '../../helpers/logger'
import { HS_SECRET, mint, secretKey } from '../../helpers/tokens'
import { quietCli } from './helpers/cli'
import { request, STORE_TESTS, token, within } from './helpers/plugin-requests'
import { noPrivateRedisReason, PrivateRedis, testPrefix } from './helpers/redis-server'

/**
 * The circuit breaker of the revocation lookup on a real redis-server, frozen with SIGSTOP (every
 * command waits for an answer that never comes) or killed. Without the breaker every decision
 * during a freeze waits out timeout_ms; with it, only the first ones do.
 */
const TIMEOUT_MS = 250
/** The target: once the circuit is open a decision costs no wait for Redis. */
const OPEN_P99_MS = 50
/** A lookup never waits longer than timeout_ms; this much on top is the event loop's slack. */
const SLACK_MS = 150

const skip = noPrivateRedisReason()

interface Decision {
  status: number
  code: unknown
  ms: number
  /** When the request started, in ms since the outage began. */
  at: number
}

function p99(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)] ?? Number.NaN
}

;(skip !== undefined ? describe.skip : describe)(
  `revocation circuit breaker: (integration, frozen and killed Redis) ${skip ?? ''}`.trim(),
  () => {
    let server: PrivateRedis

    beforeAll(async () => {
      // appendonly: the killed server comes back with the revocations it had.
      server = await PrivateRedis.start({ appendonly: true })
    })
    afterEach(async () => {
      server.resume()
      await closeSharedRedis()
      forgetSharedRevocationStores()
      if (!server.running) await server.restart()
    })
    afterAll(async () => {
      await server?.dispose()
    })

    const plugin = (prefix: string, over: Record<string, unknown> = {}) =>
      new JwtRevocationHandler(
        {
          ...STORE_TESTS,
          redis: { url: server.url },
          key_prefix: prefix,
          timeout_ms: TIMEOUT_MS,
          cache_ttl_ms: 0,
          ...over,
        },
        { logger: new MemoryLogger() },
      )

    /**
     * Drives decisions through the plugin while Redis is out: back to back for `sequentialMs`,
     * then `rounds` rounds of `concurrency` requests at once. Fresh jtis: nothing is cached.
     */
    async function outageTraffic(
      handler: JwtRevocationHandler,
      startedAt: number,
      sequentialMs = 2000,
      rounds = 20,
      concurrency = 25,
    ): Promise<Decision[]> {
      const decisions: Decision[] = []
      let i = 0
      const one = async (): Promise<void> => {
        const at = performance.now() - startedAt
        decisions.push({ ...(await request(handler, token({ jti: `o-${i++}` }))), at })
      }
      while (performance.now() - startedAt < sequentialMs) {
        await one()
        await new Promise((r) => setImmediate(r))
      }
      for (let round = 0; round < rounds; round++) {
        await Promise.all(Array.from({ length: concurrency }, one))
      }
      return decisions
    }

    /** Bounds every decision, and those after the first second tightly. */
    function expectBounded(decisions: readonly Decision[]): void {
      expect(Math.max(...decisions.map((d) => d.ms))).toBeLessThan(TIMEOUT_MS + SLACK_MS)
      const late = decisions.filter((d) => d.at >= 1000).map((d) => d.ms)
      expect(late.length).toBeGreaterThan(200)
      expect(p99(late)).toBeLessThan(OPEN_P99_MS)
    }

    it('fail_closed: a frozen Redis answers 503 at once after the first second, sequential and concurrent, and a revoked token is refused again once it thaws', async () => {
      const prefix = testPrefix('breaker-closed')
      const stolen = token({ jti: 'stolen' })
      expect(await quietCli(server.url, prefix)('revoke', 'jti', '--token', stolen)).toBe(0)
      const handler = plugin(prefix)
      await within(2000, async () => (await request(handler, stolen)).status === 401)

      server.pause()
      const decisions = await outageTraffic(handler, performance.now())
      expect(decisions.every((d) => d.status === 503)).toBe(true)
      expect(decisions.every((d) => d.code === 'ERR_REVOCATION_UNAVAILABLE')).toBe(true)
      expectBounded(decisions)
      expect(await request(handler, stolen)).toMatchObject({ status: 503 })

      server.resume()
      await within(5000, async () => (await request(handler, stolen)).status === 401, 20)
      expect((await request(handler, token({ jti: 'after' }))).status).toBe(200)
    })

    it('fail_open: a frozen Redis lets requests through at once after the first second, and a revoked token is refused again once it thaws', async () => {
      const prefix = testPrefix('breaker-open')
      const stolen = token({ jti: 'stolen' })
      expect(await quietCli(server.url, prefix)('revoke', 'jti', '--token', stolen)).toBe(0)
      const handler = plugin(prefix, { on_unavailable: 'fail_open' })
      await within(2000, async () => (await request(handler, stolen)).status === 401)

      server.pause()
      const decisions = await outageTraffic(handler, performance.now())
      expect(decisions.every((d) => d.status === 200)).toBe(true)
      expectBounded(decisions)

      server.resume()
      await within(5000, async () => (await request(handler, stolen)).status === 401, 20)
    })

    it("shares the open circuit with every plugin instance on the same Redis and timeout_ms: consumer-jwt's revocation answers at once", async () => {
      const prefix = testPrefix('breaker-shared')
      const handler = plugin(prefix)
      await within(2000, async () => (await request(handler, token({ jti: 'w' }))).status === 200)
      const consumerJwt = new ConsumerJwtHandler(
        {
          credentials: [
            { key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET },
          ],
          revocation: {
            check: ['jti'],
            redis: { url: server.url },
            key_prefix: testPrefix('breaker-shared-other'),
            timeout_ms: TIMEOUT_MS,
          },
        },
        { env: {}, logger: new MemoryLogger() },
      )
      const viaConsumerJwt = async (jti: string) => {
        const kong = new FakeKong({
          headers: {
            authorization: `Bearer ${await mint({ iss: 'web', sub: 'u', jti }, { key: secretKey(), ttl: 300 })}`,
          },
        })
        kong.consumers.push({ id: '0a0a0a0a-0000-4000-8000-000000000001', username: 'web-app' })
        const t0 = performance.now()
        await consumerJwt.accessWith(kong)
        return { status: kong.exitResult?.status ?? 200, ms: performance.now() - t0 }
      }
      expect((await viaConsumerJwt('before')).status).toBe(200)

      server.pause()
      // jwt-revocation meets the freeze first and opens the circuit…
      await within(
        3000,
        async () => (await request(handler, token({ jti: `x-${Math.random()}` }))).ms < 20,
        1,
      )
      // …and consumer-jwt, which has not waited once, is answered without waiting.
      const first = await viaConsumerJwt('during')
      expect(first.status).toBe(503)
      expect(first.ms).toBeLessThan(OPEN_P99_MS)

      server.resume()
      await within(5000, async () => (await viaConsumerJwt('after')).status === 200, 20)
    })

    it('a killed Redis is answered at once from the start, and a revoked token is refused again once it is back', async () => {
      const prefix = testPrefix('breaker-killed')
      const stolen = token({ jti: 'stolen' })
      expect(await quietCli(server.url, prefix)('revoke', 'jti', '--token', stolen)).toBe(0)
      const handler = plugin(prefix)
      await within(2000, async () => (await request(handler, stolen)).status === 401)

      await server.stop('SIGKILL')
      // Counted from the start: a killed Redis has no first second to forgive.
      const decisions = await outageTraffic(handler, performance.now() - 1000, 2000, 10)
      expect(decisions.every((d) => d.status === 503)).toBe(true)
      expectBounded(decisions)

      await server.restart()
      await within(5000, async () => (await request(handler, stolen)).status === 401, 20)
    })
  },
)
