/**
 * `kong-jwt-toolkit explain`: what Kong would do with one request of one consumer, from kong.yml
 * alone, sending nothing. The route comes from Kong's router rules (cli/kong/router.ts), the
 * plugins and their order from Kong's plugins iterator and priorities, the decisions of our
 * plugins from their own pure code: consumer-jwt's scope ceiling (checkScopeCeiling) and
 * scope-acl's rules (compilePolicy, policyForRoute, requirementFor, authorize). What needs the
 * running system (signatures, Redis revocations, the other bundled plugins) is named, not guessed.
 */
import type { JWTPayload } from 'jose'
import { checkScopeCeiling } from '../../plugins/consumer-jwt/core'
import type { Credential } from '../../plugins/consumer-jwt/schema'
import {
  authorize,
  compilePolicy,
  policyForRoute,
  requirementFor,
  type Requirement,
} from '../../plugins/scope-acl/core'
import type { Config as ScopeAclConfig } from '../../plugins/scope-acl/schema'
import { CATALOGUE, isPluginError, PluginError, type ErrorCode } from '../../plugins/shared/errors'
import type { ConsumerEntity, RouteEntity, ServiceEntity } from '../kong/declarative-config'
import { compoundKey, lookupConfig } from '../kong/plugins-iterator'
import { buildRouter, upstreamPath } from '../kong/router'
import type { LoadedPolicy } from './load'
import { priorityOf, readPluginConfig, type PluginConfig } from './plugin-configs'

export interface ExplainRequest {
  readonly consumer: string
  readonly method: string
  readonly path: string
  readonly host?: string
  /** The token's scopes; undefined: the consumer's scope_ceiling. */
  readonly scopes?: readonly string[]
}

/** The request cannot be explained (an unknown consumer). */
export class ExplainError extends Error {
  override readonly name = 'ExplainError'
}

export interface Verdict {
  readonly status: number
  /** The catalogue code of our plugins' refusals; undefined for Kong's own answers. */
  readonly code: ErrorCode | undefined
  readonly message: string
  readonly reason: string
  /** Who decided: a plugin name, or `router`. */
  readonly by: string
}

export interface Step {
  readonly plugin: string
  readonly priority: number | undefined
  /** Where its config is written in kong.yml. */
  readonly where: string
  /** `route`, `service`, `consumer`, a combination (`service+consumer`) or `global`. */
  readonly bound: string
  readonly notes: readonly string[]
  readonly outcome: 'passed' | 'refused' | 'not simulated' | 'not reached'
}

export interface Explanation {
  readonly request: {
    readonly consumer: string
    readonly method: string
    readonly path: string
    readonly host: string | undefined
    readonly scopes: readonly string[]
    readonly scopesFrom: 'option' | 'ceiling' | 'none'
  }
  readonly route:
    | {
        readonly name: string | undefined
        readonly id: string
        readonly where: string | undefined
        readonly line: number | undefined
        readonly service: string | undefined
        readonly upstreamPath: string | undefined
      }
    | undefined
  readonly steps: readonly Step[]
  /** The scopes the matched rule requires, when a scope rule applies. */
  readonly required:
    { readonly scopes: readonly string[]; readonly match: string; readonly by: string } | undefined
  readonly verdict: Verdict
}

/** A refusal on the way: stops the chain. */
class Refusal extends Error {
  override readonly name = 'Refusal'
  constructor(readonly verdict: Verdict) {
    super(`${verdict.status} ${verdict.code ?? verdict.message}`)
  }
}

function refusal(by: string, error: unknown): Refusal {
  if (isPluginError(error)) {
    return new Refusal({
      status: error.status,
      code: error.code,
      message: CATALOGUE[error.code].message,
      reason: error.detail ?? error.message,
      by,
    })
  }
  throw error
}

function kongRefusal(by: string, status: number, message: string, reason: string): Refusal {
  return new Refusal({ status, code: undefined, message, reason, by })
}

/** Claims carrying `scopes` where the plugin reads them first (a dotted path nests). */
function claimsWith(scopeClaims: readonly string[], scopes: readonly string[]): JWTPayload {
  const path = scopeClaims[0] ?? 'scope'
  const value = scopes.join(' ')
  if (!path.includes('.')) return { [path]: value }
  const parts = path.split('.')
  const root: Record<string, unknown> = {}
  let at = root
  parts.forEach((p, i) => {
    if (i === parts.length - 1) at[p] = value
    else at = at[p] = {} as Record<string, unknown>
  })
  return root
}

function describeRequirement(r: Requirement): string {
  switch (r.kind) {
    case 'allow':
      return 'no scope needed (allow_unlisted_methods)'
    case 'deny':
      return 'no rule lists this method and unlisted methods are denied'
    case 'scopes':
      return `needs ${r.match} of [${r.scopes.join(' ')}]${r.logOnly ? ' (log-only)' : ''}`
  }
}

interface State {
  consumer: ConsumerEntity | undefined
  credential: boolean
  /** The verified token's claims shared in kong.ctx.shared (share_token / Kong's jwt). */
  shared: JWTPayload | undefined
  required: Explanation['required']
}

function bound(c: PluginConfig): Step['bound'] {
  const { use } = c
  const parts = [
    use.route ? 'route' : '',
    use.service ? 'service' : '',
    use.consumer ? 'consumer' : '',
  ].filter((p) => p !== '')
  return parts.length === 0 ? 'global' : parts.join('+')
}

export function explainRequest(policy: LoadedPolicy, req: ExplainRequest): Explanation {
  const { config } = policy
  const method = req.method.toUpperCase()
  const consumer = config.consumers.find(
    (c) => c.username === req.consumer || c.id === req.consumer,
  )
  if (consumer === undefined) {
    const known = config.consumers.map((c) => c.username ?? c.id).join(', ')
    throw new ExplainError(
      `consumer ${req.consumer} is not declared in ${policy.file} (declared: ${known})`,
    )
  }
  const all = policy.plugins.map((use) => readPluginConfig(use))
  const refused = all.find((c) => c.problems.some((p) => p.stage === 'schema'))
  if (refused !== undefined) {
    const p = refused.problems[0]
    throw new ExplainError(
      `Kong would not load ${policy.file}: ${refused.use.where}.config${p?.path ? `.${p.path}` : ''}: ${p?.message ?? 'invalid'} (kong-jwt-toolkit check lists every problem)`,
    )
  }
  const configs = all.filter((c) => c.use.entity.enabled)
  const byRef = (ref: string) => config.consumers.find((c) => c.username === ref || c.id === ref)

  const match = buildRouter(config.routes).match({
    method,
    host: req.host ?? '',
    path: req.path,
    headers: {},
    protocol: 'https',
  })

  // The token's scopes: as given, else the ceiling of the consumer's first consumer-jwt
  // credential on the matched route (or anywhere in the file).
  const ownCredential = (c: PluginConfig): Credential | undefined =>
    c.parsed?.name === 'consumer-jwt'
      ? [...c.parsed.config.credentials.values()].find(
          (cr) => byRef(cr.consumer)?.id === consumer.id,
        )
      : undefined
  const route: RouteEntity | undefined = match?.route
  const service: ServiceEntity | undefined = config.services.find(
    (s) => s.id === route?.service?.id,
  )
  const combos = new Map<string, Map<string, PluginConfig>>()
  for (const c of configs) {
    const { entity } = c.use
    let m = combos.get(entity.name)
    if (m === undefined) combos.set(entity.name, (m = new Map<string, PluginConfig>()))
    m.set(compoundKey(entity.route?.id, entity.service?.id, entity.consumer?.id), c)
  }
  const routeJwt =
    route === undefined
      ? undefined
      : lookupConfig(combos.get('consumer-jwt'), route.id, service?.id, undefined)
  const ceilingCredential =
    (routeJwt === undefined ? undefined : ownCredential(routeJwt)) ??
    configs.map(ownCredential).find((cr) => cr !== undefined)
  const ceiling = ceilingCredential?.scopeCeiling
  const scopes = req.scopes ?? (ceiling === undefined ? [] : [...ceiling])
  const scopesFrom: Explanation['request']['scopesFrom'] =
    req.scopes !== undefined ? 'option' : ceiling !== undefined ? 'ceiling' : 'none'
  const request = {
    consumer: consumerLabel(consumer),
    method,
    path: req.path,
    host: req.host,
    scopes,
    scopesFrom,
  }

  if (match === undefined || route === undefined) {
    return {
      request,
      route: undefined,
      steps: [],
      required: undefined,
      verdict: {
        status: 404,
        code: undefined,
        message: 'no Route matched with those values',
        reason: `no route of ${policy.file} matches ${method} ${req.path}${req.host === undefined ? '' : ` on host ${req.host}`} (Kong answers before any plugin runs)`,
        by: 'router',
      },
    }
  }

  const routeIndex = config.routes.indexOf(route)
  const where = policy.sources.routes[routeIndex]
  const routeInfo = {
    name: route.name,
    id: route.id,
    where,
    line: where === undefined ? undefined : policy.locate(where)?.line,
    service: service?.name ?? service?.id,
    upstreamPath:
      service === undefined
        ? undefined
        : upstreamPath(route, match.postfix, req.path, service.path),
  }

  // Kong runs plugins by priority, highest first (unknown plugins last here).
  const names = [...combos.keys()].sort(
    (a, b) => (priorityOf(b) ?? -Infinity) - (priorityOf(a) ?? -Infinity) || a.localeCompare(b),
  )
  const state: State = {
    consumer: undefined,
    credential: false,
    shared: undefined,
    required: undefined,
  }
  const steps: Step[] = []
  let verdict: Verdict | undefined
  for (const name of names) {
    const c = lookupConfig(combos.get(name), route.id, service?.id, state.consumer?.id)
    if (c === undefined) continue
    const base = {
      plugin: name,
      priority: c.priority,
      where: c.use.where,
      bound: bound(c),
    }
    if (verdict !== undefined) {
      steps.push({ ...base, notes: [], outcome: 'not reached' })
      continue
    }
    const notes: string[] = []
    try {
      const simulated = runPlugin(c, {
        notes,
        state,
        consumer,
        method,
        route,
        scopes,
        byRef,
        keyauth: config.keyauthCredentials.some((k) => k.consumer.id === consumer.id),
        jwtSecret: config.jwtSecrets.some((j) => j.consumer.id === consumer.id),
        groupsOf: (id) => config.acls.filter((a) => a.consumer.id === id).map((a) => a.group),
        credentialOf: ownCredential,
      })
      steps.push({ ...base, notes, outcome: simulated ? 'passed' : 'not simulated' })
    } catch (error) {
      if (!(error instanceof Refusal)) throw error
      verdict = error.verdict
      steps.push({ ...base, notes, outcome: 'refused' })
    }
  }
  return {
    request,
    route: routeInfo,
    steps,
    required: state.required,
    verdict: verdict ?? {
      status: 200,
      code: undefined,
      message: 'proxied',
      reason: `proxied to service ${routeInfo.service ?? '(none)'}${routeInfo.upstreamPath === undefined ? '' : ` as ${method} ${routeInfo.upstreamPath}`}${state.consumer === undefined ? '' : `, consumer ${consumerLabel(state.consumer)} authenticated`}`,
      by: 'kong',
    },
  }
}

function consumerLabel(c: ConsumerEntity): string {
  return c.username ?? c.custom_id ?? c.id
}

interface RunContext {
  readonly notes: string[]
  readonly state: State
  readonly consumer: ConsumerEntity
  readonly method: string
  readonly route: RouteEntity
  readonly scopes: readonly string[]
  readonly byRef: (ref: string) => ConsumerEntity | undefined
  readonly keyauth: boolean
  readonly jwtSecret: boolean
  readonly groupsOf: (consumerId: string) => string[]
  readonly credentialOf: (c: PluginConfig) => Credential | undefined
}

/** One plugin's decision. Returns false when it runs but is not simulated; throws a Refusal. */
function runPlugin(c: PluginConfig, run: RunContext): boolean {
  const { name } = c.use.entity
  const problem = c.problems[0]
  if (problem !== undefined) {
    // Schema problems stop explainRequest before any plugin runs.
    if (problem.stage === 'parse') {
      throw new Refusal({
        status: 500,
        code: 'ERR_CONFIG_INVALID',
        message: CATALOGUE.ERR_CONFIG_INVALID.message,
        reason: `${name} refuses its config: ${problem.path === '' ? '' : `${problem.path}: `}${problem.message}`,
        by: name,
      })
    }
  }
  switch (name) {
    case 'consumer-jwt':
      return consumerJwt(c, run)
    case 'scope-acl':
      return scopeAcl(c, run)
    case 'jwt-revocation':
      return jwtRevocation(c, run)
    case 'key-auth':
    case 'jwt':
      return bundledAuth(c, run)
    case 'acl':
      return acl(c, run)
    default:
      run.notes.push('runs here; its effect is not simulated')
      return false
  }
}

function applyScopes(
  by: string,
  config: ScopeAclConfig,
  claims: JWTPayload | undefined,
  run: RunContext,
): void {
  const policy = compilePolicy(config)
  const requirement = requirementFor(
    policyForRoute(policy, { id: run.route.id, name: run.route.name ?? null }),
    run.method,
  )
  if (requirement.kind === 'scopes') {
    run.state.required = { scopes: requirement.scopes, match: requirement.match, by }
  }
  const verdict = authorize(requirement, claims, policy, run.method)
  if (verdict.allowed) {
    run.notes.push(`scope rule: ${describeRequirement(requirement)}: satisfied`)
    return
  }
  if (verdict.logOnly) {
    run.notes.push(
      `scope rule: ${describeRequirement(requirement)}: would refuse (${verdict.error.code}), passes in log-only mode`,
    )
    return
  }
  run.notes.push(`scope rule: ${describeRequirement(requirement)}`)
  throw refusal(by, verdict.error)
}

function authenticateAnonymous(c: PluginConfig, run: RunContext, why: string): boolean {
  const ref = c.use.entity.config['anonymous']
  if (typeof ref !== 'string' || ref === '') return false
  const anonymous = run.byRef(ref)
  if (anonymous === undefined) {
    throw kongRefusal(
      c.use.entity.name,
      500,
      'An unexpected error occurred',
      `${why}; the anonymous consumer ${ref} is not declared in kong.yml`,
    )
  }
  run.state.consumer = anonymous
  run.state.credential = false
  run.notes.push(`${why}: authenticates the anonymous consumer ${consumerLabel(anonymous)}`)
  return true
}

function consumerJwt(c: PluginConfig, run: RunContext): boolean {
  if (c.parsed?.name !== 'consumer-jwt') return false
  const config = c.parsed.config
  const skipped =
    (!config.run_on_preflight && run.method === 'OPTIONS') ||
    (config.anonymous !== undefined && run.state.credential)
  if (skipped) {
    run.notes.push(
      run.method === 'OPTIONS' && !config.run_on_preflight
        ? 'run_on_preflight false: the preflight is left alone, nobody authenticated'
        : 'another auth plugin already authenticated (logical OR): left alone',
    )
    if (config.scopes !== undefined) applyScopes('consumer-jwt', config.scopes, undefined, run)
    return true
  }
  const credential = run.credentialOf(c)
  try {
    if (credential === undefined) {
      throw refusal(
        'consumer-jwt',
        new PluginError(
          'ERR_CREDENTIAL_UNKNOWN',
          `no credential of this consumer-jwt authenticates ${consumerLabel(run.consumer)}: its tokens match no credential key`,
        ),
      )
    }
    run.notes.push(
      `credential ${credential.key} (${credential.algorithms.join(', ')}) authenticates ${consumerLabel(run.consumer)}; signature and exp/nbf/iat are assumed valid`,
    )
    const claims = claimsWith(config.scope_claims, run.scopes)
    try {
      checkScopeCeiling(claims, credential, config.scope_claims)
    } catch (error) {
      throw refusal('consumer-jwt', error)
    }
    run.notes.push(
      credential.scopeCeiling === undefined
        ? 'no scope_ceiling: any scopes accepted'
        : `token scopes within the scope_ceiling [${[...credential.scopeCeiling].join(' ')}]`,
    )
    if (config.revocation !== undefined) {
      run.notes.push(
        `revocation (${config.revocation.check.join(', ')}) is looked up in Redis: not simulated, assumed not revoked`,
      )
    }
    if (config.scopes !== undefined) applyScopes('consumer-jwt', config.scopes, claims, run)
    run.state.consumer = run.consumer
    run.state.credential = true
    if (config.share_token) run.state.shared = claims
    return true
  } catch (error) {
    if (
      error instanceof Refusal &&
      error.verdict.status === 401 &&
      config.anonymous !== undefined &&
      authenticateAnonymous(c, run, `refused with ${error.verdict.code ?? error.verdict.status}`)
    ) {
      if (config.scopes !== undefined) applyScopes('consumer-jwt', config.scopes, undefined, run)
      return true
    }
    throw error
  }
}

function scopeAcl(c: PluginConfig, run: RunContext): boolean {
  if (c.parsed?.name !== 'scope-acl') return false
  if (run.state.shared === undefined) {
    run.notes.push('no verified token in kong.ctx.shared (no share_token, or no token at all)')
  }
  applyScopes('scope-acl', c.parsed.config, run.state.shared, run)
  return true
}

function jwtRevocation(c: PluginConfig, run: RunContext): boolean {
  if (c.parsed?.name !== 'jwt-revocation') return false
  const config = c.parsed.config
  if (run.state.shared === undefined) {
    if (config.require_token) {
      throw refusal(
        'jwt-revocation',
        new PluginError(
          'ERR_SCOPE_CONTEXT_MISSING',
          'no verified token in kong.ctx.shared and require_token is true',
        ),
      )
    }
    run.notes.push('no verified token in kong.ctx.shared: passes (require_token false)')
    return true
  }
  run.notes.push(
    `revocation (${config.check.join(', ')}) is looked up in Redis: not simulated, assumed not revoked`,
  )
  return false
}

function bundledAuth(c: PluginConfig, run: RunContext): boolean {
  const { name, config } = c.use.entity
  const anonymous = typeof config['anonymous'] === 'string' && config['anonymous'] !== ''
  if (anonymous && run.state.credential) {
    run.notes.push('another auth plugin already authenticated (logical OR): left alone')
    return true
  }
  const has = name === 'key-auth' ? run.keyauth : run.jwtSecret
  if (has) {
    run.state.consumer = run.consumer
    run.state.credential = true
    if (name === 'jwt') run.state.shared = { scope: run.scopes.join(' ') }
    run.notes.push(
      `authenticates ${consumerLabel(run.consumer)} with its ${name === 'key-auth' ? 'key' : 'jwt_secrets'} credential`,
    )
    return true
  }
  const why = `${consumerLabel(run.consumer)} has no ${name === 'key-auth' ? 'keyauth_credentials' : 'jwt_secrets'}`
  if (authenticateAnonymous(c, run, why)) return true
  throw kongRefusal(
    name,
    401,
    name === 'key-auth' ? 'No API key found in request' : 'Unauthorized',
    `${why} (Kong's ${name})`,
  )
}

function acl(c: PluginConfig, run: RunContext): boolean {
  const config = c.kongConfig ?? c.use.entity.config
  const list = (v: unknown) =>
    Array.isArray(v) ? v.filter((g): g is string => typeof g === 'string') : []
  const allow = list(config['allow'])
  const deny = list(config['deny'])
  const consumer = run.state.consumer
  if (consumer === undefined) {
    throw kongRefusal(
      'acl',
      401,
      'Unauthorized',
      'no consumer authenticated: the acl guard refuses the request',
    )
  }
  const groups = run.groupsOf(consumer.id)
  const name = consumerLabel(consumer)
  if (
    deny.length > 0 ? groups.some((g) => deny.includes(g)) : !groups.some((g) => allow.includes(g))
  ) {
    throw kongRefusal(
      'acl',
      groups.length === 0 && !run.state.credential ? 401 : 403,
      'You cannot consume this service',
      `consumer ${name} is in ${groups.length === 0 ? 'no group' : `groups ${groups.join(', ')}`}; acl ${deny.length > 0 ? `denies ${deny.join(', ')}` : `allows ${allow.join(', ')}`}`,
    )
  }
  run.notes.push(`consumer ${name} is in ${groups.join(', ')}: allowed`)
  return true
}
