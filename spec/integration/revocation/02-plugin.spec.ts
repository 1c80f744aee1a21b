import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { run } from '../../../cli/index'
import type { CliIO } from '../../../cli/common'
import { JwtRevocationHandler } from '../../../plugins/jwt-revocation/handler'
import { closeSharedRedis } from '../../../plugins/shared/revocation/redis-clients'
import { forgetSharedRevocationStores } from '../../../plugins/shared/revocation/redis-revocation-store'
import { MemoryLogger } from '../../helpers/logger'
import { PLUGIN_PROCESS } from './helpers/plugin-process'
import { cacheLiveWithin, observedPlugin, request, token, within } from './helpers/plugin-requests'
import {
  cleanupTestKeys,
  noRedisReason,
  PrivateRedis,
  sharedRedisUrl,
  testPrefix,
} from './helpers/redis-server'
import { STORE_TESTS } from './helpers/plugin-requests'

const skip = noRedisReason()
const DIST = resolve(__dirname, '../../../dist')
const builtHandler = `${DIST}/plugins/jwt-revocation/handler.js`

;(skip !== undefined ? describe.skip : describe)(
  `jwt-revocation: (integration, real Redis) ${skip ?? ''}`.trim(),
  () => {
    let server: PrivateRedis | undefined
    let url: string
    const out: string[] = []
    const cli = async (...args: string[]): Promise<number> => {
      const io: CliIO = {
        out: (l) => out.push(l),
        err: (l) => out.push(l),
        env: { REDIS_URL: url },
        now: () => Date.now(),
      }
      return run(args, io)
    }

    beforeAll(async () => {
      url = sharedRedisUrl() ?? (server = await PrivateRedis.start()).url
    })
    afterAll(async () => {
      if (server === undefined && url !== undefined) await cleanupTestKeys(url)
      await closeSharedRedis()
      forgetSharedRevocationStores()
      await server?.dispose()
    })

    const plugin = (prefix: string, over: Record<string, unknown> = {}): JwtRevocationHandler =>
      new JwtRevocationHandler(
        { ...STORE_TESTS, redis: { url }, key_prefix: prefix, ...over },
        { logger: new MemoryLogger() },
      )
    /** The same, with a view of its store's cache. */
    const observed = (prefix: string, over: Record<string, unknown> = {}) =>
      observedPlugin({ ...STORE_TESTS, redis: { url }, key_prefix: prefix, ...over })

    it('refuses, on the very next request, a jti revoked with the CLI', async () => {
      const prefix = testPrefix('cli-jti')
      const handler = plugin(prefix)
      const jwt = token({ jti: 'j-cli', sub: 'alice' })
      expect((await request(handler, jwt)).status).toBe(200)
      expect(await cli('revoke', 'jti', '--token', jwt, '--key-prefix', prefix)).toBe(0)
      expect(await request(handler, jwt)).toMatchObject({ status: 401, code: 'ERR_TOKEN_REVOKED' })
    })

    it('refuses old tokens of a revoked subject and accepts one issued after the cutoff', async () => {
      const prefix = testPrefix('cli-sub')
      const handler = plugin(prefix)
      const now = Math.floor(Date.now() / 1000)
      expect(
        await cli('revoke', 'subject', 'alice', '--key-prefix', prefix, '--at', String(now)),
      ).toBe(0)
      expect(
        await request(handler, token({ jti: 'old', sub: 'alice', iat: now - 1 })),
      ).toMatchObject({ status: 401, code: 'ERR_TOKEN_REVOKED' })
      expect((await request(handler, token({ jti: 'new', sub: 'alice', iat: now }))).status).toBe(
        200,
      )
      expect(
        (await request(handler, token({ jti: 'other', sub: 'bob', iat: now - 1 }))).status,
      ).toBe(200)
    })

    it('applies a per-issuer subject cutoff to that issuer only', async () => {
      const prefix = testPrefix('cli-iss')
      const handler = plugin(prefix)
      expect(
        await cli('revoke', 'subject', 'alice', '--issuer', 'https://a', '--key-prefix', prefix),
      ).toBe(0)
      expect(
        (await request(handler, token({ jti: '1', sub: 'alice', iss: 'https://a' }))).status,
      ).toBe(401)
      expect(
        (await request(handler, token({ jti: '2', sub: 'alice', iss: 'https://b' }))).status,
      ).toBe(200)
    })

    it('cuts off a consumer by id or by username', async () => {
      const prefix = testPrefix('cli-consumer')
      const handler = plugin(prefix)
      const partner = { id: '5b0c3c1e-0000-4000-8000-000000000001', username: 'partner' }
      const jwt = token({ jti: 'p1', sub: 'svc' })
      expect((await request(handler, jwt, partner)).status).toBe(200)
      expect(await cli('revoke', 'consumer', 'partner', '--username', '--key-prefix', prefix)).toBe(
        0,
      )
      expect(await request(handler, jwt, partner)).toMatchObject({
        status: 401,
        code: 'ERR_TOKEN_REVOKED',
      })
      expect((await request(handler, jwt, { id: 'someone-else', username: 'other' })).status).toBe(
        200,
      )
      expect(
        await cli('revoke', 'lift', 'consumer', 'partner', '--username', '--key-prefix', prefix),
      ).toBe(0)
      expect((await request(handler, jwt, partner)).status).toBe(200)
    })

    it('invalidates a warm cache over pub/sub well within 1 s, though cache_ttl_ms is 60 s', async () => {
      const prefix = testPrefix('pubsub')
      const p = observed(prefix, { cache_ttl_ms: 60_000 })
      const handler = p.handler
      const jwt = token({ jti: 'cached', sub: 'carol' })
      // Warm: the first request connects and subscribes; once the cache is live, the next
      // request fills it and later ones are answered from it.
      await within(2000, async () => (await request(handler, jwt)).status === 200)
      await cacheLiveWithin(2000, p)
      expect((await request(handler, jwt)).status).toBe(200)
      const revoker = new Redis(url)
      const t0 = performance.now()
      await revoker.set(`${prefix}jti:cached`, '{"at":1}') // a write path that forgot to PUBLISH…
      expect((await request(handler, jwt)).status).toBe(200) // …is served stale from the cache
      await revoker.publish(
        `${prefix}events`,
        JSON.stringify({ op: 'revoke', key: `${prefix}jti:cached` }),
      )
      const took = await within(1000, async () => (await request(handler, jwt)).status === 401, 5)
      expect(performance.now() - t0).toBeLessThan(1000)
      expect(took).toBeLessThan(1000)
      await revoker.quit()
    })

    it('without an announcement, the cache TTL bounds staleness', async () => {
      const prefix = testPrefix('ttl')
      const p = observed(prefix, { cache_ttl_ms: 300 })
      const handler = p.handler
      const jwt = token({ jti: 'ttl', sub: 'dave' })
      const raw = new Redis(url)
      await raw.ping() // connected before the 300 ms start
      await within(2000, async () => (await request(handler, jwt)).status === 200)
      // Wait until the handler's cache is live instead of sleeping, so the test cannot pass with
      // a cache that never served.
      await cacheLiveWithin(2000, p)
      await request(handler, jwt) // cached "absent" now, for at most 300 ms
      await raw.set(`${prefix}jti:ttl`, '{"at":1}') // no PUBLISH
      // The cache answers for the rest of its TTL (the staleness a lost announcement costs)...
      expect((await request(handler, jwt)).status).toBe(200)
      // ...and no longer.
      const took = await within(1500, async () => (await request(handler, jwt)).status === 401, 10)
      expect(took).toBeLessThanOrEqual(400)
      await raw.quit()
    })

    it('never caches a revocation: it holds on every request, and a lift takes effect at once', async () => {
      const prefix = testPrefix('no-cache-revoked')
      const p = observed(prefix, { cache_ttl_ms: 60_000 })
      const handler = p.handler
      const jwt = token({ jti: 'held', sub: 'erin' })
      await within(2000, async () => (await request(handler, jwt)).status === 200)
      // A live cache, or "never caches" would hold trivially.
      await cacheLiveWithin(2000, p)
      expect(await cli('revoke', 'jti', '--token', jwt, '--key-prefix', prefix)).toBe(0)
      await within(1000, async () => (await request(handler, jwt)).status === 401)
      for (let i = 0; i < 20; i++) expect((await request(handler, jwt)).status).toBe(401)
      expect(await cli('revoke', 'lift', 'jti', 'held', '--key-prefix', prefix)).toBe(0)
      expect((await request(handler, jwt)).status).toBe(200)
      // Even a lift nobody announces (DEL by hand) takes effect on the next request: nothing
      // remembered the revocation.
      expect(await cli('revoke', 'jti', '--token', jwt, '--key-prefix', prefix)).toBe(0)
      await within(1000, async () => (await request(handler, jwt)).status === 401)
      const raw = new Redis(url)
      await raw.del(`${prefix}jti:held`)
      expect((await request(handler, jwt)).status).toBe(200)
      await raw.quit()
    })

    const noDist = existsSync(builtHandler) ? undefined : 'SKIPPED: dist/ not built (npm run build)'
    ;(noDist !== undefined ? it.skip : it)(
      `reaches a second plugin process over pub/sub within 1 s ${noDist ?? ''}`.trim(),
      async () => {
        const prefix = testPrefix('second-process')
        const config = { redis: { url }, key_prefix: prefix, cache_ttl_ms: 60_000 }
        const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [
          '-e',
          PLUGIN_PROCESS,
          DIST,
          JSON.stringify(config),
        ])
        const lines = createInterface({ input: child.stdout })
        const pending = new Map<number, (v: { status: number; cacheLive: boolean }) => void>()
        let ready!: () => void
        const isReady = new Promise<void>((r) => (ready = r))
        lines.on('line', (l) => {
          const msg = JSON.parse(l) as {
            ready?: boolean
            id?: number
            status: number
            cacheLive: boolean
          }
          if (msg.ready === true) ready()
          else if (msg.id !== undefined) pending.get(msg.id)?.(msg)
        })
        let next = 0
        const ask = (jwt: string): Promise<{ status: number; cacheLive: boolean }> =>
          new Promise((resolveReply) => {
            const id = next++
            pending.set(id, resolveReply)
            child.stdin.write(`${JSON.stringify({ id, token: jwt })}\n`)
          })
        try {
          await isReady
          const jwt = token({ jti: 'remote', sub: 'frank' })
          await within(3000, async () => (await ask(jwt)).status === 200)
          // The child's cache is live (it reports it with each answer), then filled.
          await within(3000, async () => (await ask(jwt)).cacheLive)
          expect((await ask(jwt)).status).toBe(200) // cached in the child now…
          const raw = new Redis(url)
          await raw.set(`${prefix}jti:remote`, '{"at":1}') // …so a write nobody announces…
          expect((await ask(jwt)).status).toBe(200) // …is not seen: only pub/sub can reach it
          await raw.quit()
          const t0 = performance.now()
          expect(await cli('revoke', 'jti', '--token', jwt, '--key-prefix', prefix)).toBe(0)
          await within(1000, async () => (await ask(jwt)).status === 401, 5)
          expect(performance.now() - t0).toBeLessThan(1000)
        } finally {
          child.kill()
        }
      },
    )
  },
)
