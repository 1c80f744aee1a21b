import { createHash } from 'node:crypto'
import { PluginError } from '../shared/errors'
import type { RefusalLogMode } from '../shared/refusal-log'
import {
  isUnset,
  logRefusalsField,
  recordOf,
  toKongSchema,
  withoutDefaults,
  type KongField,
} from '../shared/schema/kong-fields'
import { invalid, isRecord, readRecord, type Raw, type RecordReader } from '../shared/schema/read'
import { DEFAULT_SCOPE_CLAIMS } from '../shared/scopes/parse'
import { RESERVED_HEADER } from '../shared/reserved-headers'
import { readSecret } from '../shared/schema/secret'
import { assertionField, parseAssertion, type AssertionConfig } from './assertion'
import type { KeySource } from '../shared/token/keys'
import {
  fields as revocationPluginFields,
  parseConfig as parseRevocationConfig,
  type Config as RevocationConfig,
} from '../jwt-revocation/schema'
import {
  fields as scopePluginFields,
  parseConfig as parseScopeConfig,
  type Config as ScopeConfig,
} from '../scope-acl/schema'

/**
 * The in-event checks (one plugin-server event decides the whole request): scope-acl's rules
 * and jwt-revocation's lookups, nested under `scopes` and `revocation`. The fields are those of
 * the separate plugins, less what consumer-jwt already owns: the scope claims, the realm and
 * the refusal log are consumer-jwt's own, and a token is always there (require_token is moot).
 * They carry no defaults in the schema (withoutDefaults), so Kong sends `{}` for an unset record
 * and a check is on exactly when something was written in it; the plugins' parsers apply the
 * same defaults as the separate plugins.
 */
const {
  scope_claims: _scopeClaims,
  realm: _scopeRealm,
  log_refusals: _scopeLog,
  ...scopeFields
} = withoutDefaults(scopePluginFields)
const {
  realm: _revocationRealm,
  require_token: _requireToken,
  log_refusals: _revocationLog,
  ...separateRevocationFields
} = withoutDefaults(revocationPluginFields)
/** The consumer is known in the same event: looking its cutoff up costs no PDK call here. */
const revocationFields = {
  ...separateRevocationFields,
  check: {
    ...separateRevocationFields.check,
    description:
      'Which revocations to look up: `jti` (one token), `subject` (a `sub` cutoff), `consumer` (a Kong consumer cutoff; the consumer is already known here, so no PDK call).',
  },
}

export const ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const
export type Algorithm = (typeof ALGORITHMS)[number]

const HMAC: ReadonlySet<string> = new Set(['HS256', 'HS384', 'HS512'])
export const isHmac = (alg: string): boolean => HMAC.has(alg)

const credentialFields = {
  key: {
    type: 'string',
    required: true,
    len_min: 1,
    description:
      'Value of the key claim (see key_claim_name, e.g. the token issuer) that selects this credential. Unique across credentials; sent upstream as X-Credential-Identifier.',
  },
  consumer: {
    type: 'string',
    required: true,
    len_min: 1,
    description:
      'The Kong consumer this credential authenticates: its username or id, as declared in kong.yml.',
  },
  issuer: {
    type: 'string',
    description: 'When set, the token iss claim must equal this value.',
  },
  algorithms: {
    type: 'array',
    required: true,
    len_min: 1,
    elements: { type: 'string', one_of: ALGORITHMS },
    description:
      'Signature algorithms accepted for this credential. The token alg header must be one of them; none is never accepted. HS* needs a secret, all others public keys.',
  },
  secret: {
    type: 'string',
    referenceable: true,
    encrypted: true,
    description:
      'Shared secret for HS* algorithms. Prefer a vault reference such as {vault://env/partner-secret} or secret_env over plaintext.',
  },
  secret_env: {
    type: 'string',
    description:
      'Name of an environment variable of the plugin server process holding the HS* secret. nginx passes only declared variables on: set nginx_main_env = NAME in kong.conf (KONG_NGINX_MAIN_ENV).',
  },
  secret_is_base64: {
    type: 'boolean',
    default: false,
    required: true,
    description: 'Whether the secret is base64 encoded (standard or URL-safe alphabet).',
  },
  public_key: {
    type: 'string',
    description: 'PEM public key (SPKI, "BEGIN PUBLIC KEY") for RS*, PS*, ES* or EdDSA tokens.',
  },
  jwks: {
    type: 'string',
    description:
      'Inline JSON Web Key Set ({"keys": [...]}) holding the public keys of this credential.',
  },
  jwks_uri: {
    type: 'string',
    match: '^https?://',
    description:
      'URL of a JSON Web Key Set, https unless jwks_allow_http is set. Fetched on first use and cached; an unknown kid triggers at most one refetch per cooldown; cached keys stay usable while the endpoint is down.',
  },
  jwks_allow_http: {
    type: 'boolean',
    default: false,
    required: true,
    description:
      'Allow a plain http jwks_uri, e.g. an identity provider on a private network. Whoever can alter that traffic can inject keys, so leave it off otherwise.',
  },
  audiences: {
    type: 'array',
    elements: { type: 'string' },
    description: 'When set, the token aud claim must contain at least one of these values.',
  },
  scope_ceiling: {
    type: 'array',
    elements: { type: 'string' },
    description:
      'Scopes this consumer may ever hold. A token granting any scope outside this list is refused (ERR_SCOPE_CEILING_EXCEEDED). Unset: no ceiling.',
  },
} as const satisfies Record<string, KongField>

const claimHeaderFields = {
  claim: {
    type: 'string',
    required: true,
    description: 'Claim to copy (dotted path for nested claims).',
  },
  header: {
    type: 'string',
    required: true,
    match: '^[%w%-]+$',
    description: 'Upstream request header that receives the claim value.',
  },
} as const satisfies Record<keyof Config['claims_to_headers'][number], KongField>

export const fields = {
  credentials: {
    type: 'array',
    required: true,
    len_min: 1,
    elements: { type: 'record', fields: recordOf(credentialFields) },
    description:
      'Trusted key sources, one per credential, each bound to a Kong consumer and selected by the key claim of the token.',
  },
  key_claim_name: {
    type: 'string',
    default: 'iss',
    required: true,
    description:
      'Claim whose value selects the credential (matched against credentials[].key). Looked up in the payload first, then in the JOSE header (use kid to select by key id).',
  },
  header_names: {
    type: 'array',
    elements: { type: 'string' },
    default: ['authorization'],
    required: true,
    description:
      'Request headers searched for a token. Authorization must use the Bearer scheme; other headers may carry the bare token or Bearer <token>.',
  },
  cookie_names: {
    type: 'array',
    elements: { type: 'string' },
    default: [],
    required: true,
    description: 'Cookies searched for a token, e.g. an HTTPS-only session cookie.',
  },
  uri_param_names: {
    type: 'array',
    elements: { type: 'string' },
    default: [],
    required: true,
    description:
      'Query parameters searched for a token. Empty by default: tokens in URLs end up in logs (RFC 6750 §2.3). Each name costs no extra call when unset, one call when set.',
  },
  leeway: {
    type: 'integer',
    default: 30,
    required: true,
    between: [0, 600],
    description: 'Clock skew tolerated on exp and nbf, in seconds.',
  },
  maximum_lifetime: {
    type: 'integer',
    default: 0,
    required: true,
    between: [0, 31536000],
    description:
      'Largest accepted exp - iat, in seconds; tokens without iat are then refused. 0 disables the cap.',
  },
  required_claims: {
    type: 'array',
    elements: { type: 'string' },
    default: ['exp'],
    required: true,
    description:
      'Claims every token must carry. exp by default: a token without exp never expires.',
  },
  typ: {
    type: 'string',
    description:
      'When set, the token typ header must match, e.g. at+jwt for RFC 9068 access tokens.',
  },
  scope_claims: {
    type: 'array',
    elements: { type: 'string' },
    default: [...DEFAULT_SCOPE_CLAIMS],
    required: true,
    description:
      'Claims read as scopes for the scope ceiling: space-delimited strings or arrays; dotted paths reach nested claims.',
  },
  run_on_preflight: {
    type: 'boolean',
    default: true,
    required: true,
    description:
      'Whether OPTIONS preflight requests are authenticated too. false costs one call per request.',
  },
  anonymous: {
    type: 'string',
    description:
      'Username or id of a consumer to authenticate when authentication fails (logical OR with other auth plugins). Unset: failures are refused with 401.',
  },
  claims_to_headers: {
    type: 'array',
    default: [],
    required: true,
    elements: { type: 'record', fields: recordOf(claimHeaderFields) },
    description:
      'Claims sent upstream as headers. Any copy of these headers sent by the client is removed, also when the claim is absent.',
  },
  hide_credentials: {
    type: 'boolean',
    default: false,
    required: true,
    description:
      'Remove the token (header, cookie or query parameter) from the request sent upstream.',
  },
  realm: {
    type: 'string',
    default: 'kong',
    required: true,
    description: 'Realm of the WWW-Authenticate challenge.',
  },
  scopes: {
    type: 'record',
    fields: recordOf(scopeFields),
    description:
      'Scope rules checked in the same event, after verification: the fields and defaults of scope-acl, scopes read from scope_claims. On as soon as anything is set in it; unset: no scope check. One call (the method) when the rules differ by method, one more (the route) with routes entries.',
  },
  revocation: {
    type: 'record',
    fields: recordOf(revocationFields),
    description:
      'Revocation lookups in the same event, after verification: the fields and defaults of jwt-revocation (check: jti, subject, consumer). On as soon as anything is set in it, and then redis must name a server. No PDK call; Redis is asked at most once per request.',
  },
  log_refusals: logRefusalsField,
  share_token: {
    type: 'boolean',
    default: true,
    required: true,
    description:
      'Share the verified token in kong.ctx.shared.authenticated_jwt_token (where Kong jwt puts it) for separate scope-acl or jwt-revocation plugins. One call; set false when scopes and revocation run here.',
  },
  jwks_timeout_ms: {
    type: 'integer',
    default: 2000,
    required: true,
    between: [100, 5000],
    description:
      'Longest a request waits for a JWKS fetch, in milliseconds (one fetch per request at most).',
  },
  jwks_cache_ttl: {
    type: 'integer',
    default: 300,
    required: true,
    between: [1, 86400],
    description:
      'Seconds after which a JWKS is refreshed in the background; old keys serve meanwhile.',
  },
  jwks_cooldown: {
    type: 'integer',
    default: 30,
    required: true,
    between: [0, 3600],
    description: 'Least number of seconds between two refetches triggered by an unknown kid.',
  },
  token_cache_size: {
    type: 'integer',
    default: 10000,
    required: true,
    between: [0, 1000000],
    description:
      'Verified tokens remembered per plugin instance (never past their exp). 0 disables the cache.',
  },
  consumer_cache_ttl: {
    type: 'integer',
    default: 60,
    required: true,
    between: [0, 86400],
    description: 'Seconds a consumer loaded from Kong is remembered by the plugin process.',
  },
  assertion: assertionField,
} as const satisfies Record<keyof Config, KongField>

export const Schema = toKongSchema(fields)

export interface Credential {
  /** Stable id derived from the key, given to Kong as the credential id. */
  readonly id: string
  readonly key: string
  readonly consumer: string
  readonly issuer: string | undefined
  readonly algorithms: readonly Algorithm[]
  readonly keySource: KeySource
  readonly audiences: readonly string[] | undefined
  readonly scopeCeiling: ReadonlySet<string> | undefined
}

export interface Config {
  readonly credentials: ReadonlyMap<string, Credential>
  readonly key_claim_name: string
  readonly header_names: readonly string[]
  readonly cookie_names: readonly string[]
  readonly uri_param_names: readonly string[]
  readonly leeway: number
  readonly maximum_lifetime: number
  readonly required_claims: readonly string[]
  readonly typ: string | undefined
  readonly scope_claims: readonly string[]
  readonly run_on_preflight: boolean
  readonly anonymous: string | undefined
  readonly claims_to_headers: readonly { readonly claim: string; readonly header: string }[]
  readonly hide_credentials: boolean
  readonly realm: string
  /** scope-acl's rules, with consumer-jwt's scope_claims and realm; undefined: no scope check. */
  readonly scopes: ScopeConfig | undefined
  /** jwt-revocation's settings, with consumer-jwt's realm; undefined: no revocation check. */
  readonly revocation: RevocationConfig | undefined
  readonly share_token: boolean
  readonly log_refusals: RefusalLogMode
  readonly jwks_timeout_ms: number
  readonly jwks_cache_ttl: number
  readonly jwks_cooldown: number
  readonly token_cache_size: number
  readonly consumer_cache_ttl: number
  /** The signed gateway assertion sent upstream (assertion.ts); undefined: none. */
  readonly assertion: AssertionConfig | undefined
}

function decodeSecret(
  secret: string,
  base64: boolean,
  c: RecordReader<typeof credentialFields>,
): Uint8Array {
  if (!base64) return new TextEncoder().encode(secret)
  const normalized = secret.trim().replace(/-/g, '+').replace(/_/g, '/')
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(normalized)) throw c.invalid('secret', 'is not valid base64')
  return new Uint8Array(Buffer.from(normalized, 'base64'))
}

/** Deterministic UUID-shaped id, so every plugin process gives Kong the same credential id. */
function credentialId(key: string): string {
  const h = createHash('sha256').update(`consumer-jwt:${key}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

function parseCredential(
  c: RecordReader<typeof credentialFields>,
  env: NodeJS.ProcessEnv,
): Credential {
  const key = c.read('key')
  const consumer = c.read('consumer')
  const algorithms = c.read('algorithms', { noun: 'algorithm' })
  const hmac = algorithms.filter(isHmac)
  if (hmac.length > 0 && hmac.length !== algorithms.length) {
    // One credential never mixes a shared secret with public keys: that is how a public key
    // ends up used as an HMAC secret (algorithm confusion).
    throw c.invalid('algorithms', 'must not mix HS* with public-key algorithms')
  }

  const secret = c.read('secret')
  const secretEnv = c.read('secret_env')
  const publicKey = c.read('public_key')
  const jwks = c.read('jwks')
  const jwksUri = c.read('jwks_uri', { pattern: 'an http(s) URL' })
  const given = [
    ['secret', secret],
    ['secret_env', secretEnv],
    ['public_key', publicKey],
    ['jwks', jwks],
    ['jwks_uri', jwksUri],
  ].filter(([, v]) => v !== undefined)
  if (given.length !== 1) {
    throw c.invalid(
      'secret',
      `exactly one of secret, secret_env, public_key, jwks, jwks_uri must be set (got ${given.length === 0 ? 'none' : given.map(([n]) => n).join(', ')})`,
    )
  }

  let keySource: KeySource
  const base64 = c.read('secret_is_base64')
  if (secret !== undefined || secretEnv !== undefined) {
    if (hmac.length === 0) throw c.invalid('algorithms', 'a shared secret needs HS* algorithms')
    const bytes = readSecret(c, secret, secretEnv, env, (text) => decodeSecret(text, base64, c))
    keySource = { kind: 'secret', secret: bytes }
  } else {
    if (hmac.length > 0) throw c.invalid('algorithms', 'HS* algorithms need a secret or secret_env')
    if (publicKey !== undefined) {
      if (!/-----BEGIN PUBLIC KEY-----/.test(publicKey)) {
        throw c.invalid('public_key', 'must be a PEM public key (BEGIN PUBLIC KEY)')
      }
      keySource = { kind: 'pem', pem: publicKey }
    } else if (jwks !== undefined) {
      let parsed: unknown
      try {
        parsed = JSON.parse(jwks)
      } catch {
        throw c.invalid('jwks', 'is not valid JSON')
      }
      if (!isRecord(parsed) || !Array.isArray(parsed.keys) || !parsed.keys.every(isRecord)) {
        throw c.invalid('jwks', 'must be a JSON Web Key Set ({"keys": [...]})')
      }
      if (parsed.keys.some((k) => 'd' in k || 'k' in k)) {
        throw c.invalid('jwks', 'must hold public keys only')
      }
      keySource = { kind: 'jwks', jwks: { keys: parsed.keys } }
    } else {
      // given.length === 1: jwks_uri is the one, and the reader checked its pattern.
      const uri = jwksUri as string
      if (uri.startsWith('http://') && !c.read('jwks_allow_http')) {
        throw c.invalid(
          'jwks_uri',
          'must use https (set jwks_allow_http for an identity provider on a private network)',
        )
      }
      keySource = { kind: 'jwks_uri', uri }
    }
  }

  const ceiling = c.read('scope_ceiling')
  return Object.freeze({
    id: credentialId(key),
    key,
    consumer,
    issuer: c.read('issuer'),
    algorithms,
    keySource,
    audiences: c.read('audiences'),
    scopeCeiling: ceiling === undefined ? undefined : new Set(ceiling),
  })
}

/**
 * A nested record parsed by another plugin's parser, its errors prefixed with the field; off
 * (undefined) when nothing was written in it (Kong sends `{}` for an unset record, see above).
 */
function nested<T>(raw: Raw, field: string, parse: (value: Raw) => T): T | undefined {
  const v = raw[field]
  if (isUnset(v)) return undefined
  if (!isRecord(v)) throw invalid(field, 'must be a record')
  try {
    return parse(v)
  } catch (error) {
    if (error instanceof PluginError && error.code === 'ERR_CONFIG_INVALID' && error.detail) {
      if (error.detail.startsWith(`${field}:`) || error.detail.startsWith(`${field}.`)) throw error
      throw new PluginError('ERR_CONFIG_INVALID', `${field}.${error.detail}`, { cause: error })
    }
    throw error
  }
}

/** Whether Redis settings name a server: a URL, Sentinels or Cluster nodes. */
function namesRedis(redis: unknown): boolean {
  if (!isRecord(redis)) return false
  const nonEmpty = (v: unknown) => Array.isArray(v) && v.length > 0
  return (
    (typeof redis.url === 'string' && redis.url !== '') ||
    nonEmpty(redis.sentinels) ||
    nonEmpty(redis.cluster_nodes)
  )
}

/**
 * Checks the config Kong sends at instance start (defaults already filled by Kong) and the
 * cross-field rules Kong's schema cannot express. Throws ERR_CONFIG_INVALID naming the field.
 */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  const r = readRecord(raw, fields)
  const credentials = new Map<string, Credential>()
  r.records('credentials', credentialFields, { noun: 'credential' }).forEach((c, i) => {
    const credential = parseCredential(c, env)
    if (credentials.has(credential.key))
      throw invalid(`credentials[${i}].key`, `duplicate key ${credential.key}`)
    credentials.set(credential.key, credential)
  })

  const header_names = Object.freeze(r.read('header_names').map((h) => h.toLowerCase()))
  const cookie_names = r.read('cookie_names')
  const uri_param_names = r.read('uri_param_names')
  if (header_names.length + cookie_names.length + uri_param_names.length === 0) {
    throw invalid(
      'header_names',
      'at least one of header_names, cookie_names, uri_param_names must be set',
    )
  }

  const maximum_lifetime = r.read('maximum_lifetime')
  const required_claims = r.read('required_claims')

  const mappings = r.records('claims_to_headers', claimHeaderFields).map((m) => {
    const claim = m.read('claim')
    if (claim === '') throw m.invalid('claim', 'is required')
    const header = m.read('header', { pattern: 'a header name (letters, digits, -)' })
    if (RESERVED_HEADER.test(header)) {
      throw m.invalid(
        'header',
        `${header} is reserved (identity, credentials, hop-by-hop or routing header)`,
      )
    }
    return Object.freeze({ claim, header })
  })

  const anonymous = r.read('anonymous')
  const realm = r.read('realm')
  const scope_claims = r.read('scope_claims')
  const scopes = nested(r.raw, 'scopes', (s) =>
    // route_id: Kong adds it to the config of a plugin bound to a route; scope-acl's parse
    // refuses per-route entries there, since they could never match.
    parseScopeConfig({ ...s, scope_claims, realm, route_id: r.raw['route_id'] }),
  )
  const revocation = nested(r.raw, 'revocation', (v) => {
    // No default server here: revocation checked against whatever listens on 127.0.0.1 (or
    // an unresolved vault reference, which Kong turns into "") would be no check at all.
    if (!namesRedis(v['redis'])) {
      throw invalid(
        'revocation.redis',
        'must name the Redis to ask (url, sentinels or cluster_nodes)',
      )
    }
    return parseRevocationConfig({ ...v, realm, require_token: false })
  })
  return Object.freeze({
    credentials,
    key_claim_name: r.read('key_claim_name'),
    header_names,
    cookie_names,
    uri_param_names,
    leeway: r.read('leeway'),
    maximum_lifetime,
    required_claims:
      maximum_lifetime > 0 && !required_claims.includes('iat')
        ? [...required_claims, 'iat']
        : required_claims,
    typ: r.read('typ'),
    scope_claims,
    run_on_preflight: r.read('run_on_preflight'),
    anonymous: anonymous === '' ? undefined : anonymous,
    claims_to_headers: Object.freeze(mappings),
    hide_credentials: r.read('hide_credentials'),
    realm,
    scopes,
    revocation,
    share_token: r.read('share_token'),
    log_refusals: r.read('log_refusals'),
    jwks_timeout_ms: r.read('jwks_timeout_ms'),
    jwks_cache_ttl: r.read('jwks_cache_ttl'),
    jwks_cooldown: r.read('jwks_cooldown'),
    token_cache_size: r.read('token_cache_size'),
    consumer_cache_ttl: r.read('consumer_cache_ttl'),
    assertion: parseAssertion(r.raw, env),
  })
}
