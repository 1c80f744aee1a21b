import type { JWTPayload } from 'jose'
import { PluginError } from '../shared/errors'
import {
  DEFAULT_JTI_LEEWAY_SECONDS,
  type RevocationEntry,
  type RevocationTarget,
} from '../shared/revocation/keys'
import type { Config } from './schema'

/**
 * The revocation decision, pure: from the verified token's claims, the authenticated consumer
 * and what the store returned. No I/O; the handler fetches, this decides.
 */

/**
 * Time limits that keep revocations effective whatever verified the token:
 * - a token past `exp` + the jti retention is refused, because its jti revocation may already
 *   have expired from Redis (Kong's bundled jwt plugin does not check `exp` unless configured);
 * - a token issued in the future (`iat` > now + the same margin) is refused, because no
 *   "revoked before" cutoff could ever reach it.
 * @throws PluginError ERR_TOKEN_EXPIRED, ERR_TOKEN_NOT_YET_VALID
 */
export function checkTimes(claims: JWTPayload, nowSeconds: number): void {
  const margin = DEFAULT_JTI_LEEWAY_SECONDS
  if (typeof claims.exp === 'number' && nowSeconds > claims.exp + margin) {
    throw new PluginError(
      'ERR_TOKEN_EXPIRED',
      `exp ${claims.exp} is more than ${margin} s past: a jti revocation of it may be forgotten`,
    )
  }
  if (typeof claims.iat === 'number' && claims.iat > nowSeconds + margin) {
    throw new PluginError(
      'ERR_TOKEN_NOT_YET_VALID',
      `iat ${claims.iat} is in the future: no revocation cutoff could reach it`,
    )
  }
}

/** The consumer Kong authenticated, as far as the decision needs it. */
export interface ConsumerRef {
  readonly id: string
  readonly username?: string | null | undefined
}

export type Checks = Pick<Config, 'check' | 'subject_scope' | 'missing_jti' | 'missing_subject'>

/** Refuses, unless missing_subject = allow, a request a checked kind cannot be looked up for. */
function missing(config: Pick<Config, 'missing_subject'>, what: string): void {
  if (config.missing_subject === 'refuse') {
    throw new PluginError('ERR_CLAIM_MISSING', `${what} (missing_subject = refuse)`)
  }
}

/** Whether the decision needs the consumer (one more PDK round trip). */
export function needsConsumer(config: Pick<Config, 'check'>): boolean {
  return config.check.includes('consumer')
}

/**
 * The keys to look up for this token and consumer: {@link tokenTargets} then
 * {@link consumerTargets}.
 */
export function planLookup(
  claims: JWTPayload,
  consumer: ConsumerRef | undefined,
  config: Checks,
): RevocationTarget[] {
  return [...tokenTargets(claims, config), ...consumerTargets(consumer, config)]
}

/**
 * The keys the token's own claims call for. Called before the consumer is fetched, so a refusal
 * costs no extra call.
 * @throws PluginError ERR_CLAIM_MISSING when `jti` is checked, absent and `missing_jti` is
 *   `refuse`, or `sub` (or `iss` for issuer-scoped cutoffs) is absent and `missing_subject` is
 *   `refuse`; ERR_CLAIM_INVALID when `jti`, `sub` or `iss` is present but not a string.
 */
export function tokenTargets(claims: JWTPayload, config: Checks): RevocationTarget[] {
  const targets: RevocationTarget[] = []
  if (config.check.includes('jti')) {
    const jti = stringClaim(claims, 'jti')
    if (jti !== undefined) targets.push({ kind: 'jti', jti })
    else if (config.missing_jti === 'refuse') {
      throw new PluginError(
        'ERR_CLAIM_MISSING',
        'jti: required to check for revocation (missing_jti = refuse)',
      )
    }
  }
  if (config.check.includes('subject')) {
    const sub = stringClaim(claims, 'sub')
    if (sub === undefined) {
      missing(config, 'sub: required to check subject revocations')
    } else {
      if (config.subject_scope !== 'issuer') targets.push({ kind: 'subject', sub })
      const iss = stringClaim(claims, 'iss')
      if (config.subject_scope !== 'global') {
        if (iss !== undefined) targets.push({ kind: 'subject', sub, iss })
        else missing(config, 'iss: required to check issuer-scoped subject revocations')
      }
    }
  }
  return targets
}

/**
 * The consumer's keys, by id and by username.
 * @throws PluginError ERR_CLAIM_MISSING without an authenticated consumer, unless
 *   missing_subject = allow (then none).
 */
export function consumerTargets(
  consumer: ConsumerRef | undefined,
  config: Pick<Config, 'check' | 'missing_subject'>,
): RevocationTarget[] {
  if (!config.check.includes('consumer')) return []
  if (consumer === undefined) {
    missing(config, 'consumer: none authenticated, so consumer revocations cannot be checked')
    return []
  }
  const targets: RevocationTarget[] = [{ kind: 'consumer', id: consumer.id }]
  if (typeof consumer.username === 'string' && consumer.username !== '') {
    targets.push({ kind: 'consumer_username', username: consumer.username })
  }
  return targets
}

/** Why a token is revoked, for the log and for the CLI's `status`. */
export interface Finding {
  readonly target: RevocationTarget
  readonly entry: RevocationEntry
  /** Human-readable: "jti abc revoked at …", "subject alice: issued … before cutoff …". */
  readonly why: string
  /** A cutoff exists but the token has no usable `iat` to compare with it. */
  readonly iatMissing: boolean
}

/**
 * Every revocation that applies. A jti entry always applies; a cutoff applies when the token's
 * `iat` is earlier than it (RFC 7519 §4.1.6), or when there is no `iat` to compare.
 */
export function findRevocations(
  claims: JWTPayload,
  targets: readonly RevocationTarget[],
  entries: readonly (RevocationEntry | undefined)[],
): Finding[] {
  const iat = typeof claims.iat === 'number' && Number.isFinite(claims.iat) ? claims.iat : undefined
  const findings: Finding[] = []
  targets.forEach((target, i) => {
    const entry = entries[i]
    if (entry === undefined) return
    const reason = entry.reason === undefined ? '' : ` (${entry.reason})`
    if (target.kind === 'jti') {
      findings.push({
        target,
        entry,
        iatMissing: false,
        why: `jti ${target.jti} revoked at ${isoTime(entry.at)}${reason}`,
      })
      return
    }
    const what = describeTarget(target)
    if (iat === undefined) {
      findings.push({
        target,
        entry,
        iatMissing: true,
        why: `${what} revoked before ${isoTime(entry.at)}, token has no iat${reason}`,
      })
    } else if (iat < entry.at) {
      findings.push({
        target,
        entry,
        iatMissing: false,
        why: `${what} revoked before ${isoTime(entry.at)}, token issued ${isoTime(iat)}${reason}`,
      })
    }
  })
  return findings
}

/**
 * The decision once the store answered.
 * @throws PluginError ERR_TOKEN_REVOKED when a revocation applies; ERR_CLAIM_MISSING when the only
 *   thing standing between the token and a cutoff is a missing `iat` and `missing_iat` is `refuse`.
 */
export function decide(
  claims: JWTPayload,
  targets: readonly RevocationTarget[],
  entries: readonly (RevocationEntry | undefined)[],
  config: Pick<Config, 'missing_iat'>,
): void {
  const findings = findRevocations(claims, targets, entries)
  const revoked = findings.find((f) => !f.iatMissing)
  if (revoked !== undefined) throw new PluginError('ERR_TOKEN_REVOKED', revoked.why)
  const noIat = findings[0]
  if (noIat !== undefined && config.missing_iat === 'refuse') {
    throw new PluginError(
      'ERR_CLAIM_MISSING',
      `iat: required because ${noIat.why} (missing_iat = refuse)`,
    )
  }
}

/**
 * The store could not answer. `fail_closed`: 503. `fail_open`: the caller passes the request
 * and logs the returned line.
 * @throws PluginError ERR_REVOCATION_UNAVAILABLE under fail_closed.
 */
export function onUnavailable(config: Pick<Config, 'on_unavailable'>, reason: string): string {
  if (config.on_unavailable === 'fail_closed') {
    throw new PluginError('ERR_REVOCATION_UNAVAILABLE', `${reason} (on_unavailable = fail_closed)`)
  }
  return `revocation check skipped, request passed: ${reason} (on_unavailable = fail_open)`
}

export function describeTarget(target: RevocationTarget): string {
  switch (target.kind) {
    case 'jti':
      return `jti ${target.jti}`
    case 'subject':
      return target.iss === undefined
        ? `subject ${target.sub}`
        : `subject ${target.sub} of issuer ${target.iss}`
    case 'consumer':
      return `consumer ${target.id}`
    case 'consumer_username':
      return `consumer username ${target.username}`
  }
}

function stringClaim(claims: JWTPayload, name: 'jti' | 'sub' | 'iss'): string | undefined {
  const v: unknown = claims[name]
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string') throw new PluginError('ERR_CLAIM_INVALID', `${name}: must be a string`)
  return v
}

function isoTime(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'forever'
  const d = new Date(seconds * 1000)
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString()
}
