import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { revocationKey } from '../../../plugins/shared/revocation/keys'
import { SharedRedis } from '../../../plugins/shared/revocation/redis-clients'
import { RedisRevocationStore } from '../../../plugins/shared/revocation/redis-revocation-store'
import { parseRedisSettings } from '../../../plugins/shared/schema/redis-fields'
import { MemoryLogger } from '../../helpers/logger'
import { MemoryRevocationStore } from '../../helpers/memory-revocation-store'
import {
  cleanupTestKeys,
  noRedisReason,
  PrivateRedis,
  sharedRedisUrl,
  testPrefix,
} from './helpers/redis-server'
import { revocationStoreContract, type ContractStore } from './helpers/store-contract'

// The unit tests decide revocations against MemoryRevocationStore; this runs the same cases
// against it and against the Redis store, so the double cannot drift from what it stands for.

describe('revocation store contract: MemoryRevocationStore (the unit tests’ double)', () => {
  revocationStoreContract(async () => {
    let ms = Date.now()
    const prefix = 'contract:'
    const store = new MemoryRevocationStore(prefix, { now: () => ms })
    return {
      store,
      prefix,
      now: () => Promise.resolve(ms / 1000),
      passTime: (unixSeconds) => {
        ms = Math.max(ms, Math.floor(unixSeconds * 1000) + 1)
        return Promise.resolve()
      },
      setRaw: (key, value) => {
        store.setRaw(key, value)
        return Promise.resolve()
      },
      dispose: () => Promise.resolve(),
    }
  })
})

const skip = noRedisReason()

;(skip !== undefined ? describe.skip : describe)(
  `revocation store contract: RedisRevocationStore against a real Redis ${skip ?? ''}`.trim(),
  () => {
    let server: PrivateRedis | undefined
    let url: string
    let raw: Redis
    let redis: SharedRedis

    beforeAll(async () => {
      url = sharedRedisUrl() ?? (server = await PrivateRedis.start()).url
      raw = new Redis(url)
      redis = new SharedRedis(
        parseRedisSettings({ url }),
        { commandTimeoutMs: 2000, failFast: true },
        new MemoryLogger(),
      )
    })
    afterAll(async () => {
      if (server === undefined && url !== undefined) await cleanupTestKeys(url)
      await redis?.close()
      await raw?.quit()
      await server?.dispose()
    })

    /** The server's clock, in milliseconds: the one EXPIREAT and TTL use. */
    const serverMs = async (): Promise<number> => {
      const [s, us] = await raw.time()
      return Number(s) * 1000 + Math.floor(Number(us) / 1000)
    }

    const open = (): Promise<ContractStore> => {
      const prefix = testPrefix('contract')
      // No cache: the contract is about what Redis holds, not about the cache's staleness.
      const store = new RedisRevocationStore(redis, { prefix, timeoutMs: 2000, cacheTtlMs: 0 })
      return Promise.resolve({
        store,
        prefix,
        now: async () => (await serverMs()) / 1000,
        passTime: async (unixSeconds) => {
          // Redis drops a key once its clock is strictly past the expiry: poll that clock.
          const target = unixSeconds * 1000
          const bound = Date.now() + Math.max(0, target - (await serverMs())) + 3000
          while ((await serverMs()) <= target) {
            if (Date.now() > bound) throw new Error(`Redis clock not past ${unixSeconds} in time`)
            await new Promise((r) => setTimeout(r, 20))
          }
        },
        setRaw: async (key, value) => {
          await raw.set(key, value)
        },
        dispose: () => Promise.resolve(),
      })
    }

    revocationStoreContract(open)

    // What only Redis can hold: a key of another type under a revocation key.
    it('reads a key of another type as unreadable on a revoke too: a cutoff replaces it, a jti overwrites it', async () => {
      const s = await open()
      const cutoff = { kind: 'subject', sub: 'hash' } as const
      const jti = { kind: 'jti', jti: 'list' } as const
      await raw.hset(revocationKey(s.prefix, cutoff), 'at', '5000')
      await raw.rpush(revocationKey(s.prefix, jti), 'x')
      expect((await s.store.lookup([cutoff, jti])).map((e) => e?.at)).toEqual([
        Number.POSITIVE_INFINITY,
        Number.POSITIVE_INFINITY,
      ])
      expect(await s.store.revoke(cutoff, { at: 1000 })).toMatchObject({ applied: true })
      expect(await s.store.revoke(jti, { at: 1000 })).toMatchObject({ applied: true })
      expect((await s.store.lookup([cutoff, jti])).map((e) => e?.at)).toEqual([1000, 1000])
    })

    it('reads again when another writer moved the cutoff between its read and its write, so it never overwrites a later one', async () => {
      const prefix = testPrefix('contract-race')
      const target = { kind: 'subject', sub: 'raced' } as const
      const key = revocationKey(prefix, target)
      await raw.set(key, '{"at":2000}')
      // The store's command connection, with a second writer slipped in right after the first
      // read of the key (the read script is the one that returns {kind}).
      let raced = false
      const client = new Proxy(redis.client, {
        get(t, p) {
          if (p !== 'eval') {
            const v: unknown = Reflect.get(t, p)
            return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v
          }
          return async (script: string, numKeys: number, ...args: string[]) => {
            const reply: unknown = await t.eval(script, numKeys, ...args)
            if (!raced && script.includes('return {kind}')) {
              raced = true
              await raw.set(key, '{"at":9000,"reason":"the other writer"}')
            }
            return reply
          }
        },
      })
      const store = new RedisRevocationStore(
        { client, subscribe: () => undefined },
        { prefix, timeoutMs: 2000, cacheTtlMs: 0 },
      )
      const r = await store.revoke(target, { at: 5000 })
      expect(raced).toBe(true)
      expect(r).toMatchObject({ applied: false, entry: { at: 9000, reason: 'the other writer' } })
      expect(JSON.parse((await raw.get(key)) ?? 'null')).toEqual({
        at: 9000,
        reason: 'the other writer',
      })
    })
  },
)
