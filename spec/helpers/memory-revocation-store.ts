import { systemClock, type Clock } from '../../plugins/shared/clock'
import {
  decodeEntry,
  encodeEntry,
  revocationKey,
  type RevocationEntry,
  type RevocationTarget,
} from '../../plugins/shared/revocation/keys'
import {
  checkRevocation,
  keepsStoredCutoff,
  RevocationUnavailableError,
  type InspectResult,
  type RevocationStore,
  type RevocationWriter,
  type RevokeOptions,
  type RevokeResult,
} from '../../plugins/shared/revocation/revocation-store'

/**
 * RevocationStore and RevocationWriter in memory, with the Redis store's semantics (same keys,
 * same "a cutoff never moves earlier", expiry by clock as Redis keeps it: whole seconds, gone once
 * past) for unit tests. spec/integration/revocation/08-store-contract.spec.ts runs one set of
 * cases against both, so the two cannot drift. `unavailable` makes lookups fail as an
 * unreachable Redis would; `failWith` makes them throw anything else.
 */
export class MemoryRevocationStore implements RevocationStore, RevocationWriter {
  readonly #data = new Map<string, { value: string; expireAt: number | undefined }>()
  /** Every lookup, as the list of keys it asked for (one lookup = one Redis round trip). */
  readonly lookups: string[][] = []
  unavailable = false
  failWith: Error | undefined = undefined

  constructor(
    readonly prefix = 'jwt-revocation:',
    private readonly clock: Clock = systemClock,
  ) {}

  async lookup(targets: readonly RevocationTarget[]): Promise<(RevocationEntry | undefined)[]> {
    // Nothing to ask: no round trip, as in the Redis store.
    if (targets.length === 0) return []
    const keys = targets.map((t) => revocationKey(this.prefix, t))
    this.lookups.push(keys)
    if (this.failWith !== undefined) throw this.failWith
    if (this.unavailable) throw new RevocationUnavailableError('memory store set unavailable')
    return keys.map((k) => {
      const v = this.get(k)
      return v === undefined ? undefined : decodeEntry(v)
    })
  }

  async revoke(
    target: RevocationTarget,
    entry: RevocationEntry,
    options?: RevokeOptions,
  ): Promise<RevokeResult> {
    checkRevocation(entry, options)
    const key = revocationKey(this.prefix, target)
    const current = this.get(key)
    if (current !== undefined && target.kind !== 'jti') {
      const stored = decodeEntry(current)
      if (keepsStoredCutoff(stored, entry)) return { applied: false, entry: stored, notified: 0 }
    }
    const value = encodeEntry(entry)
    // EXPIREAT takes whole seconds: the Redis store rounds up.
    const expireAt = options?.expireAt === undefined ? undefined : Math.ceil(options.expireAt)
    this.#data.set(key, { value, expireAt })
    return { applied: true, entry: decodeEntry(value), notified: 0 }
  }

  async lift(target: RevocationTarget): Promise<{ existed: boolean; notified: number }> {
    const key = revocationKey(this.prefix, target)
    const existed = this.get(key) !== undefined
    this.#data.delete(key)
    return { existed, notified: 0 }
  }

  async inspect(target: RevocationTarget): Promise<InspectResult> {
    const key = revocationKey(this.prefix, target)
    const v = this.get(key)
    const expireAt = this.#data.get(key)?.expireAt
    return {
      key,
      entry: v === undefined ? undefined : decodeEntry(v),
      // Redis's TTL: the milliseconds left, rounded to the nearest second.
      ttlSeconds:
        v !== undefined && expireAt !== undefined
          ? Math.floor((expireAt * 1000 - this.clock.now() + 500) / 1000)
          : undefined,
    }
  }

  /** Raw write, e.g. a value set by hand with redis-cli. */
  setRaw(key: string, value: string): void {
    this.#data.set(key, { value, expireAt: undefined })
  }

  private get(key: string): string | undefined {
    const e = this.#data.get(key)
    if (e === undefined) return undefined
    // Redis drops a key once its clock is strictly past the expiry.
    if (e.expireAt !== undefined && this.clock.now() > e.expireAt * 1000) {
      this.#data.delete(key)
      return undefined
    }
    return e.value
  }
}
