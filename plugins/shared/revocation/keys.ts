/**
 * THE Redis key layout of revocations. The plugin reads these keys and the CLI writes them;
 * both go through this module and nothing else spells a key.
 *
 * ```
 * <prefix>jti:<jti>                     one token, expires with the token (EXPIREAT exp + leeway)
 * <prefix>sub:<sub>                     subject cutoff, every issuer
 * <prefix>iss:<iss>:sub:<sub>           subject cutoff, one issuer
 * <prefix>consumer:id:<consumer id>     Kong consumer cutoff, by consumer id
 * <prefix>consumer:username:<username>  Kong consumer cutoff, by consumer username
 * <prefix>events                        pub/sub channel: every revoke and lift is announced here
 * ```
 *
 * Each variable part is percent-encoded (encodeURIComponent, plus `*`), so a `:` inside a
 * subject or issuer can never make one key look like another. Values are JSON
 * {@link RevocationEntry} objects; a bare number is read as `{at: number}` so a key set by hand
 * with `SET <prefix>sub:alice 1700000000` works too.
 */
export const DEFAULT_KEY_PREFIX = 'jwt-revocation:'

/** What a revocation applies to. */
export type RevocationTarget =
  | { readonly kind: 'jti'; readonly jti: string }
  | { readonly kind: 'subject'; readonly sub: string; readonly iss?: string | undefined }
  | { readonly kind: 'consumer'; readonly id: string }
  | { readonly kind: 'consumer_username'; readonly username: string }

export type RevocationKind = RevocationTarget['kind']

/**
 * What is stored under a key. For a jti the key's presence is the revocation; for a cutoff,
 * tokens whose `iat` is earlier than `at` (NumericDate seconds) are refused.
 */
export interface RevocationEntry {
  /** When the revocation was made (jti) or the cutoff moment (subject, consumer), in seconds. */
  readonly at: number
  readonly reason?: string | undefined
  /** Who or what made it, e.g. `cli:alice@host`. Informational. */
  readonly by?: string | undefined
}

function enc(part: string): string {
  return encodeURIComponent(part).replace(/\*/g, '%2A')
}

export function revocationKey(prefix: string, target: RevocationTarget): string {
  switch (target.kind) {
    case 'jti':
      return `${prefix}jti:${enc(target.jti)}`
    case 'subject':
      return target.iss === undefined
        ? `${prefix}sub:${enc(target.sub)}`
        : `${prefix}iss:${enc(target.iss)}:sub:${enc(target.sub)}`
    case 'consumer':
      return `${prefix}consumer:id:${enc(target.id)}`
    case 'consumer_username':
      return `${prefix}consumer:username:${enc(target.username)}`
  }
}

/** The pub/sub channel every writer announces changes on. */
export function eventsChannel(prefix: string): string {
  return `${prefix}events`
}

/** A change announced on {@link eventsChannel}: subscribers drop `key` from their caches. */
export interface RevocationEvent {
  readonly op: 'revoke' | 'lift'
  readonly key: string
}

export function encodeEvent(event: RevocationEvent): string {
  return JSON.stringify(event)
}

/** `undefined` for anything that is not an event we wrote; callers then drop their whole cache. */
export function decodeEvent(message: string): RevocationEvent | undefined {
  try {
    const v: unknown = JSON.parse(message)
    if (typeof v !== 'object' || v === null) return undefined
    const { op, key } = v as { op?: unknown; key?: unknown }
    if ((op === 'revoke' || op === 'lift') && typeof key === 'string') return { op, key }
    return undefined
  } catch {
    return undefined
  }
}

export function encodeEntry(entry: RevocationEntry): string {
  const out: Record<string, unknown> = { at: entry.at }
  if (entry.reason !== undefined) out['reason'] = entry.reason
  if (entry.by !== undefined) out['by'] = entry.by
  return JSON.stringify(out)
}

/**
 * Reads a stored value. A value that cannot be read is still a revocation, with cutoff
 * +Infinity: an unreadable key must never be taken as "not revoked".
 */
export function decodeEntry(value: string): RevocationEntry {
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return { at: Number(trimmed) }
  try {
    const v: unknown = JSON.parse(trimmed)
    if (typeof v === 'object' && v !== null) {
      const { at, reason, by } = v as { at?: unknown; reason?: unknown; by?: unknown }
      if (typeof at === 'number' && Number.isFinite(at)) {
        return {
          at,
          reason: typeof reason === 'string' ? reason : undefined,
          by: typeof by === 'string' ? by : undefined,
        }
      }
    }
  } catch {
    // fall through
  }
  return { at: Number.POSITIVE_INFINITY, reason: 'unreadable revocation entry' }
}

/**
 * How long after a token's `exp` its jti key is kept: verifiers accept a token a little after
 * `exp` (clock tolerance), so the revocation must outlive it by at least that much.
 */
export const DEFAULT_JTI_LEEWAY_SECONDS = 300
