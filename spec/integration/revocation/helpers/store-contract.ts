import { expect, it } from '@jest/globals'
import {
  decodeEntry,
  revocationKey,
  type RevocationTarget,
} from '../../../../plugins/shared/revocation/keys'
import type {
  RevocationStore,
  RevocationWriter,
} from '../../../../plugins/shared/revocation/revocation-store'

/**
 * One store under the contract, fresh for each case (its own key prefix or its own memory).
 * Time is the store's own: the memory store's injected clock, or the Redis server's TIME.
 */
export interface ContractStore {
  readonly store: RevocationStore & RevocationWriter
  readonly prefix: string
  /** The store's clock, in Unix seconds (fractional). */
  now(): Promise<number>
  /**
   * Resolves once the store's clock is past `unixSeconds` (memory: moves its clock; Redis: polls
   * TIME within a bound). Never a fixed sleep.
   */
  passTime(unixSeconds: number): Promise<void>
  /** A value written by hand under `key`, as `redis-cli SET` would. */
  setRaw(key: string, value: string): Promise<void>
  dispose(): Promise<void>
}

const CUTOFF_TARGETS: readonly RevocationTarget[] = [
  { kind: 'subject', sub: 'alice' },
  { kind: 'subject', sub: 'alice', iss: 'https://idp.example' },
  { kind: 'consumer', id: 'c-1' },
  { kind: 'consumer_username', username: 'partner' },
]

/** The same string in every kind: each must land under its own key. */
const ONE_NAME_EVERY_KIND: readonly RevocationTarget[] = [
  { kind: 'jti', jti: 'x' },
  { kind: 'subject', sub: 'x' },
  { kind: 'subject', sub: 'x', iss: 'x' },
  { kind: 'consumer', id: 'x' },
  { kind: 'consumer_username', username: 'x' },
]

/**
 * Stored values a cutoff revoke must read exactly as a lookup does (keys.ts decodeEntry): the
 * stored cutoff is kept when it is later, and a value a lookup cannot read (which refuses every
 * token) is replaced, never reported as a cutoff that does not exist.
 */
const READABLE_LATER: readonly string[] = [
  '5000',
  ' 5000 ',
  '5000.5',
  '{"at":5000}',
  '{"at":5e3,"reason":"hand"}',
]
const UNREADABLE: readonly string[] = [
  'garbage',
  '',
  '-5000',
  '5e3',
  '{"at":"5000"}',
  '{"at":0x1388}',
  '{"at":NaN}',
  '{"at":Infinity}',
  '{"at":1e400}',
  '[5000]',
]

/**
 * The behaviour every RevocationStore + RevocationWriter promises (revocation-store.ts), as one
 * list of cases run against each implementation: the memory double the unit tests use and the
 * Redis store. Call inside a describe; `open` makes a fresh store for each case.
 */
export function revocationStoreContract(open: () => Promise<ContractStore>): void {
  const withStore = (name: string, body: (s: ContractStore) => Promise<void>): void => {
    it(name, async () => {
      const s = await open()
      try {
        await body(s)
      } finally {
        await s.dispose()
      }
    })
  }

  withStore('answers a lookup in order, undefined where nothing is revoked', async (s) => {
    await s.store.revoke({ kind: 'consumer', id: 'c-1' }, { at: 1000 })
    const targets: RevocationTarget[] = [
      { kind: 'jti', jti: 'none' },
      { kind: 'consumer', id: 'c-1' },
      { kind: 'subject', sub: 'nobody' },
      { kind: 'consumer', id: 'c-1' },
    ]
    const entries = await s.store.lookup(targets)
    expect(entries).toHaveLength(4)
    expect(entries[0]).toBeUndefined()
    expect(entries[1]).toMatchObject({ at: 1000 })
    expect(entries[2]).toBeUndefined()
    expect(entries[3]).toMatchObject({ at: 1000 })
    expect(await s.store.lookup([])).toEqual([])
  })

  withStore(
    'keeps each kind under its own key: jti, subject (global, per issuer), consumer id and username',
    async (s) => {
      for (const [i, target] of ONE_NAME_EVERY_KIND.entries()) {
        await s.store.revoke(target, { at: 1000 + i, reason: `r${i}` })
        const entries = await s.store.lookup(ONE_NAME_EVERY_KIND)
        // Only what was revoked so far, each with its own entry.
        expect(entries.map((e) => e?.at)).toEqual(
          ONE_NAME_EVERY_KIND.map((_, j) => (j <= i ? 1000 + j : undefined)),
        )
        expect((await s.store.inspect(target)).key).toBe(revocationKey(s.prefix, target))
      }
    },
  )

  withStore('stores the entry as given: reason and by kept, missing ones undefined', async (s) => {
    const full = { kind: 'jti', jti: 'full' } as const
    const bare = { kind: 'subject', sub: 'bare' } as const
    const r = await s.store.revoke(full, { at: 1234.5, reason: 'leaked', by: 'cli:ops@host' })
    expect(r).toMatchObject({
      applied: true,
      entry: { at: 1234.5, reason: 'leaked', by: 'cli:ops@host' },
    })
    expect(Number.isInteger(r.notified) && r.notified >= 0).toBe(true)
    await s.store.revoke(bare, { at: 99 })
    const [a, b] = await s.store.lookup([full, bare])
    expect(a).toEqual({ at: 1234.5, reason: 'leaked', by: 'cli:ops@host' })
    expect(b).toEqual({ at: 99, reason: undefined, by: undefined })
    expect((await s.store.inspect(bare)).entry).toEqual({
      at: 99,
      reason: undefined,
      by: undefined,
    })
  })

  withStore(
    'never moves a cutoff earlier, nor to the same moment, but moves it later (every cutoff kind)',
    async (s) => {
      for (const target of CUTOFF_TARGETS) {
        expect(await s.store.revoke(target, { at: 2000, reason: 'first' })).toMatchObject({
          applied: true,
          entry: { at: 2000, reason: 'first' },
        })
        const earlier = await s.store.revoke(target, { at: 1000, reason: 'earlier' })
        expect(earlier).toMatchObject({ applied: false, entry: { at: 2000, reason: 'first' } })
        expect(earlier.notified).toBe(0)
        expect((await s.store.revoke(target, { at: 2000, reason: 'same' })).applied).toBe(false)
        expect((await s.store.lookup([target]))[0]).toMatchObject({ at: 2000, reason: 'first' })
        expect(await s.store.revoke(target, { at: 3000, reason: 'later' })).toMatchObject({
          applied: true,
          entry: { at: 3000, reason: 'later' },
        })
        expect((await s.store.inspect(target)).entry).toMatchObject({ at: 3000, reason: 'later' })
      }
    },
  )

  withStore('always writes a jti entry, earlier or not, with its new expiry', async (s) => {
    const target = { kind: 'jti', jti: 'rewritten' } as const
    const t = Math.floor(await s.now())
    await s.store.revoke(target, { at: 2000, reason: 'first' }, { expireAt: t + 60 })
    const again = await s.store.revoke(
      target,
      { at: 1000, reason: 'second' },
      { expireAt: t + 600 },
    )
    expect(again).toMatchObject({ applied: true, entry: { at: 1000, reason: 'second' } })
    const seen = await s.store.inspect(target)
    expect(seen.entry).toMatchObject({ at: 1000, reason: 'second' })
    expect(seen.ttlSeconds).toBeGreaterThan(590)
    expect(seen.ttlSeconds).toBeLessThanOrEqual(600)
  })

  withStore(
    'keeps an entry until expireAt (rounded up to a whole second), then it is gone',
    async (s) => {
      const target = { kind: 'jti', jti: 'short' } as const
      const base = Math.floor(await s.now()) + 1
      // Stored as EXPIREAT base + 1: Redis keeps whole seconds, and never drops a key early.
      await s.store.revoke(target, { at: base }, { expireAt: base + 0.01 })
      const before = await s.store.inspect(target)
      expect(before.entry).toBeDefined()
      expect(before.ttlSeconds).toBeGreaterThanOrEqual(1)
      expect(before.ttlSeconds).toBeLessThanOrEqual(2)
      expect((await s.store.lookup([target]))[0]).toBeDefined()
      await s.passTime(base + 0.02)
      // Past the fractional expireAt but not the whole second it was rounded up to: still there.
      expect((await s.store.lookup([target]))[0]).toBeDefined()
      await s.passTime(base + 1)
      expect((await s.store.lookup([target]))[0]).toBeUndefined()
      expect(await s.store.inspect(target)).toEqual({
        key: revocationKey(s.prefix, target),
        entry: undefined,
        ttlSeconds: undefined,
      })
      expect((await s.store.lift(target)).existed).toBe(false)
    },
  )

  withStore(
    'has no TTL without expireAt; an applied cutoff rewrite replaces the TTL, a kept one keeps it',
    async (s) => {
      const target = { kind: 'subject', sub: 'ttl' } as const
      const t = Math.floor(await s.now())
      await s.store.revoke(target, { at: 2000 })
      expect((await s.store.inspect(target)).ttlSeconds).toBeUndefined()
      await s.store.revoke(target, { at: 3000 }, { expireAt: t + 100 })
      const withTtl = (await s.store.inspect(target)).ttlSeconds
      expect(withTtl).toBeGreaterThan(90)
      expect(withTtl).toBeLessThanOrEqual(100)
      // Not applied: the stored cutoff and its TTL stay.
      await s.store.revoke(target, { at: 1000 }, { expireAt: t + 1000 })
      expect((await s.store.inspect(target)).ttlSeconds).toBeLessThanOrEqual(100)
      // Applied without expireAt: kept until lifted.
      await s.store.revoke(target, { at: 4000 })
      expect((await s.store.inspect(target)).ttlSeconds).toBeUndefined()
    },
  )

  withStore(
    'lifts a revocation, says whether one existed, and then lets an earlier cutoff in',
    async (s) => {
      for (const target of [{ kind: 'jti', jti: 'l' } as const, ...CUTOFF_TARGETS]) {
        await s.store.revoke(target, { at: 2000 })
        expect((await s.store.lift(target)).existed).toBe(true)
        expect((await s.store.lift(target)).existed).toBe(false)
        expect((await s.store.lookup([target]))[0]).toBeUndefined()
        expect((await s.store.inspect(target)).entry).toBeUndefined()
        expect((await s.store.revoke(target, { at: 1000 })).applied).toBe(true)
        expect((await s.store.lookup([target]))[0]).toMatchObject({ at: 1000 })
      }
      expect((await s.store.lift({ kind: 'subject', sub: 'never' })).existed).toBe(false)
    },
  )

  withStore('inspects without a revocation: its key, no entry, no TTL', async (s) => {
    const target = { kind: 'consumer_username', username: 'a:b c' } as const
    expect(await s.store.inspect(target)).toEqual({
      key: revocationKey(s.prefix, target),
      entry: undefined,
      ttlSeconds: undefined,
    })
  })

  withStore(
    'reads a value set by hand as keys.ts decodes it; an unreadable one as revoked forever',
    async (s) => {
      const values = ['1700000000', ' 1700000000 ', '{"at":5,"by":"hand"}', ...UNREADABLE]
      const targets = values.map((_, i): RevocationTarget => ({
        kind: 'subject',
        sub: `hand-${i}`,
      }))
      for (const [i, value] of values.entries()) {
        await s.setRaw(revocationKey(s.prefix, targets[i] as RevocationTarget), value)
      }
      const expected = values.map((v) => decodeEntry(v))
      expect(await s.store.lookup(targets)).toEqual(expected)
      expect(expected.slice(3).every((e) => e.at === Number.POSITIVE_INFINITY)).toBe(true)
      for (const [i, target] of targets.entries()) {
        expect((await s.store.inspect(target)).entry).toEqual(expected[i])
      }
    },
  )

  withStore(
    'reads the stored cutoff on a revoke as a lookup does: a later readable one is kept',
    async (s) => {
      for (const [i, value] of READABLE_LATER.entries()) {
        const target = { kind: 'subject', sub: `later-${i}` } as const
        await s.setRaw(revocationKey(s.prefix, target), value)
        const r = await s.store.revoke(target, { at: 1000 })
        expect({ value, r }).toMatchObject({
          value,
          r: { applied: false, entry: decodeEntry(value) },
        })
        expect((await s.store.lookup([target]))[0]).toEqual(decodeEntry(value))
      }
    },
  )

  withStore(
    'replaces a stored value a lookup cannot read, instead of reporting a cutoff it does not hold',
    async (s) => {
      for (const [i, value] of UNREADABLE.entries()) {
        const target = { kind: 'consumer', id: `unreadable-${i}` } as const
        await s.setRaw(revocationKey(s.prefix, target), value)
        const r = await s.store.revoke(target, { at: 1000, reason: 'repair' })
        expect({ value, r }).toMatchObject({ value, r: { applied: true, entry: { at: 1000 } } })
        expect((await s.store.lookup([target]))[0]).toMatchObject({ at: 1000, reason: 'repair' })
      }
    },
  )

  withStore(
    'refuses a revocation whose at or expireAt is not a finite number, writing nothing',
    async (s) => {
      const target = { kind: 'subject', sub: 'bad-input' } as const
      for (const at of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        await expect(s.store.revoke(target, { at })).rejects.toThrow(RangeError)
      }
      for (const expireAt of [Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(s.store.revoke(target, { at: 1000 }, { expireAt })).rejects.toThrow(/expireAt/)
      }
      expect((await s.store.lookup([target]))[0]).toBeUndefined()
    },
  )
}
