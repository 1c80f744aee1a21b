import type { RefusalLogMode } from '../shared/refusal-log'
import { logRefusalsField, toKongSchema, type KongField } from '../shared/schema/kong-fields'
import { readRecord } from '../shared/schema/read'
import {
  parseRedisSettings,
  redisRecordField,
  type RedisSettings,
} from '../shared/schema/redis-fields'
import { DEFAULT_KEY_PREFIX } from '../shared/revocation/keys'

export type CheckKind = 'jti' | 'subject' | 'consumer'
export const CHECK_KINDS: readonly CheckKind[] = ['jti', 'subject', 'consumer']

/**
 * Configuration of jwt-revocation, keys exactly as in kong.yml.
 *
 * The plugin runs after authentication (priority 1400, behind consumer-jwt and Kong's jwt
 * plugin at 1450) and reads the token they verified from `kong.ctx.shared`. It never verifies a
 * token itself.
 */
export interface Config {
  /** Where revocations live. */
  readonly redis: RedisSettings
  /** Prefix of every key and of the events channel; the CLI's --key-prefix must match. */
  readonly key_prefix: string
  /** Which revocations are looked up. `consumer` costs one more PDK round trip. */
  readonly check: readonly CheckKind[]
  /**
   * Which subject cutoffs apply: `global` (set without --issuer), `issuer` (set with --issuer,
   * matched against the token's `iss`), or `both`.
   */
  readonly subject_scope: 'global' | 'issuer' | 'both'
  /** A token without `jti` while `jti` is checked: refused (ERR_CLAIM_MISSING) or let through. */
  readonly missing_jti: 'refuse' | 'allow'
  /** A token without `iat` for which a subject or consumer cutoff exists. */
  readonly missing_iat: 'refuse' | 'allow'
  /**
   * A request with nothing to look a checked kind up by: no `sub` (subject checked), no `iss`
   * (issuer-scoped subject cutoffs checked), no authenticated consumer (consumer checked).
   * `refuse` (401 ERR_CLAIM_MISSING) or `allow` (that kind cannot apply to it).
   */
  readonly missing_subject: 'refuse' | 'allow'
  /**
   * No verified token in the request context. false (default): pass, since authentication
   * (and an anonymous consumer) is the authentication plugin's decision; true: refuse with 401
   * ERR_SCOPE_CONTEXT_MISSING, for routes where this plugin must never be skipped.
   */
  readonly require_token: boolean
  /** Redis unreachable or slow: `fail_closed` refuses with 503, `fail_open` passes and logs. */
  readonly on_unavailable: 'fail_closed' | 'fail_open'
  /** Bound on one lookup, connection wait included. */
  readonly timeout_ms: number
  /** How long a "not revoked" answer may be reused locally while pub/sub is live; 0 disables. */
  readonly cache_ttl_ms: number
  /** The realm of the WWW-Authenticate challenge. */
  readonly realm: string
  /** Refusals in Kong's log: counted per minute (summary) or one line each (every). */
  readonly log_refusals: RefusalLogMode
}

export const fields = {
  redis: redisRecordField(
    'Where revocations are stored: a single Redis server, a Sentinel group or a Cluster.',
  ),
  key_prefix: {
    type: 'string',
    default: DEFAULT_KEY_PREFIX,
    required: true,
    len_min: 1,
    match: '^[^%s]+$',
    description:
      'Prefix of every revocation key and of the pub/sub channel. Must match the CLI `--key-prefix`. Lets several environments share one Redis.',
  },
  check: {
    type: 'set',
    elements: { type: 'string', one_of: [...CHECK_KINDS] },
    default: [...CHECK_KINDS],
    len_min: 1,
    required: true,
    description:
      'Which revocations to look up: `jti` (one token), `subject` (a `sub` cutoff), `consumer` (a Kong consumer cutoff; one more PDK round trip per request).',
  },
  subject_scope: {
    type: 'string',
    default: 'both',
    one_of: ['global', 'issuer', 'both'],
    required: true,
    description:
      "Which subject cutoffs apply: `global` (revoked without --issuer), `issuer` (revoked with --issuer, matched to the token's `iss`), or `both`.",
  },
  missing_jti: {
    type: 'string',
    default: 'refuse',
    one_of: ['refuse', 'allow'],
    required: true,
    description:
      'A token without `jti` while `jti` is checked: `refuse` (401 ERR_CLAIM_MISSING) or `allow` (it cannot be revoked individually).',
  },
  missing_iat: {
    type: 'string',
    default: 'refuse',
    one_of: ['refuse', 'allow'],
    required: true,
    description:
      'A token without `iat` whose subject or consumer has a cutoff: `refuse` (401 ERR_CLAIM_MISSING) or `allow` (the cutoff cannot apply).',
  },
  missing_subject: {
    type: 'string',
    default: 'refuse',
    one_of: ['refuse', 'allow'],
    required: true,
    description:
      'A request a checked kind cannot be looked up for: no `sub` (subject), no `iss` (issuer-scoped subject cutoffs), no authenticated consumer (consumer). `refuse` (401 ERR_CLAIM_MISSING) or `allow` (that revocation cannot reach it).',
  },
  require_token: {
    type: 'boolean',
    default: false,
    required: true,
    description:
      'No verified token in the request context (e.g. an anonymous consumer): `false` passes, `true` refuses with 401 ERR_SCOPE_CONTEXT_MISSING.',
  },
  on_unavailable: {
    type: 'string',
    default: 'fail_closed',
    one_of: ['fail_closed', 'fail_open'],
    required: true,
    description:
      'Redis unreachable or slower than `timeout_ms`: `fail_closed` refuses with 503 ERR_REVOCATION_UNAVAILABLE, `fail_open` lets the request through and logs.',
  },
  timeout_ms: {
    type: 'integer',
    default: 250,
    between: [10, 5000],
    required: true,
    description:
      'Upper bound on one revocation lookup, waiting for the connection included. Past it the `on_unavailable` policy decides.',
  },
  cache_ttl_ms: {
    type: 'integer',
    default: 1000,
    between: [0, 60_000],
    required: true,
    description:
      'How long a "not revoked" answer is reused in this process. Only used while the pub/sub invalidation is connected; 0 disables the cache.',
  },
  realm: {
    type: 'string',
    default: 'kong',
    required: true,
    len_min: 1,
    description: 'The `realm` of the `WWW-Authenticate: Bearer` challenge on a 401.',
  },
  log_refusals: logRefusalsField,
} as const satisfies Record<keyof Config, KongField>

export const Schema = toKongSchema(fields)

/**
 * Reads the config against `fields` (Kong sends `null` for unset fields: their defaults apply),
 * checks what Kong's field DSL cannot, and freezes the result.
 * @throws PluginError ERR_CONFIG_INVALID naming the field.
 */
export function parseConfig(raw: unknown): Config {
  const r = readRecord(raw, fields)
  return Object.freeze({
    redis: parseRedisSettings(r.raw['redis'], 'redis'),
    key_prefix: r.read('key_prefix', { pattern: 'a non-empty string without spaces' }),
    check: r.read('check', { noun: 'kind' }),
    subject_scope: r.read('subject_scope'),
    missing_jti: r.read('missing_jti'),
    missing_iat: r.read('missing_iat'),
    missing_subject: r.read('missing_subject'),
    require_token: r.read('require_token'),
    on_unavailable: r.read('on_unavailable'),
    timeout_ms: r.read('timeout_ms'),
    cache_ttl_ms: r.read('cache_ttl_ms'),
    realm: r.read('realm'),
    log_refusals: r.read('log_refusals'),
  })
}
