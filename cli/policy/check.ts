/**
 * `kong-jwt-toolkit check`: what is wrong with a kong.yml before it ships. Every finding names
 * its place in the file (a path and a line). Plugin configs are judged by the plugins' own
 * parsers (plugin-configs.ts), the scope rules by the plugins' own matching code.
 */
import type { Config as ConsumerJwtConfig, Credential } from '../../plugins/consumer-jwt/schema'
import type { Config as ScopeAclConfig, RuleConfig } from '../../plugins/scope-acl/schema'
import { grants, matchScopes } from '../../plugins/shared/scopes/match'
import { BUNDLED_AUTH_PLUGINS } from '../kong/bundled-plugins'
import type { ConsumerEntity, RouteEntity } from '../kong/declarative-config'
import { compoundKey, lookupConfig } from '../kong/plugins-iterator'
import { isPlainObject } from '../kong/values'
import { missingDeclaration, type KongConf } from './kong-conf'
import { joinPath, loadPolicy, PolicyLoadError, type LoadedPolicy, type PluginUse } from './load'
import { readPluginConfig, type PluginConfig } from './plugin-configs'

export type Severity = 'error' | 'warning' | 'info'

/** Every finding `check` reports, its severity and what it means (README, --help). */
export const FINDINGS = {
  'yaml-invalid': ['error', 'the file is not valid YAML'],
  'kong-config-invalid': ['error', 'Kong refuses the declarative config (entities, references)'],
  'unknown-field': ['error', "a plugin config field the plugin's schema does not have"],
  'config-invalid': ['error', "Kong's schema refuses a plugin config (type, range, required)"],
  'config-refused': [
    'error',
    "Kong accepts a config the plugin's parseConfig refuses: 500 ERR_CONFIG_INVALID",
  ],
  'unknown-consumer': [
    'error',
    'a credential or anonymous setting names a consumer kong.yml lacks',
  ],
  'duplicate-key-binding': [
    'error',
    'one key claim value or kid selects credentials of different consumers',
  ],
  'secret-too-short': ['error', 'an HMAC secret shorter than its algorithm needs (32/48/64 bytes)'],
  'secret-shared': ['error', 'one HMAC secret shared by two consumers'],
  'route-unauthenticated': ['error', 'a route no authentication plugin applies to'],
  'guard-missing': [
    'error',
    'no global acl allowing a group (the fail-closed guard), or a route acl replacing it',
  ],
  'consumer-outside-guard': ['error', "a consumer in none of the guard's allow groups"],
  'scope-named-like-guard': [
    'error',
    'a scope named like a guard group while publish_groups is on',
  ],
  'dead-scope-rule': ['error', "a scope rule no consumer's scope_ceiling can ever satisfy"],
  'revocation-without-redis': ['error', 'revocation with no Redis named, or an empty url'],
  'plugin-not-installed': ['error', 'a plugin kong.conf does not load (with --kong-conf)'],
  'plugin-unknown': [
    'warning',
    'neither bundled with Kong 3.9 nor ours: its config is not checked',
  ],
  'ceiling-too-broad': ['warning', 'a scope_ceiling with scopes no route requires, or none at all'],
  'leeway-missing': ['warning', 'leeway 0: no clock skew tolerated'],
  'lifetime-uncapped': ['warning', 'no lifetime cap (maximum_lifetime / maximum_expiration 0)'],
  'value-unreadable': ['info', 'a vault reference or secret_env, checked with a stand-in'],
  'public-route': ['info', 'a route open to anyone through an anonymous consumer'],
} as const satisfies Record<string, readonly [Severity, string]>

export type FindingCode = keyof typeof FINDINGS

export interface Finding {
  readonly severity: Severity
  readonly code: FindingCode
  /** Where in kong.yml, e.g. `services[0].routes[1].plugins[0].config.scopes.default_rule`. */
  readonly path: string
  readonly line: number | undefined
  readonly column: number | undefined
  readonly message: string
}

export interface CheckReport {
  readonly file: string
  readonly findings: readonly Finding[]
  readonly errors: number
  readonly warnings: number
  readonly infos: number
}

export interface CheckOptions {
  /** The kong.conf whose plugin settings must cover every plugin the file uses. */
  readonly kongConf?: KongConf
}

const HMAC_MIN_BYTES: Readonly<Record<string, number>> = { HS256: 32, HS384: 48, HS512: 64 }

class Findings {
  readonly #list: Finding[] = []
  readonly #seen = new Set<string>()
  constructor(readonly policy: LoadedPolicy) {}

  add(code: FindingCode, path: string, message: string): void {
    const pos = this.policy.locate(path)
    // The same YAML written once and merged into several places (anchors) is one finding.
    const key = `${code}\0${pos?.line ?? path}\0${pos?.column ?? ''}\0${message}`
    if (this.#seen.has(key)) return
    this.#seen.add(key)
    this.#list.push({
      severity: FINDINGS[code][0],
      code,
      path,
      line: pos?.line,
      column: pos?.column,
      message,
    })
  }

  get list(): readonly Finding[] {
    return this.#list
  }
}

/** Everything the checks share, computed once. */
interface Context {
  readonly policy: LoadedPolicy
  readonly out: Findings
  readonly configs: readonly PluginConfig[]
  readonly enabled: readonly PluginConfig[]
  readonly consumerByRef: ReadonlyMap<string, ConsumerEntity>
  /** Plugin name → (route:service:consumer key → config), enabled configs only. */
  readonly combos: ReadonlyMap<string, ReadonlyMap<string, PluginConfig>>
}

function configPath(c: PluginConfig, ...rest: Array<string | number>): string {
  return joinPath(c.use.where, 'config', ...rest)
}

function consumerName(c: ConsumerEntity): string {
  return c.username ?? c.custom_id ?? c.id
}

function describeUse(use: PluginUse): string {
  return `${use.entity.name} at ${use.where}`
}

function checkConfigs(ctx: Context): void {
  for (const c of ctx.configs) {
    const { name } = c.use.entity
    if (c.kind === 'unknown') {
      ctx.out.add(
        'plugin-unknown',
        joinPath(c.use.where, 'name'),
        `plugin ${name} is neither bundled with Kong 3.9 nor one of this toolkit's: its config is not checked`,
      )
    }
    for (const p of c.problems) {
      const path = p.path === '' ? configPath(c) : configPath(c, p.path)
      if (p.stage === 'schema') {
        if (p.message === 'unknown field') {
          ctx.out.add(
            'unknown-field',
            path,
            `${name} has no config field ${p.path}: Kong refuses the file`,
          )
        } else {
          ctx.out.add(
            'config-invalid',
            path,
            `${name} ${p.path}: ${p.message}: Kong refuses the file`,
          )
        }
        continue
      }
      const why = `${name} refuses this config at start, every request through it gets 500 ERR_CONFIG_INVALID`
      if (/(^|\.)secret$/.test(p.path) && /at least \d+ bytes/.test(p.message)) {
        ctx.out.add('secret-too-short', path, `${p.path} ${p.message}: ${why}`)
      } else if (/^(revocation\.)?redis(\.|$)/.test(p.path)) {
        ctx.out.add('revocation-without-redis', path, `${p.path} ${p.message}: ${why}`)
      } else {
        ctx.out.add(
          'config-refused',
          path,
          `${p.path === '' ? '' : `${p.path}: `}${p.message}: ${why}`,
        )
      }
    }
    for (const s of c.standIns) {
      ctx.out.add(
        'value-unreadable',
        configPath(c, s.path),
        `${s.what}: read by Kong at run time, not here; checked with a stand-in (its length and uniqueness are not checked)`,
      )
    }
  }
}

function rawCredentials(c: PluginConfig): unknown[] {
  const creds = c.kongConfig?.['credentials'] ?? c.use.entity.config['credentials']
  return Array.isArray(creds) ? creds : []
}

function checkConsumerRefs(ctx: Context): void {
  const known = [...new Set(ctx.policy.config.consumers.map(consumerName))].join(', ')
  for (const c of ctx.configs) {
    const { name } = c.use.entity
    if (name === 'consumer-jwt') {
      rawCredentials(c).forEach((cred, i) => {
        const ref = isPlainObject(cred) ? cred['consumer'] : undefined
        if (typeof ref === 'string' && ref !== '' && !ctx.consumerByRef.has(ref)) {
          ctx.out.add(
            'unknown-consumer',
            configPath(c, 'credentials', i, 'consumer'),
            `credential ${String(isPlainObject(cred) ? cred['key'] : i)} names consumer ${ref}, which kong.yml does not declare (declared: ${known}): its tokens get 401 ERR_CONSUMER_NOT_FOUND`,
          )
        }
      })
    }
    const anonymous = c.use.entity.config['anonymous']
    if (
      (name === 'consumer-jwt' || BUNDLED_AUTH_PLUGINS.has(name)) &&
      typeof anonymous === 'string' &&
      anonymous !== '' &&
      !ctx.consumerByRef.has(anonymous)
    ) {
      ctx.out.add(
        'unknown-consumer',
        configPath(c, 'anonymous'),
        `anonymous consumer ${anonymous} is not declared in kong.yml (declared: ${known}): a request without valid credentials gets 500`,
      )
    }
  }
}

interface CredentialAt {
  readonly config: PluginConfig
  readonly parsed: ConsumerJwtConfig
  readonly credential: Credential
  readonly index: number
  readonly path: string
}

function consumerJwtCredentials(ctx: Context): CredentialAt[] {
  const out: CredentialAt[] = []
  for (const c of ctx.configs) {
    if (c.parsed?.name !== 'consumer-jwt') continue
    const parsed = c.parsed.config
    ;[...parsed.credentials.values()].forEach((credential, index) =>
      out.push({
        config: c,
        parsed,
        credential,
        index,
        path: configPath(c, 'credentials', index),
      }),
    )
  }
  return out
}

/** The consumer a credential names, as one identity (a username and an id of one consumer match). */
function identity(ctx: Context, ref: string): string {
  return ctx.consumerByRef.get(ref)?.id ?? ref
}

function checkBindings(ctx: Context, creds: readonly CredentialAt[]): void {
  const byKey = new Map<string, CredentialAt>()
  const byKid = new Map<string, CredentialAt>()
  const bySecret = new Map<string, CredentialAt>()
  const clash = (
    seen: Map<string, CredentialAt>,
    key: string,
    at: CredentialAt,
    path: string,
    what: (first: CredentialAt) => string,
    code: FindingCode,
  ) => {
    const first = seen.get(key)
    if (first === undefined) {
      seen.set(key, at)
      return
    }
    if (identity(ctx, first.credential.consumer) === identity(ctx, at.credential.consumer)) return
    ctx.out.add(code, path, what(first))
  }
  for (const at of creds) {
    const { credential, parsed } = at
    clash(
      byKey,
      `${parsed.key_claim_name}\0${credential.key}`,
      at,
      joinPath(at.path, 'key'),
      (first) =>
        `${parsed.key_claim_name}=${credential.key} selects consumer ${credential.consumer} here and consumer ${first.credential.consumer} at ${first.path}: one token would authenticate as either, depending on the route`,
      'duplicate-key-binding',
    )
    const source = credential.keySource
    if (source.kind === 'jwks') {
      for (const key of source.jwks.keys) {
        const kid = key['kid']
        if (typeof kid !== 'string') continue
        clash(
          byKid,
          kid,
          at,
          joinPath(at.path, 'jwks'),
          (first) =>
            `kid ${kid} is a key of consumer ${credential.consumer} here and of consumer ${first.credential.consumer} at ${first.path}: whoever holds it signs for both`,
          'duplicate-key-binding',
        )
      }
    }
    if (source.kind !== 'secret') continue
    const standIn = at.config.standIns.some(
      (s) =>
        s.path === joinPath('credentials', at.index, 'secret') ||
        s.path === joinPath('credentials', at.index, 'secret_env'),
    )
    if (standIn) continue
    const need = Math.max(...credential.algorithms.map((a) => HMAC_MIN_BYTES[a] ?? 0))
    if (source.secret.length < need) {
      const alg = credential.algorithms.find((a) => HMAC_MIN_BYTES[a] === need) ?? ''
      ctx.out.add(
        'secret-too-short',
        joinPath(at.path, 'secret'),
        `${alg} needs a secret of at least ${need} bytes (RFC 7518 §3.2); this one has ${source.secret.length}`,
      )
    }
    clash(
      bySecret,
      Buffer.from(source.secret).toString('hex'),
      at,
      joinPath(at.path, 'secret'),
      (first) =>
        `the secret of consumer ${credential.consumer} is also the secret of consumer ${first.credential.consumer} (${first.path}): each can sign tokens as the other`,
      'secret-shared',
    )
  }
}

function effective(ctx: Context, route: RouteEntity): PluginConfig[] {
  const out: PluginConfig[] = []
  for (const combos of ctx.combos.values()) {
    const c = lookupConfig(combos, route.id, route.service?.id, undefined)
    if (c !== undefined) out.push(c)
  }
  return out
}

function isAuth(name: string): boolean {
  return name === 'consumer-jwt' || BUNDLED_AUTH_PLUGINS.has(name)
}

function checkRoutes(ctx: Context): void {
  ctx.policy.config.routes.forEach((route, i) => {
    const where = ctx.policy.sources.routes[i] ?? `routes[${i}]`
    const auth = effective(ctx, route).filter((c) => isAuth(c.use.entity.name))
    const label = route.name ?? route.id
    if (auth.length === 0) {
      ctx.out.add(
        'route-unauthenticated',
        where,
        `route ${label} has no authentication plugin (on the route, its service or global): anyone reaches it, or the acl guard refuses everyone; for a public route authenticate an anonymous consumer (key-auth with anonymous, as kong.yml's public-status)`,
      )
      return
    }
    const anonymous = auth
      .map((c) => c.use.entity.config['anonymous'])
      .filter((a): a is string => typeof a === 'string' && a !== '')
    if (anonymous.length > 0) {
      ctx.out.add(
        'public-route',
        where,
        `route ${label} is public: a request without valid credentials passes as consumer ${anonymous.join(', ')} (${auth.map((c) => describeUse(c.use)).join(', ')})`,
      )
    }
  })
}

interface Guard {
  readonly config: PluginConfig
  readonly groups: readonly string[]
}

function allowGroups(c: PluginConfig): string[] {
  const allow = c.use.entity.config['allow']
  return Array.isArray(allow) ? allow.filter((g): g is string => typeof g === 'string') : []
}

/**
 * The fail-closed guard: a global bundled acl allowing a group (README "The fail-open window
 * and the guard"). A route or service acl replaces the global one for its routes, so each
 * route's own acl must allow a group too.
 */
function findGuard(ctx: Context): Guard | undefined {
  const global = ctx.enabled.find(
    (c) => c.use.entity.name === 'acl' && !c.use.route && !c.use.service && !c.use.consumer,
  )
  const groups = global === undefined ? [] : allowGroups(global)
  if (global === undefined || groups.length === 0) {
    ctx.out.add(
      'guard-missing',
      global === undefined ? 'plugins' : configPath(global),
      global === undefined
        ? 'no global bundled acl plugin: while a plugin server is dead or restarting, Kong skips our plugins and proxies requests unchecked (README "The fail-open window and the guard")'
        : 'the global acl allows no group (deny only): the guard must allow a group every consumer belongs to, so that a request with no authenticated consumer is refused',
    )
  }
  ctx.policy.config.routes.forEach((route, i) => {
    const own = lookupConfig(ctx.combos.get('acl'), route.id, route.service?.id, undefined)
    if (own === undefined || own === global || allowGroups(own).length > 0) return
    ctx.out.add(
      'guard-missing',
      ctx.policy.sources.routes[i] ?? `routes[${i}]`,
      `route ${route.name ?? route.id}: the acl at ${own.use.where} replaces the global guard here and allows no group (deny only): a request with no authenticated consumer is not refused`,
    )
  })
  return global === undefined || groups.length === 0 ? undefined : { config: global, groups }
}

function checkGuardMembers(ctx: Context, guard: Guard): void {
  const anonymousOf = new Map<string, string>()
  for (const c of ctx.enabled) {
    const a = c.use.entity.config['anonymous']
    const consumer = typeof a === 'string' ? ctx.consumerByRef.get(a) : undefined
    if (consumer !== undefined) anonymousOf.set(consumer.id, describeUse(c.use))
  }
  ctx.policy.config.consumers.forEach((consumer, i) => {
    const groups = ctx.policy.config.acls
      .filter((a) => a.consumer.id === consumer.id)
      .map((a) => a.group)
    if (groups.some((g) => guard.groups.includes(g))) return
    const anon = anonymousOf.get(consumer.id)
    ctx.out.add(
      'consumer-outside-guard',
      joinPath(
        ctx.policy.sources.consumers[i] ?? `consumers[${i}]`,
        groups.length > 0 ? 'acls' : '',
      ),
      `consumer ${consumerName(consumer)}${anon === undefined ? '' : ` (the anonymous consumer of ${anon})`} is in ${groups.length === 0 ? 'no acl group' : `groups ${groups.join(', ')} only`}, not in ${guard.groups.join(' or ')}: the acl guard refuses every request it makes`,
    )
  })
}

interface RuleList {
  readonly config: PluginConfig
  /** Path of each rule, in order, plus the default rule. */
  readonly rules: ReadonlyArray<{
    readonly path: string
    readonly scopes: readonly string[]
    readonly match: 'all' | 'any'
  }>
  readonly wildcard: boolean
  readonly publishGroups: boolean
  /** The ceilings of the consumers this list can see; undefined when unknown or unbounded. */
  readonly ceilings: ReadonlyArray<ReadonlySet<string>> | undefined
}

function ruleLists(
  scopes: ScopeAclConfig,
  c: PluginConfig,
  base: readonly (string | number)[],
  ceilings: RuleList['ceilings'],
): RuleList {
  const rules: Array<RuleList['rules'][number]> = []
  const add = (list: readonly RuleConfig[], ...at: Array<string | number>) =>
    list.forEach((r, i) =>
      rules.push({ path: configPath(c, ...base, ...at, i), scopes: r.scopes, match: r.match }),
    )
  add(scopes.rules, 'rules')
  scopes.routes.forEach((entry, j) => add(entry.rules, 'routes', j, 'rules'))
  if (scopes.default_rule?.scopes) {
    rules.push({
      path: configPath(c, ...base, 'default_rule'),
      scopes: scopes.default_rule.scopes,
      match: scopes.default_rule.match,
    })
  }
  return {
    config: c,
    rules,
    wildcard: scopes.wildcard_suffix,
    publishGroups: scopes.publish_groups,
    ceilings,
  }
}

function allRuleLists(ctx: Context, creds: readonly CredentialAt[]): RuleList[] {
  const lists: RuleList[] = []
  const fileCeilings = (): RuleList['ceilings'] => {
    // A standalone scope-acl sees tokens verified by any authenticator: known ceilings only when
    // every authenticator is consumer-jwt and every credential has one.
    if (ctx.configs.some((c) => c.use.entity.name === 'jwt')) return undefined
    if (creds.length === 0 || creds.some((c) => c.credential.scopeCeiling === undefined))
      return undefined
    return creds.map((c) => c.credential.scopeCeiling as ReadonlySet<string>)
  }
  for (const c of ctx.configs) {
    if (c.parsed?.name === 'consumer-jwt' && c.parsed.config.scopes !== undefined) {
      const own = [...c.parsed.config.credentials.values()].map((cr) => cr.scopeCeiling)
      const ceilings = own.every((x) => x !== undefined) ? own : undefined
      lists.push(ruleLists(c.parsed.config.scopes, c, ['scopes'], ceilings))
    } else if (c.parsed?.name === 'scope-acl') {
      lists.push(ruleLists(c.parsed.config, c, [], fileCeilings()))
    }
  }
  return lists
}

function checkScopes(ctx: Context, creds: readonly CredentialAt[], guard: Guard | undefined): void {
  const lists = allRuleLists(ctx, creds)
  for (const list of lists) {
    for (const rule of list.rules) {
      const ceilings = list.ceilings
      if (ceilings === undefined) continue
      const options = { match: rule.match, wildcardSuffix: list.wildcard }
      const unreachable = rule.scopes.filter(
        (scope) => !ceilings.some((ceiling) => grants(ceiling, scope, list.wildcard)),
      )
      if (!ceilings.some((ceiling) => matchScopes(ceiling, rule.scopes, options).satisfied)) {
        ctx.out.add(
          'dead-scope-rule',
          rule.path,
          `needs ${rule.match} of [${rule.scopes.join(' ')}], which no consumer's scope_ceiling allows: every request it covers is refused (ERR_SCOPE_INSUFFICIENT or, with the scope in the token, ERR_SCOPE_CEILING_EXCEEDED)`,
        )
      } else if (unreachable.length > 0) {
        ctx.out.add(
          'dead-scope-rule',
          rule.path,
          `names ${unreachable.join(', ')}, which no consumer's scope_ceiling allows: that part of the rule never matches (a typo?)`,
        )
      }
    }
    if (guard === undefined || !list.publishGroups) continue
    const named = (scopes: Iterable<string>) => [...scopes].filter((s) => guard.groups.includes(s))
    for (const rule of list.rules) {
      const clash = named(rule.scopes)
      if (clash.length > 0) {
        ctx.out.add(
          'scope-named-like-guard',
          rule.path,
          `scope ${clash.join(', ')} is named like the acl guard's group while publish_groups is on: a token carrying it passes the guard without any authenticated consumer`,
        )
      }
    }
    if (list.config.parsed?.name === 'consumer-jwt') {
      ;[...list.config.parsed.config.credentials.values()].forEach((cr, i) => {
        const clash = named(cr.scopeCeiling ?? [])
        if (clash.length > 0) {
          ctx.out.add(
            'scope-named-like-guard',
            configPath(list.config, 'credentials', i, 'scope_ceiling'),
            `scope ${clash.join(', ')} is named like the acl guard's group while publish_groups is on: a token carrying it passes the guard without any authenticated consumer`,
          )
        }
      })
    }
  }
  const required = lists.flatMap((l) =>
    l.rules.flatMap((r) => r.scopes.map((s) => ({ s, w: l.wildcard }))),
  )
  if (required.length === 0) return
  for (const at of creds) {
    const ceiling = at.credential.scopeCeiling
    if (ceiling === undefined) {
      ctx.out.add(
        'ceiling-too-broad',
        at.path,
        `credential ${at.credential.key} (consumer ${at.credential.consumer}) has no scope_ceiling: its tokens may carry any scope, the scope rules are all that stands between it and every route`,
      )
      continue
    }
    const unused = [...ceiling].filter(
      (scope) => !required.some((r) => grants(new Set([scope]), r.s, r.w)),
    )
    if (unused.length > 0) {
      ctx.out.add(
        'ceiling-too-broad',
        joinPath(at.path, 'scope_ceiling'),
        `consumer ${at.credential.consumer} may hold ${unused.join(', ')}, which no scope rule requires: a ceiling broader than any route needs`,
      )
    }
  }
}

function checkTimeLimits(ctx: Context): void {
  for (const c of ctx.enabled) {
    if (c.parsed?.name === 'consumer-jwt') {
      const { leeway, maximum_lifetime, required_claims } = c.parsed.config
      if (leeway === 0) {
        ctx.out.add(
          'leeway-missing',
          configPath(c, 'leeway'),
          'leeway 0: a token from an issuer whose clock runs a second ahead is refused (nbf, iat); 30 to 60 s is usual',
        )
      }
      if (maximum_lifetime === 0) {
        ctx.out.add(
          'lifetime-uncapped',
          c.use.entity.config['maximum_lifetime'] === undefined
            ? configPath(c)
            : configPath(c, 'maximum_lifetime'),
          `maximum_lifetime 0: no cap on exp - iat, a token minted to last a year is accepted${required_claims.includes('exp') ? '' : ', and without exp in required_claims one that never expires'}`,
        )
      }
    } else if (c.use.entity.name === 'jwt' && c.kongConfig !== undefined) {
      if (c.kongConfig['maximum_expiration'] === 0) {
        ctx.out.add(
          'lifetime-uncapped',
          configPath(c),
          'maximum_expiration 0: the bundled jwt plugin accepts tokens of any lifetime',
        )
      }
    }
  }
}

function namesRedis(redis: unknown): boolean {
  if (!isPlainObject(redis)) return false
  const list = (v: unknown) => Array.isArray(v) && v.length > 0
  return (
    (typeof redis['url'] === 'string' && redis['url'] !== '') ||
    list(redis['sentinels']) ||
    list(redis['cluster_nodes'])
  )
}

function checkRevocationRedis(ctx: Context): void {
  for (const c of ctx.configs) {
    if (c.use.entity.name !== 'jwt-revocation' || c.kongConfig === undefined) continue
    if (c.problems.some((p) => p.path.startsWith('redis'))) continue
    const redis = c.use.entity.config['redis']
    if (namesRedis(redis)) continue
    ctx.out.add(
      'revocation-without-redis',
      configPath(c, ...(redis === undefined ? [] : ['redis'])),
      `no Redis named (url, sentinels or cluster_nodes): Kong fills in redis://127.0.0.1:6379, so revocations are read from whatever listens on the Kong host, if anything`,
    )
  }
}

function checkKongConf(ctx: Context, conf: KongConf): void {
  const seen = new Set<string>()
  for (const c of ctx.configs) {
    const { name } = c.use.entity
    if (seen.has(name)) continue
    seen.add(name)
    const why = missingDeclaration(
      conf,
      name,
      c.kind === 'ours' ? 'plugin-server' : c.kind === 'bundled' ? 'bundled' : 'other',
    )
    if (why !== undefined) ctx.out.add('plugin-not-installed', joinPath(c.use.where, 'name'), why)
  }
}

/** Checks a loaded kong.yml. */
export function checkPolicy(policy: LoadedPolicy, options: CheckOptions = {}): Finding[] {
  const out = new Findings(policy)
  const configs = policy.plugins.map((use) => readPluginConfig(use))
  const enabled = configs.filter((c) => c.use.entity.enabled)
  const consumerByRef = new Map<string, ConsumerEntity>()
  for (const c of policy.config.consumers) {
    consumerByRef.set(c.id, c)
    if (c.username !== undefined) consumerByRef.set(c.username, c)
  }
  const combos = new Map<string, Map<string, PluginConfig>>()
  for (const c of enabled) {
    const { entity } = c.use
    let m = combos.get(entity.name)
    if (m === undefined) combos.set(entity.name, (m = new Map<string, PluginConfig>()))
    m.set(compoundKey(entity.route?.id, entity.service?.id, entity.consumer?.id), c)
  }
  const ctx: Context = { policy, out, configs, enabled, consumerByRef, combos }
  checkConfigs(ctx)
  checkConsumerRefs(ctx)
  const creds = consumerJwtCredentials(ctx)
  checkBindings(ctx, creds)
  checkRoutes(ctx)
  const guard = findGuard(ctx)
  if (guard !== undefined) checkGuardMembers(ctx, guard)
  checkScopes(ctx, creds, guard)
  checkTimeLimits(ctx)
  checkRevocationRedis(ctx)
  if (options.kongConf !== undefined) checkKongConf(ctx, options.kongConf)
  const rank = { error: 0, warning: 1, info: 2 }
  return [...out.list].sort(
    (a, b) =>
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      rank[a.severity] - rank[b.severity],
  )
}

function report(file: string, findings: readonly Finding[]): CheckReport {
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length
  return {
    file,
    findings,
    errors: count('error'),
    warnings: count('warning'),
    infos: count('info'),
  }
}

/**
 * Loads and checks a kong.yml. A file that is not YAML or not a Kong config is one finding
 * (yaml-invalid, kong-config-invalid); a file that cannot be read throws PolicyLoadError.
 */
export function checkFile(file: string, options: CheckOptions = {}): CheckReport {
  let policy: LoadedPolicy
  try {
    policy = loadPolicy(file)
  } catch (error) {
    if (!(error instanceof PolicyLoadError) || !error.inFile) throw error
    const code: FindingCode = error.message.startsWith('invalid YAML')
      ? 'yaml-invalid'
      : 'kong-config-invalid'
    return report(file, [
      {
        severity: 'error',
        code,
        path: error.path ?? '',
        line: error.position?.line,
        column: error.position?.column,
        message: error.message,
      },
    ])
  }
  return report(file, checkPolicy(policy, options))
}
