import { PluginError } from '../shared/errors'
import { parseLogRefusals, type RefusalLogMode } from '../shared/refusal-log'
import {
  logRefusalsField,
  recordOf,
  toKongSchema,
  type KongField,
} from '../shared/schema/kong-fields'
import { DEFAULT_SCOPE_CLAIMS } from '../shared/scopes/parse'
import { isWildcard, MATCH_MODES, type MatchMode } from '../shared/scopes/match'

/** Methods a rule may name. Kong's router accepts others, but a typo here must fail loudly. */
export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
] as const
export type HttpMethod = (typeof HTTP_METHODS)[number]

/** One rule: requests with one of `methods` need `scopes` (all or any of them). */
export interface RuleConfig {
  readonly methods: readonly HttpMethod[]
  readonly scopes: readonly string[]
  readonly match: MatchMode
  readonly log_only: boolean
}

/** What methods no rule names need. `scopes: null` means there is no default rule. */
export interface DefaultRuleConfig {
  readonly scopes: readonly string[] | null
  readonly match: MatchMode
  readonly log_only: boolean
}

/** Rules for one route, for a plugin configured globally or on a service. */
export interface RouteRulesConfig {
  readonly route: string
  readonly rules: readonly RuleConfig[]
}

/**
 * scope-acl's config, keys exactly as written in kong.yml.
 *
 * Which rules apply: the `routes` entry naming the request's route (by name or id) if there is
 * one, else the top-level `rules`. Within those, the rule listing the request method; for a
 * method no rule lists, `default_rule` if set, else the request passes when
 * `allow_unlisted_methods` is true and is refused (403) otherwise.
 */
export interface Config {
  readonly rules: readonly RuleConfig[]
  readonly default_rule: DefaultRuleConfig | null
  readonly allow_unlisted_methods: boolean
  readonly routes: readonly RouteRulesConfig[]
  readonly scope_claims: readonly string[]
  readonly wildcard_suffix: boolean
  readonly publish_groups: boolean
  readonly realm: string
  readonly log_refusals: RefusalLogMode
}

const matchField = {
  type: 'string',
  required: true,
  default: 'all',
  one_of: MATCH_MODES,
  description: 'all: the token must carry every scope listed; any: one of them is enough.',
} satisfies KongField

const logOnlyField = {
  type: 'boolean',
  required: true,
  default: false,
  description:
    'Log-only mode: a request this rule would refuse (401 or 403) passes, and the refusal is written to the plugin server log. For rolling a policy out safely.',
} satisfies KongField

const ruleFields = {
  methods: {
    type: 'set',
    required: true,
    len_min: 1,
    elements: { type: 'string', one_of: HTTP_METHODS },
    description:
      'HTTP methods (upper case) this rule applies to. A method may appear in only one rule of a list. HEAD is not implied by GET: list it.',
  },
  scopes: {
    type: 'set',
    required: true,
    len_min: 1,
    elements: { type: 'string', len_min: 1 },
    description:
      'Scopes the token must carry, compared as exact tokens (admin never matches superadmin). A trailing * (orders:*) is a prefix only when wildcard_suffix is true.',
  },
  match: matchField,
  log_only: logOnlyField,
} satisfies Record<keyof RuleConfig, KongField>

const rulesField = (description: string) =>
  ({
    type: 'array',
    default: [],
    required: true,
    elements: { type: 'record', fields: recordOf(ruleFields) },
    description,
  }) satisfies KongField

export const fields = {
  rules: rulesField(
    'Scope rules by HTTP method, e.g. [{methods: [GET, HEAD], scopes: [orders:read]}]. They apply to every request whose route has no entry in routes.',
  ),
  default_rule: {
    type: 'record',
    fields: recordOf({
      scopes: {
        type: 'set',
        len_min: 1,
        elements: { type: 'string', len_min: 1 },
        description: 'Scopes needed for a method no rule lists. Leave unset for no default rule.',
      },
      match: matchField,
      log_only: logOnlyField,
    } satisfies Record<keyof DefaultRuleConfig, KongField>),
    description:
      'Rule for methods that no rule lists. When unset, such methods are refused (403) unless allow_unlisted_methods is true.',
  },
  allow_unlisted_methods: {
    type: 'boolean',
    required: true,
    default: false,
    description:
      'Let requests whose method no rule lists pass without any scope check. Default false (deny). Cannot be combined with default_rule.',
  },
  routes: {
    type: 'array',
    default: [],
    required: true,
    elements: {
      type: 'record',
      fields: recordOf({
        route: {
          type: 'string',
          required: true,
          len_min: 1,
          description: 'Name or id of the Kong route these rules apply to.',
        },
        rules: rulesField(
          'Scope rules by HTTP method for this route; they replace the top-level rules for it.',
        ),
      } satisfies Record<keyof RouteRulesConfig, KongField>),
    },
    description:
      'Per-route rules, for a plugin configured globally or on a service. Costs one more Kong round trip per request (kong.router.get_route) when not empty.',
  },
  scope_claims: {
    type: 'array',
    required: true,
    default: DEFAULT_SCOPE_CLAIMS,
    len_min: 1,
    elements: { type: 'string', len_min: 1 },
    description:
      'Claims holding the granted scopes: a space-delimited string or an array of strings. Dotted paths reach nested claims (realm_access.roles).',
  },
  wildcard_suffix: {
    type: 'boolean',
    required: true,
    default: false,
    description:
      'When true, a required scope ending in * (orders:*) matches any granted scope with that prefix (orders:read). Granted scopes are never patterns.',
  },
  publish_groups: {
    type: 'boolean',
    required: true,
    default: false,
    description:
      "Publish the token's scopes as Kong authenticated groups (kong.ctx.shared.authenticated_groups) for Kong's acl plugin. Costs one more round trip.",
  },
  realm: {
    type: 'string',
    required: true,
    default: 'kong',
    description: 'Realm of the WWW-Authenticate challenge sent with a 401 or 403.',
  },
  log_refusals: logRefusalsField,
} satisfies Record<keyof Config, KongField>

export const Schema = toKongSchema(fields)

type Raw = Record<string, unknown>

function invalid(field: string, why: string): PluginError {
  return new PluginError('ERR_CONFIG_INVALID', `${field}: ${why}`)
}

function isRecord(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function absent(v: unknown): v is null | undefined {
  return v === undefined || v === null
}

function bool(raw: Raw, field: string, path: string, fallback: boolean): boolean {
  const v = raw[field]
  if (absent(v)) return fallback
  if (typeof v !== 'boolean') throw invalid(path + field, 'must be a boolean')
  return v
}

function text(raw: Raw, field: string, path: string, fallback: string): string {
  const v = raw[field]
  if (absent(v)) return fallback
  if (typeof v !== 'string' || v === '') throw invalid(path + field, 'must be a non-empty string')
  return v
}

function strings(raw: Raw, field: string, path: string): readonly string[] | undefined {
  const v = raw[field]
  if (absent(v)) return undefined
  if (!Array.isArray(v) || !v.every((e) => typeof e === 'string' && e !== '')) {
    throw invalid(path + field, 'must be an array of non-empty strings')
  }
  return Object.freeze([...new Set(v as string[])])
}

function matchMode(raw: Raw, path: string): MatchMode {
  const v = raw.match
  if (absent(v)) return 'all'
  if (v !== 'all' && v !== 'any') throw invalid(`${path}match`, 'must be "all" or "any"')
  return v
}

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

function requiredScopes(raw: Raw, path: string, wildcard: boolean): readonly string[] | undefined {
  const scopes = strings(raw, 'scopes', path)
  if (scopes === undefined) return undefined
  if (scopes.length === 0) throw invalid(`${path}scopes`, 'must list at least one scope')
  scopes.forEach((scope, i) => {
    const at = `${path}scopes[${i}]`
    if (!SCOPE_TOKEN.test(scope))
      throw invalid(at, `"${scope}" is not a scope token (RFC 6749 §3.3)`)
    const star = scope.indexOf('*')
    if (star === -1) return
    if (!wildcard) {
      // An operator writing orders:* means a prefix; without wildcard_suffix it would only
      // match a token carrying the literal string, which is never what was meant.
      throw invalid(at, `"${scope}" contains * but wildcard_suffix is false`)
    }
    if (star !== scope.length - 1)
      throw invalid(at, `"${scope}": * is only allowed as the last character`)
    if (!isWildcard(scope))
      throw invalid(at, 'a bare * would accept any scope; name a prefix such as orders:*')
  })
  return scopes
}

function parseRules(
  raw: Raw,
  field: string,
  path: string,
  wildcard: boolean,
): readonly RuleConfig[] {
  const v = raw[field]
  if (absent(v)) return Object.freeze([])
  if (!Array.isArray(v)) throw invalid(path + field, 'must be an array of rules')
  const seen = new Map<string, number>()
  return Object.freeze(
    v.map((rule, i) => {
      const at = `${path}${field}[${i}].`
      if (!isRecord(rule)) throw invalid(`${path}${field}[${i}]`, 'must be a record')
      const methods = (strings(rule, 'methods', at) ?? []).map((m) => m.toUpperCase())
      if (methods.length === 0) throw invalid(`${at}methods`, 'must list at least one method')
      for (const m of methods) {
        if (!(HTTP_METHODS as readonly string[]).includes(m))
          throw invalid(`${at}methods`, `unknown method ${m}`)
        const earlier = seen.get(m)
        if (earlier !== undefined) {
          throw invalid(`${at}methods`, `${m} is already listed by ${path}${field}[${earlier}]`)
        }
        seen.set(m, i)
      }
      const scopes = requiredScopes(rule, at, wildcard)
      if (scopes === undefined) throw invalid(`${at}scopes`, 'must list at least one scope')
      return Object.freeze({
        methods: Object.freeze([...new Set(methods)]) as readonly HttpMethod[],
        scopes,
        match: matchMode(rule, at),
        log_only: bool(rule, 'log_only', at, false),
      })
    }),
  )
}

function parseDefaultRule(raw: Raw, wildcard: boolean): DefaultRuleConfig | null {
  const v = raw.default_rule
  if (absent(v)) return null
  if (!isRecord(v)) throw invalid('default_rule', 'must be a record')
  // Kong fills a record's defaults (match, log_only) but leaves scopes null when unset.
  const scopes = requiredScopes(v, 'default_rule.', wildcard)
  if (scopes === undefined) return null
  return Object.freeze({
    scopes,
    match: matchMode(v, 'default_rule.'),
    log_only: bool(v, 'log_only', 'default_rule.', false),
  })
}

function parseScopeClaims(raw: Raw): readonly string[] {
  const claims = strings(raw, 'scope_claims', '') ?? DEFAULT_SCOPE_CLAIMS
  if (claims.length === 0) throw invalid('scope_claims', 'must name at least one claim')
  claims.forEach((claim, i) => {
    if (claim.split('.').some((part) => part === '')) {
      throw invalid(`scope_claims[${i}]`, `"${claim}" has an empty path segment`)
    }
  })
  return claims
}

/**
 * Checks the config Kong sends at instance start (defaults already filled by Kong) and the
 * cross-field rules Kong's schema cannot express. Returns a frozen config.
 *
 * @throws PluginError ERR_CONFIG_INVALID naming the field at fault.
 */
export function parseConfig(raw: unknown): Config {
  if (!isRecord(raw)) throw invalid('config', 'must be a record')
  const wildcard_suffix = bool(raw, 'wildcard_suffix', '', false)
  const rules = parseRules(raw, 'rules', '', wildcard_suffix)
  const default_rule = parseDefaultRule(raw, wildcard_suffix)
  const allow_unlisted_methods = bool(raw, 'allow_unlisted_methods', '', false)
  if (default_rule !== null && allow_unlisted_methods) {
    throw invalid(
      'allow_unlisted_methods',
      'cannot be true when default_rule is set: choose one for unlisted methods',
    )
  }

  const routesRaw = raw.routes
  if (!absent(routesRaw) && !Array.isArray(routesRaw)) throw invalid('routes', 'must be an array')
  const seenRoutes = new Map<string, number>()
  const routes = Object.freeze(
    (routesRaw ?? []).map((entry: unknown, i: number) => {
      const at = `routes[${i}].`
      if (!isRecord(entry)) throw invalid(`routes[${i}]`, 'must be a record')
      const route = text(entry, 'route', at, '')
      if (route === '') throw invalid(`${at}route`, 'is required (route name or id)')
      const earlier = seenRoutes.get(route)
      if (earlier !== undefined)
        throw invalid(`${at}route`, `${route} already has an entry at routes[${earlier}]`)
      seenRoutes.set(route, i)
      return Object.freeze({ route, rules: parseRules(entry, 'rules', at, wildcard_suffix) })
    }),
  )
  if (routes.length > 0 && typeof raw.route_id === 'string') {
    // Kong adds route_id to the config of a plugin bound to one route: entries for other routes
    // could never match, and the one for this route belongs in the top-level rules.
    throw invalid(
      'routes',
      'per-route entries need a plugin configured globally or on a service, not on a route',
    )
  }

  if (
    rules.length === 0 &&
    routes.length === 0 &&
    default_rule === null &&
    !allow_unlisted_methods
  ) {
    throw invalid(
      'rules',
      'no rule, no default_rule and unlisted methods denied: every request would be refused',
    )
  }

  return Object.freeze({
    rules,
    default_rule,
    allow_unlisted_methods,
    routes,
    scope_claims: parseScopeClaims(raw),
    wildcard_suffix,
    publish_groups: bool(raw, 'publish_groups', '', false),
    realm: text(raw, 'realm', '', 'kong'),
    log_refusals: parseLogRefusals(raw),
  })
}
