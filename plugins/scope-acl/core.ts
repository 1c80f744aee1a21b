import type { JWTPayload } from 'jose'
import { PluginError } from '../shared/errors'
import { matchScopes, type MatchMode } from '../shared/scopes/match'
import { readScopes } from '../shared/scopes/parse'
import type { Config, DefaultRuleConfig, RuleConfig } from './schema'

/** What one request needs, once its route and method are known. */
export type Requirement =
  | { readonly kind: 'allow' }
  | { readonly kind: 'deny' }
  | {
      readonly kind: 'scopes'
      readonly scopes: readonly string[]
      readonly match: MatchMode
      readonly logOnly: boolean
    }

/** The rules of one rule list, indexed by method. */
export interface MethodPolicy {
  readonly byMethod: ReadonlyMap<string, Requirement>
  /** For every method `byMethod` does not hold. */
  readonly unlisted: Requirement
  /** False when every method gets the same requirement, so the method need not be read. */
  readonly dependsOnMethod: boolean
}

/** The config compiled once per plugin instance. */
export interface Policy {
  readonly top: MethodPolicy
  /** Route name or id → its policy; empty when the config has no per-route entries. */
  readonly routes: ReadonlyMap<string, MethodPolicy>
  readonly scopeClaims: readonly string[]
  readonly wildcardSuffix: boolean
  readonly publishGroups: boolean
  readonly realm: string
}

function sameRequirement(a: Requirement, b: Requirement): boolean {
  if (a.kind !== 'scopes' || b.kind !== 'scopes') return a.kind === b.kind
  return (
    a.match === b.match &&
    a.logOnly === b.logOnly &&
    a.scopes.length === b.scopes.length &&
    a.scopes.every((s, i) => s === b.scopes[i])
  )
}

function fromRule(rule: RuleConfig | DefaultRuleConfig): Requirement {
  return { kind: 'scopes', scopes: rule.scopes ?? [], match: rule.match, logOnly: rule.log_only }
}

function compileRules(rules: readonly RuleConfig[], unlisted: Requirement): MethodPolicy {
  const byMethod = new Map<string, Requirement>()
  for (const rule of rules) {
    const requirement = fromRule(rule)
    for (const method of rule.methods) byMethod.set(method, requirement)
  }
  const dependsOnMethod = [...byMethod.values()].some((r) => !sameRequirement(r, unlisted))
  return { byMethod, unlisted, dependsOnMethod }
}

/** Indexes a parsed config for the request path: nothing is searched per request. */
export function compilePolicy(config: Config): Policy {
  const unlisted: Requirement =
    config.default_rule !== null
      ? fromRule(config.default_rule)
      : config.allow_unlisted_methods
        ? { kind: 'allow' }
        : { kind: 'deny' }
  return {
    top: compileRules(config.rules, unlisted),
    routes: new Map(
      config.routes.map((entry) => [entry.route, compileRules(entry.rules, unlisted)]),
    ),
    scopeClaims: config.scope_claims,
    wildcardSuffix: config.wildcard_suffix,
    publishGroups: config.publish_groups,
    realm: config.realm,
  }
}

/** The rule list for a route: its own entry (matched by name, then id), else the top level. */
export function policyForRoute(
  policy: Policy,
  route: { readonly id: string; readonly name?: string | null } | undefined,
): MethodPolicy {
  if (route === undefined) return policy.top
  return (
    (typeof route.name === 'string' ? policy.routes.get(route.name) : undefined) ??
    policy.routes.get(route.id) ??
    policy.top
  )
}

/** Kong reports methods upper-case; tolerate anything else rather than fall to `unlisted`. */
export function requirementFor(methods: MethodPolicy, method: string | undefined): Requirement {
  if (method === undefined) return methods.unlisted
  return methods.byMethod.get(method.toUpperCase()) ?? methods.unlisted
}

export type Verdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly logOnly: boolean; readonly error: PluginError }

/**
 * The decision for one request. `claims` is undefined when no plugin shared a verified token:
 * that is a missing login (401), never a 403, whatever the rule. A method refused by default
 * (no rule, unlisted methods denied) is a 403 with no scope to ask for.
 */
export function authorize(
  requirement: Requirement,
  claims: JWTPayload | undefined,
  policy: Pick<Policy, 'scopeClaims' | 'wildcardSuffix'>,
  method: string | undefined,
): Verdict {
  if (requirement.kind === 'allow') return { allowed: true }
  const logOnly = requirement.kind === 'scopes' && requirement.logOnly
  const on = method === undefined ? 'this request' : method
  if (claims === undefined) {
    return {
      allowed: false,
      logOnly,
      error: new PluginError(
        'ERR_SCOPE_CONTEXT_MISSING',
        `no verified token in kong.ctx.shared for ${on}`,
      ),
    }
  }
  if (requirement.kind === 'deny') {
    return {
      allowed: false,
      logOnly: false,
      error: new PluginError(
        'ERR_SCOPE_INSUFFICIENT',
        `no rule allows ${on} and unlisted methods are denied`,
      ),
    }
  }
  const granted = readScopes(claims, policy.scopeClaims)
  const result = matchScopes(granted, requirement.scopes, {
    match: requirement.match,
    wildcardSuffix: policy.wildcardSuffix,
  })
  if (result.satisfied) return { allowed: true }
  return {
    allowed: false,
    logOnly,
    error: new PluginError(
      'ERR_SCOPE_INSUFFICIENT',
      `${on} needs ${requirement.match} of [${requirement.scopes.join(' ')}], missing [${result.missing.join(' ')}]`,
      { challenge: { scope: requirement.scopes.join(' ') } },
    ),
  }
}

/**
 * The groups to publish for Kong's acl plugin: the token's scopes, sorted so the
 * X-Authenticated-Groups header Kong's acl derives from them is stable.
 */
export function groupsOf(claims: JWTPayload, scopeClaims: readonly string[]): string[] {
  return [...readScopes(claims, scopeClaims)].sort()
}
