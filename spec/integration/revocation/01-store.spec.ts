import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { revocationKey } from '../../../plugins/shared/revocation/keys'
import { SharedRedis } from '../../../plugins/shared/revocation/redis-clients'
import { RedisRevocationStore } from '../../../plugins/shared/revocation/redis-revocation-store'
import { parseRedisSettings } from '../../../plugins/shared/schema/redis-fields'
import { MemoryLogger } from '../../helpers/logger'
import { within } from './helpers/plugin-requests'
import {
  cleanupTestKeys,
  noPrivateRedisReason,
  noRedisReason,
  PrivateRedis,
  sharedRedisUrl,
  testPrefix,
} from './helpers/redis-server'

const skip = noRedisReason()
const now = (): number => Math.floor(Date.now() / 1000)

;(skip !== undefined ? describe.skip : describe)(
  `revocation store against a real Redis ${skip ?? ''}`.trim(),
  () => {
    let server: PrivateRedis | undefined
    let url: string
    let raw: Redis
    let redis: SharedRedis
    let store: RedisRevocationStore
    const prefix = testPrefix('store')

    beforeAll(async () => {
      url = sharedRedisUrl() ?? (server = await PrivateRedis.start()).url
      raw = new Redis(url)
      redis = new SharedRedis(
        parseRedisSettings({ url }),
        { commandTimeoutMs: 1000, failFast: true },
        new MemoryLogger(),
      )
      store = new RedisRevocationStore(redis, { prefix, timeoutMs: 1000, cacheTtlMs: 0 })
    })

    afterAll(async () => {
      if (server === undefined && url !== undefined) await cleanupTestKeys(url)
      await redis?.close()
      await raw?.quit()
      await server?.dispose()
    })

    it('reads a revocation key holding another type (a hash, a list) as revoked, never as absent', async () => {
      const hashKey = revocationKey(prefix, { kind: 'jti', jti: 'typed-hash' })
      const listKey = revocationKey(prefix, { kind: 'subject', sub: 'typed-list' })
      await raw.hset(hashKey, 'at', '1')
      await raw.rpush(listKey, 'x')
      const [hash, list, absent] = await store.lookup([
        { kind: 'jti', jti: 'typed-hash' },
        { kind: 'subject', sub: 'typed-list' },
        { kind: 'jti', jti: 'typed-none' },
      ])
      expect(hash?.at).toBe(Number.POSITIVE_INFINITY)
      expect(list?.at).toBe(Number.POSITIVE_INFINITY)
      expect(absent).toBeUndefined()
      await raw.del(hashKey, listKey)
    })

    it('stores each kind under the key layout and finds it in one lookup', async () => {
      const targets = [
        { kind: 'jti', jti: 'tok-1' },
        { kind: 'subject', sub: 'alice' },
        { kind: 'subject', sub: 'alice', iss: 'https://idp.example' },
        { kind: 'consumer', id: 'c-1' },
        { kind: 'consumer_username', username: 'partner' },
      ] as const
      expect(await store.lookup(targets)).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
      ])
      for (const [i, t] of targets.entries()) {
        const r = await store.revoke(
          t,
          { at: 1_700_000_000 + i, reason: `r${i}` },
          { expireAt: now() + 60 },
        )
        expect(r.applied).toBe(true)
      }
      expect(await store.lookup(targets)).toEqual(
        targets.map((_, i) => ({ at: 1_700_000_000 + i, reason: `r${i}`, by: undefined })),
      )
      expect(await raw.get(`${prefix}iss:https%3A%2F%2Fidp.example:sub:alice`)).toBe(
        '{"at":1700000002,"reason":"r2"}',
      )
      expect(await raw.exists(`${prefix}consumer:username:partner`)).toBe(1)
    })

    it("keeps a jti key until the token's expiry (EXPIREAT), then it is gone", async () => {
      const target = { kind: 'jti', jti: 'short-lived' } as const
      // Two seconds, not one: at x.999 a one-second expiry could lapse before the lookup below.
      await store.revoke(target, { at: now() }, { expireAt: now() + 2 })
      const key = revocationKey(prefix, target)
      const ttl = await raw.ttl(key)
      expect(ttl).toBeGreaterThanOrEqual(1)
      expect(ttl).toBeLessThanOrEqual(2)
      expect((await store.lookup([target]))[0]).toBeDefined()
      // Redis drops it once its clock is past the expiry: poll for that, within a bound.
      await within(5000, async () => (await store.lookup([target]))[0] === undefined, 50)
      expect((await store.lookup([target]))[0]).toBeUndefined()
      expect(await raw.exists(key)).toBe(0)
    })

    it('keeps a cutoff without TTL when none is given (the list is bounded by jti TTLs and --ttl)', async () => {
      const target = { kind: 'subject', sub: 'forever' } as const
      await store.revoke(target, { at: now() })
      expect(await raw.ttl(revocationKey(prefix, target))).toBe(-1)
    })

    it('never moves a cutoff earlier, but moves it later', async () => {
      const target = { kind: 'subject', sub: 'bob' } as const
      expect((await store.revoke(target, { at: 2000 })).applied).toBe(true)
      const earlier = await store.revoke(target, { at: 1000 })
      expect(earlier).toMatchObject({ applied: false, entry: { at: 2000 } })
      expect((await store.revoke(target, { at: 3000 })).applied).toBe(true)
      expect((await store.inspect(target)).entry?.at).toBe(3000)
    })

    it('reads a cutoff set by hand with redis-cli as a bare number', async () => {
      await raw.set(`${prefix}sub:manual`, '1700000000')
      expect(await store.lookup([{ kind: 'subject', sub: 'manual' }])).toEqual([
        { at: 1_700_000_000 },
      ])
    })

    it('lifts a revocation and says whether one existed', async () => {
      const target = { kind: 'consumer', id: 'to-lift' } as const
      await store.revoke(target, { at: now() })
      expect(await store.lift(target)).toMatchObject({ existed: true })
      expect(await store.lift(target)).toMatchObject({ existed: false })
      expect((await store.lookup([target]))[0]).toBeUndefined()
    })

    it('announces every revoke and lift on the events channel, in the same step', async () => {
      const sub = new Redis(url)
      const messages: string[] = []
      await sub.subscribe(`${prefix}events`)
      sub.on('message', (_c: string, m: string) => messages.push(m))
      const target = { kind: 'jti', jti: 'announced' } as const
      const r = await store.revoke(target, { at: now() }, { expireAt: now() + 60 })
      expect(r.notified).toBeGreaterThanOrEqual(1)
      await store.lift(target)
      await within(2000, () => Promise.resolve(messages.length >= 2))
      const key = revocationKey(prefix, target)
      expect(messages.map((m) => JSON.parse(m) as unknown)).toEqual([
        { op: 'revoke', key },
        { op: 'lift', key },
      ])
      await sub.quit()
    })
  },
)

const skipPrivate = noPrivateRedisReason()

;(skipPrivate !== undefined ? describe.skip : describe)(
  `revocation store round trips ${skipPrivate ?? ''}`.trim(),
  () => {
    let server: PrivateRedis
    let redis: SharedRedis

    beforeAll(async () => {
      server = await PrivateRedis.start()
      redis = new SharedRedis(
        parseRedisSettings({ url: server.url }),
        { commandTimeoutMs: 1000, failFast: true },
        new MemoryLogger(),
      )
    })
    afterAll(async () => {
      await redis?.close()
      await server?.dispose()
    })

    async function commandCalls(raw: Redis): Promise<Record<string, number>> {
      const info = await raw.info('commandstats')
      const out: Record<string, number> = {}
      for (const m of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm))
        out[m[1] as string] = Number(m[2])
      return out
    }

    it('answers a five-key lookup with exactly one script call (one round trip), and a cached one with none', async () => {
      const raw = new Redis(server.url)
      const store = new RedisRevocationStore(redis, {
        prefix: 'rt:',
        timeoutMs: 1000,
        cacheTtlMs: 5000,
      })
      const targets = [
        { kind: 'jti', jti: 'a' },
        { kind: 'subject', sub: 's' },
        { kind: 'subject', sub: 's', iss: 'i' },
        { kind: 'consumer', id: 'c' },
        { kind: 'consumer_username', username: 'u' },
      ] as const
      await store.lookup(targets) // connects and subscribes
      await within(2000, () => Promise.resolve(store.cacheLive))
      await store.lookup(targets) // fills the cache now that it is live
      const before = await commandCalls(raw)
      await store.lookup(targets)
      const cached = await commandCalls(raw)
      expect((cached['eval'] ?? 0) - (before['eval'] ?? 0)).toBe(0)

      const uncached = new RedisRevocationStore(redis, {
        prefix: 'rt2:',
        timeoutMs: 1000,
        cacheTtlMs: 0,
      })
      await uncached.lookup(targets)
      const after = await commandCalls(raw)
      expect((after['eval'] ?? 0) - (cached['eval'] ?? 0)).toBe(1)
      expect((after['mget'] ?? 0) - (cached['mget'] ?? 0)).toBe(0)
      // Inside the script: one TYPE per key; absent keys need no GET.
      expect((after['type'] ?? 0) - (cached['type'] ?? 0)).toBe(targets.length)
      await raw.quit()
    })
  },
)
