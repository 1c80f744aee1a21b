import type { RefusalLogMode } from '../shared/refusal-log'
import {
  logRefusalsField,
  recordOf,
  toKongSchema,
  type KongField,
} from '../shared/schema/kong-fields'
import { readRecord, type RecordReader } from '../shared/schema/read'
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

const defaultRuleFields = {
  scopes: {
    type: 'set',
    len_min: 1,
    elements: { type: 'string', len_min: 1 },
    description: 'Scopes needed for a method no rule lists. Leave unset for no default rule.',
  },
  match: matchField,
  log_only: logOnlyField,
} as const satisfies Record<keyof DefaultRuleConfig, KongField>

const rulesField = (description: string) =>
  ({
    type: 'array',
    default: [],
    required: true,
    elements: { type: 'record', fields: recordOf(ruleFields) },
    description,
  }) satisfies KongField

const routeFields = {
  route: {
    type: 'string',
    required: true,
    len_min: 1,
    description: 'Name or id of the Kong route these rules apply to.',
  },
  rules: rulesField(
    'Scope rules by HTTP method for this route; they replace the top-level rules for it.',
  ),
} as const satisfies Record<keyof RouteRulesConfig, KongField>

export const fields = {
  rules: rulesField(
    'Scope rules by HTTP method, e.g. [{methods: [GET, HEAD], scopes: [orders:read]}]. They apply to every request whose route has no entry in routes.',
  ),
  default_rule: {
    type: 'record',
    fields: recordOf(defaultRuleFields),
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
    elements: { type: 'record', fields: recordOf(routeFields) },
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

/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

/** Checks each required scope (the field's bounds are checked by the reader). */
function checkScopes(
  scopes: readonly string[],
  at: string,
  wildcard: boolean,
  reader: RecordReader<typeof ruleFields | typeof defaultRuleFields>,
): readonly string[] {
  scopes.forEach((scope, i) => {
    const bad = (why: string) => reader.invalid(`${at}[${i}]`, why)
    if (!SCOPE_TOKEN.test(scope)) throw bad(`"${scope}" is not a scope token (RFC 6749 §3.3)`)
    const star = scope.indexOf('*')
    if (star === -1) return
    if (!wildcard) {
      // An operator writing orders:* means a prefix; without wildcard_suffix it would only
      // match a token carrying the literal string, which is never what was meant.
      throw bad(`"${scope}" contains * but wildcard_suffix is false`)
    }
    if (star !== scope.length - 1) throw bad(`"${scope}": * is only allowed as the last character`)
    if (!isWildcard(scope))
      throw bad('a bare * would accept any scope; name a prefix such as orders:*')
  })
  return scopes
}

function parseRules(
  parent: RecordReader<typeof fields | typeof routeFields>,
  wildcard: boolean,
): readonly RuleConfig[] {
  const seen = new Map<string, number>()
  return Object.freeze(
    parent.records('rules', ruleFields).map((rule, i) => {
      const methods = rule.read('methods', {
        noun: 'method',
        unknown: (m) => `unknown method ${m}`,
      })
      for (const m of methods) {
        const earlier = seen.get(m)
        if (earlier !== undefined) {
          throw rule.invalid(
            'methods',
            `${m} is already listed by ${parent.path('rules')}[${earlier}]`,
          )
        }
        seen.set(m, i)
      }
      return Object.freeze({
        methods,
        scopes: checkScopes(rule.read('scopes', { noun: 'scope' }), 'scopes', wildcard, rule),
        match: rule.read('match'),
        log_only: rule.read('log_only'),
      })
    }),
  )
}

function parseDefaultRule(
  config: RecordReader<typeof fields>,
  wildcard: boolean,
): DefaultRuleConfig | null {
  const rule = config.record('default_rule', defaultRuleFields)
  // Kong fills a record's defaults (match, log_only) but leaves scopes null when unset.
  const scopes = rule?.read('scopes', { noun: 'scope' })
  if (rule === undefined || scopes === undefined) return null
  return Object.freeze({
    scopes: checkScopes(scopes, 'scopes', wildcard, rule),
    match: rule.read('match'),
    log_only: rule.read('log_only'),
  })
}

function parseScopeClaims(config: RecordReader<typeof fields>): readonly string[] {
  const claims = Object.freeze([...new Set(config.read('scope_claims', { noun: 'claim' }))])
  claims.forEach((claim, i) => {
    if (claim.split('.').some((part) => part === '')) {
      throw config.invalid(`scope_claims[${i}]`, `"${claim}" has an empty path segment`)
    }
  })
  return claims
}

/**
 * Reads the config Kong sends at instance start against `fields` (defaults, types and bounds
 * from there) and checks the cross-field rules Kong's schema cannot express. Returns a frozen
 * config.
 *
 * @throws PluginError ERR_CONFIG_INVALID naming the field at fault.
 */
export function parseConfig(raw: unknown): Config {
  const r = readRecord(raw, fields)
  const wildcard_suffix = r.read('wildcard_suffix')
  const rules = parseRules(r, wildcard_suffix)
  const default_rule = parseDefaultRule(r, wildcard_suffix)
  const allow_unlisted_methods = r.read('allow_unlisted_methods')
  if (default_rule !== null && allow_unlisted_methods) {
    throw r.invalid(
      'allow_unlisted_methods',
      'cannot be true when default_rule is set: choose one for unlisted methods',
    )
  }

  const seenRoutes = new Map<string, number>()
  const routes = Object.freeze(
    r.records('routes', routeFields).map((entry, i) => {
      const route = entry.read('route')
      const earlier = seenRoutes.get(route)
      if (earlier !== undefined)
        throw entry.invalid('route', `${route} already has an entry at routes[${earlier}]`)
      seenRoutes.set(route, i)
      return Object.freeze({ route, rules: parseRules(entry, wildcard_suffix) })
    }),
  )
  if (routes.length > 0 && typeof r.raw['route_id'] === 'string') {
    // Kong adds route_id to the config of a plugin bound to one route: entries for other routes
    // could never match, and the one for this route belongs in the top-level rules.
    throw r.invalid(
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
    throw r.invalid(
      'rules',
      'no rule, no default_rule and unlisted methods denied: every request would be refused',
    )
  }

  const realm = r.read('realm')
  if (realm === '') throw r.invalid('realm', 'must be a non-empty string')
  return Object.freeze({
    rules,
    default_rule,
    allow_unlisted_methods,
    routes,
    scope_claims: parseScopeClaims(r),
    wildcard_suffix,
    publish_groups: r.read('publish_groups'),
    realm,
    log_refusals: r.read('log_refusals'),
  })
}
