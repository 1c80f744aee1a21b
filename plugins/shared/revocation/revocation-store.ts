import type { RevocationEntry, RevocationTarget } from './keys'

/**
 * The read side, used on the request path. One call is one Redis round trip at most (a single
 * script call), or none when every answer is in the local cache.
 */
export interface RevocationStore {
  /**
   * The entry of each target, in order; `undefined` where nothing is revoked.
   * @throws RevocationUnavailableError when the answer cannot be had in time (Redis down, slow,
   *   failing over). Anything else thrown is a bug and is treated as one (500).
   */
  lookup(targets: readonly RevocationTarget[]): Promise<(RevocationEntry | undefined)[]>
}

export interface RevokeOptions {
  /** Unix seconds when the key may disappear (a jti: the token's exp plus leeway). None: kept. */
  readonly expireAt?: number | undefined
}

export interface RevokeResult {
  /** false when an existing cutoff was already later than the one asked for; it was kept. */
  readonly applied: boolean
  /** What is stored now. */
  readonly entry: RevocationEntry
  /** Plugin processes that received the change announcement (Redis PUBLISH's count). */
  readonly notified: number
}

export interface InspectResult {
  readonly key: string
  readonly entry: RevocationEntry | undefined
  /** Seconds until the key expires; undefined when it does not expire or does not exist. */
  readonly ttlSeconds: number | undefined
}

/**
 * The write side, used by the CLI (and tests). Every change is announced on the events channel
 * in the same atomic step, so plugin caches drop the affected key.
 */
export interface RevocationWriter {
  /**
   * Stores a revocation. A cutoff never moves earlier: if a later one is stored it is kept
   * (lift it first to move it back); see {@link keepsStoredCutoff}. A jti entry is always written.
   * @throws RangeError when `entry.at` or `options.expireAt` is not a finite number.
   */
  revoke(
    target: RevocationTarget,
    entry: RevocationEntry,
    options?: RevokeOptions,
  ): Promise<RevokeResult>
  /** Removes a revocation; resolves to whether one existed. */
  lift(target: RevocationTarget): Promise<{ readonly existed: boolean; readonly notified: number }>
  /** Reads one target without the cache, with its key and TTL, for `status`. */
  inspect(target: RevocationTarget): Promise<InspectResult>
}

/**
 * The one rule both stores follow on a cutoff revoke: keep what is stored when it is a cutoff at
 * or after `next.at`. `stored` is the stored value read as a lookup reads it (decodeEntry); a
 * value a lookup cannot read (a cutoff of +Infinity, which refuses every token) is replaced, so a
 * revoke repairs it rather than report a cutoff that does not exist.
 */
export function keepsStoredCutoff(stored: RevocationEntry, next: RevocationEntry): boolean {
  return Number.isFinite(stored.at) && stored.at >= next.at
}

/** Refuses a revocation no store can hold faithfully. */
export function checkRevocation(entry: RevocationEntry, options?: RevokeOptions): void {
  if (!Number.isFinite(entry.at)) {
    throw new RangeError(`revocation at must be a finite number of seconds, got ${entry.at}`)
  }
  const expireAt = options?.expireAt
  if (expireAt !== undefined && !Number.isFinite(expireAt)) {
    throw new RangeError(`revocation expireAt must be finite Unix seconds, got ${expireAt}`)
  }
}

/**
 * The store could not answer in time. Matched by `name`, not `instanceof`, like PluginError.
 */
export class RevocationUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'RevocationUnavailableError'
  }
}

export function isRevocationUnavailable(error: unknown): error is RevocationUnavailableError {
  return error instanceof Error && error.name === 'RevocationUnavailableError'
}
