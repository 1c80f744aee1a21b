import type { Clock } from '../clock'

/**
 * The local cache of the request path. It remembers only that a key was ABSENT in Redis
 * ("not revoked"), never a stored revocation, so the worst a stale entry can do is let a token
 * through for at most `ttlMs` after it was revoked; it can never turn a revoked token back into a
 * valid one, and a lift needs no invalidation at all.
 *
 * Staleness bound: a revoke is announced on the events channel and {@link invalidate} drops the
 * key (pub/sub latency, milliseconds). Entries are only kept while that announcement path is
 * known to be live ({@link setLive}); when it is not, the cache is empty and every lookup goes to
 * Redis. `ttlMs` bounds what a lost message could cost.
 *
 * The generation counter closes the in-flight race: a lookup records the generation before it
 * asks Redis, and its "absent" answers are stored only if no invalidation arrived meanwhile (the
 * revoke may have landed between Redis answering and the answer being cached).
 */
export class AbsenceCache {
  readonly #entries = new Map<string, number>()
  #generation = 0
  #live = false

  constructor(
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly maxEntries = 10_000,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0 && this.#live
  }

  get generation(): number {
    return this.#generation
  }

  get size(): number {
    return this.#entries.size
  }

  /** True when `key` is known absent and the knowledge is fresh. */
  isAbsent(key: string): boolean {
    if (!this.enabled) return false
    const expires = this.#entries.get(key)
    if (expires === undefined) return false
    if (expires <= this.clock.now()) {
      this.#entries.delete(key)
      return false
    }
    return true
  }

  /** Records that `keys` were absent, as read by a lookup that started at `generation`. */
  rememberAbsent(keys: readonly string[], generation: number): void {
    if (!this.enabled || generation !== this.#generation) return
    const expires = this.clock.now() + this.ttlMs
    for (const key of keys) {
      this.#entries.delete(key)
      this.#entries.set(key, expires)
    }
    // Map keeps insertion order: the oldest entries go first.
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) break
      this.#entries.delete(oldest.value)
    }
  }

  invalidate(key: string): void {
    this.#generation++
    this.#entries.delete(key)
  }

  clear(): void {
    this.#generation++
    this.#entries.clear()
  }

  /** Whether invalidations are being received. Going down (or up) drops everything. */
  setLive(live: boolean): void {
    if (live === this.#live) return
    this.#live = live
    this.clear()
  }
}
