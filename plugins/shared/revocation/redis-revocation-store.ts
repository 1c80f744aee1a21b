import { Cluster } from 'ioredis'
import { systemClock, type Clock } from '../clock'
import type { Logger } from '../logger'
import { describeRedis, type RedisSettings } from '../schema/redis-fields'
import { AbsenceCache } from './absence-cache'
import { breakerPolicy } from './circuit-breaker'
import {
  decodeEntry,
  decodeEvent,
  encodeEntry,
  encodeEvent,
  eventsChannel,
  revocationKey,
  type RevocationEntry,
  type RevocationTarget,
} from './keys'
import { isPluginError, PluginError } from '../errors'
import { LookupBreaker } from './lookup-breaker'
import {
  isRefusalByRedis,
  sharedRedis,
  waitReady,
  type RedisClient,
  type SharedRedis,
} from './redis-clients'
import {
  isRevocationUnavailable,
  checkRevocation,
  keepsStoredCutoff,
  RevocationUnavailableError,
  type InspectResult,
  type RevocationStore,
  type RevocationWriter,
  type RevokeOptions,
  type RevokeResult,
} from './revocation-store'

export interface RedisRevocationStoreOptions {
  readonly prefix: string
  /** The whole lookup, connection wait included, answers or fails within this bound. */
  readonly timeoutMs: number
  /** How long an "absent" answer may be served from the local cache; 0 disables the cache. */
  readonly cacheTtlMs: number
  readonly clock?: Clock
  /**
   * Request path (default): once the connection has been up, a lost connection fails every
   * lookup at once until it is back, instead of each request waiting out `timeoutMs`. Only the
   * very first connection is waited for. The CLI sets false and waits.
   */
  readonly failFast?: boolean
  /**
   * The circuit breaker lookups go through (the request path: one per shared connection, see
   * {@link sharedRevocationStore}). None: every lookup asks Redis (the CLI, which only writes
   * and inspects).
   */
  readonly breaker?: LookupBreaker | undefined
}

/**
 * Stores or refreshes a revocation and announces it, atomically (one script, one round trip).
 * KEYS[1] key; ARGV: value, expire-at-or-'', channel, message, expected, expected value.
 * `expected` '' writes unconditionally (a jti); otherwise the write happens only if the key is
 * still as the caller read it: 'none' (absent), 'other' (a key of another type), or 'string'
 * holding exactly the expected value. Returns {1, subscribers reached} or {0} when it changed.
 * The script compares and never reads a value: what a stored value means is decided in one place,
 * keys.ts decodeEntry, as lookups decide it.
 */
const REVOKE_SCRIPT = `
if ARGV[5] ~= '' then
  local kind = redis.call('TYPE', KEYS[1]).ok
  local other = kind ~= 'none' and kind ~= 'string'
  if kind ~= ARGV[5] and not (ARGV[5] == 'other' and other) then return {0} end
  if kind == 'string' and redis.call('GET', KEYS[1]) ~= ARGV[6] then return {0} end
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('EXPIREAT', KEYS[1], ARGV[2]) end
return {1, redis.call('PUBLISH', ARGV[3], ARGV[4])}
`

/** KEYS[1] key. Returns {type} or, for a string key, {'string', value}; works on Cluster too. */
const READ_ONE_SCRIPT = `
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then return {kind, redis.call('GET', KEYS[1])} end
return {kind}
`

/** A cutoff revoke reads, decides, then writes if the key did not change; this many tries. */
const REVOKE_ATTEMPTS = 5

/**
 * The read of one lookup, in one round trip like MGET, but never blind to a key's type: MGET
 * answers nil for a key that holds a hash or a list, which would read as "not revoked", while
 * keys.ts promises that an unreadable entry counts as revoked. A key of another type comes back
 * as a value decodeEntry cannot read, i.e. revoked forever.
 */
const READ_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key).ok
  if kind == 'string' then out[i] = redis.call('GET', key)
  elseif kind == 'none' then out[i] = false
  else out[i] = 'unreadable: a ' .. kind .. ' key' end
end
return out
`

/** Cluster: a GET of a key of another type fails with WRONGTYPE; that key reads as unreadable. */
function readableGet(client: Cluster, key: string): Promise<string | null> {
  return client.get(key).catch((error: unknown) => {
    if (error instanceof Error && error.message.startsWith('WRONGTYPE'))
      return 'unreadable: not a string key'
    throw error
  })
}

/** KEYS[1] key; ARGV: channel, message. Returns {keys deleted, subscribers reached}. */
const LIFT_SCRIPT = `
local n = redis.call('DEL', KEYS[1])
return {n, redis.call('PUBLISH', ARGV[1], ARGV[2])}
`

/**
 * Redis refusing what the store asks: a deployment or config fault (500 ERR_CONFIG_INVALID,
 * whatever on_unavailable says), never an outage.
 */
function misconfigured(what: string, cause: Error): PluginError {
  return new PluginError(
    'ERR_CONFIG_INVALID',
    `Redis refused the revocation ${what}: ${cause.message}`,
    { cause },
  )
}

/** Errors JavaScript raises for code at fault, never Redis or its client for an outage. */
function isProgrammingError(error: unknown): boolean {
  return (
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError
  )
}

/**
 * Revocations in Redis, with the local {@link AbsenceCache} in front of the request path and
 * the events channel keeping it honest. Reads are one script call that GETs every key and tells
 * a key of another type apart (single server and Sentinel), or one GET per key sent together
 * (Cluster, where the keys live in different slots).
 */
export class RedisRevocationStore implements RevocationStore, RevocationWriter {
  readonly #cache: AbsenceCache
  readonly #client: RedisClient
  readonly #channel: string
  #subscribed = false
  #everReady = false

  constructor(
    private readonly redis: Pick<SharedRedis, 'client' | 'subscribe'> &
      Partial<Pick<SharedRedis, 'refusal'>>,
    private readonly options: RedisRevocationStoreOptions,
  ) {
    this.#client = redis.client
    this.#channel = eventsChannel(options.prefix)
    this.#cache = new AbsenceCache(options.cacheTtlMs, options.clock ?? systemClock)
  }

  /** For tests and diagnostics: whether cached answers are being served. */
  get cacheLive(): boolean {
    return this.#cache.enabled
  }

  async lookup(targets: readonly RevocationTarget[]): Promise<(RevocationEntry | undefined)[]> {
    const keys = targets.map((t) => revocationKey(this.options.prefix, t))
    this.ensureSubscribed()
    const wanted = keys.filter((k) => !this.#cache.isAbsent(k))
    if (wanted.length === 0) return keys.map(() => undefined)

    const breaker = this.options.breaker
    const what = `lookup of ${wanted.length} key(s)`
    // Only what the cache could not answer gets here: an open circuit changes nothing about
    // which "absent" answers may be served, it only spares the wait for Redis.
    if (breaker !== undefined && !breaker.admit()) {
      throw new RevocationUnavailableError(`${what}: ${breaker.openReason}`)
    }
    const generation = this.#cache.generation
    const clock = this.options.clock ?? systemClock
    const started = clock.now()
    let values: (string | null)[]
    try {
      values = await this.bounded(what, () => this.read(wanted), breaker)
    } catch (error) {
      if (breaker !== undefined && isRevocationUnavailable(error)) {
        breaker.failed(clock.now() - started, error.message, () =>
          this.bounded(`probe (${what})`, () => this.read(wanted)),
        )
      }
      throw error
    }
    breaker?.answered()
    const found = new Map<string, string>()
    const absent: string[] = []
    wanted.forEach((key, i) => {
      const v = values[i]
      if (v === null || v === undefined) absent.push(key)
      else found.set(key, v)
    })
    this.#cache.rememberAbsent(absent, generation)
    return keys.map((k) => {
      const v = found.get(k)
      return v === undefined ? undefined : decodeEntry(v)
    })
  }

  /** One read of `keys`: a script call, or one GET per key on a Cluster. */
  private async read(keys: readonly string[]): Promise<(string | null)[]> {
    await this.ready()
    const client = this.#client
    return client instanceof Cluster
      ? Promise.all(keys.map((k) => readableGet(client, k)))
      : (client.eval(READ_SCRIPT, keys.length, ...keys) as Promise<(string | null)[]>)
  }

  /**
   * A jti: one round trip. A cutoff: two, read then compare-and-write, so that "is the stored
   * cutoff later?" is answered by decodeEntry and {@link keepsStoredCutoff}, exactly as the
   * memory store and the lookups read it (a Lua reading of its own disagreed on values such as
   * `5e3` or `{"at":"5000"}`). A concurrent writer makes it read again.
   */
  async revoke(
    target: RevocationTarget,
    entry: RevocationEntry,
    options?: RevokeOptions,
  ): Promise<RevokeResult> {
    checkRevocation(entry, options)
    const key = revocationKey(this.options.prefix, target)
    const value = encodeEntry(entry)
    const expireAt = options?.expireAt === undefined ? '' : String(Math.ceil(options.expireAt))
    const event = encodeEvent({ op: 'revoke', key })
    return this.bounded('revoke', async () => {
      await this.ready()
      for (let attempt = 0; attempt < REVOKE_ATTEMPTS; attempt++) {
        let expected: [string, string] = ['', '']
        if (target.kind !== 'jti') {
          const [kind, current] = (await this.#client.eval(READ_ONE_SCRIPT, 1, key)) as [
            string,
            string | undefined,
          ]
          if (kind === 'string' && current !== undefined) {
            const stored = decodeEntry(current)
            if (keepsStoredCutoff(stored, entry))
              return { applied: false, entry: stored, notified: 0 }
            expected = ['string', current]
          } else {
            expected = [kind === 'none' ? 'none' : 'other', '']
          }
        }
        const reply = (await this.#client.eval(
          REVOKE_SCRIPT,
          1,
          key,
          value,
          expireAt,
          this.#channel,
          event,
          ...expected,
        )) as [number, number | undefined]
        if (reply[0] === 1)
          return { applied: true, entry: decodeEntry(value), notified: reply[1] ?? 0 }
      }
      throw new RevocationUnavailableError(
        `revoke: ${key} changed under each of ${REVOKE_ATTEMPTS} attempts (concurrent writers)`,
      )
    })
  }

  async lift(target: RevocationTarget): Promise<{ existed: boolean; notified: number }> {
    const key = revocationKey(this.options.prefix, target)
    const reply = await this.bounded('lift', async () => {
      await this.ready()
      return this.#client.eval(LIFT_SCRIPT, 1, key, this.#channel, encodeEvent({ op: 'lift', key }))
    })
    const [deleted, notified] = reply as [number, number]
    return { existed: deleted > 0, notified }
  }

  async inspect(target: RevocationTarget): Promise<InspectResult> {
    const key = revocationKey(this.options.prefix, target)
    const [value, ttl] = await this.bounded('inspect', async () => {
      await this.ready()
      return Promise.all([this.#client.get(key), this.#client.ttl(key)])
    })
    return {
      key,
      entry: value === null ? undefined : decodeEntry(value),
      ttlSeconds: value !== null && ttl >= 0 ? ttl : undefined,
    }
  }

  private async ready(): Promise<void> {
    const status = this.#client.status
    if (status === 'ready') {
      this.#everReady = true
      return
    }
    const refusal = this.redis.refusal?.()
    if (refusal !== undefined) throw misconfigured('connection', refusal)
    if (this.#everReady && this.options.failFast !== false) {
      throw new RevocationUnavailableError(`Redis connection is down (${status})`)
    }
    await waitReady(this.#client, this.options.timeoutMs)
    this.#everReady = true
  }

  /** The subscription starts with the first lookup, never in a constructor. */
  private ensureSubscribed(): void {
    if (this.#subscribed || this.options.cacheTtlMs <= 0) return
    this.#subscribed = true
    this.redis.subscribe(this.#channel, {
      onMessage: (message) => {
        const event = decodeEvent(message)
        if (event === undefined) this.#cache.clear()
        else this.#cache.invalidate(event.key)
      },
      onLive: (live) => this.#cache.setLive(live),
    })
  }

  /**
   * Runs one Redis interaction under the store's time bound. Whatever goes wrong inside (a
   * refused connection, a timeout, a failover, a script error) is the store being unavailable.
   * With `breaker`, the wait also ends as soon as the circuit opens (another lookup's failure
   * tripped it): lookups in flight get the same answer as those that come after.
   */
  private async bounded<T>(
    what: string,
    fn: () => Promise<T>,
    breaker?: LookupBreaker,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    let stopWatching: (() => void) | undefined
    const abandoned = new Promise<never>((_, reject) => {
      stopWatching = breaker?.onOpen(() =>
        reject(new RevocationUnavailableError(`${what}: abandoned, ${breaker.openReason}`)),
      )
    })
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new RevocationUnavailableError(
              `${what}: no answer within ${this.options.timeoutMs} ms`,
            ),
          ),
        this.options.timeoutMs,
      )
      timer.unref()
    })
    const work = fn()
    try {
      return await Promise.race(
        breaker === undefined ? [work, deadline] : [work, deadline, abandoned],
      )
    } catch (cause) {
      work.catch(() => undefined)
      if (cause instanceof RevocationUnavailableError) throw cause
      // A bug is not an outage: under on_unavailable = fail_open an outage passes the request,
      // so only what Redis and its client raise may count as one; a programming error goes on
      // to the boundary's 500.
      if (isProgrammingError(cause) || isPluginError(cause)) throw cause
      // Nor is Redis refusing us (a wrong password, an ACL user without EVAL, a script error):
      // it answers at once, every time, and would pass every request under fail_open.
      if (isRefusalByRedis(cause)) throw misconfigured(what, cause)
      const message = cause instanceof Error ? cause.message : String(cause)
      throw new RevocationUnavailableError(`${what}: ${message}`, { cause })
    } finally {
      clearTimeout(timer)
      stopWatching?.()
    }
  }
}

const STORES = new Map<string, RedisRevocationStore>()
const BREAKERS = new WeakMap<SharedRedis, LookupBreaker>()

/**
 * The process-wide store for these settings and options: plugin instances come and go (and
 * exist once per Kong worker) but share one connection, one subscription and one cache.
 *
 * The circuit breaker belongs to the shared connection, i.e. to the Redis settings and
 * `timeout_ms`: every plugin instance of the process that reads the same Redis with the same
 * time bound (jwt-revocation and consumer-jwt's `revocation` alike, whatever their key prefix
 * or cache) sees it open and close together. A different `timeout_ms` is a different
 * connection with its own breaker, since what counts as a slow failure depends on it.
 */
export function sharedRevocationStore(
  settings: RedisSettings,
  options: RedisRevocationStoreOptions,
  logger: Logger,
): RedisRevocationStore {
  const key = JSON.stringify([settings, options.prefix, options.timeoutMs, options.cacheTtlMs])
  let store = STORES.get(key)
  if (store === undefined) {
    const redis = sharedRedis(
      settings,
      { commandTimeoutMs: options.timeoutMs, failFast: true },
      logger,
    )
    let breaker = BREAKERS.get(redis)
    if (breaker === undefined) {
      breaker = new LookupBreaker(breakerPolicy(options.timeoutMs), {
        clock: options.clock ?? systemClock,
        logger,
        redis: describeRedis(settings),
      })
      BREAKERS.set(redis, breaker)
    }
    store = new RedisRevocationStore(redis, { ...options, breaker })
    STORES.set(key, store)
  }
  return store
}

/** Forgets every shared store (tests only; pair with closeSharedRedis). */
export function forgetSharedRevocationStores(): void {
  STORES.clear()
}
