import type { Logger } from '../shared/logger'
import { stderrLogger } from '../shared/logger'
import { adaptKong } from '../shared/pdk/adapt'
import { runPhase, tryParse, type ParsedConfig, type PhaseOptions } from '../shared/pdk/boundary'
import { refusalLog, type RefusalLog, type RefusalLogMode } from '../shared/refusal-log'
import type { Pdk } from '../shared/pdk/port'
import { readVerifiedToken } from '../shared/pdk/shared-context'
import type { JWTPayload } from 'jose'
import {
  authorize,
  compilePolicy,
  groupsOf,
  policyForRoute,
  requirementFor,
  type Policy,
  type Requirement,
} from './core'
import { logRefusalsField } from '../shared/schema/kong-fields'
import { fields, parseConfig } from './schema'

export const NAME = 'scope-acl'

/** Where Kong's acl plugin looks for groups when there is no consumer (protocol doc §6.2). */
export const AUTHENTICATED_GROUPS_KEY = 'authenticated_groups'

/**
 * What this request needs, with as few Kong round trips as the policy allows: the route only
 * when there are per-route entries, the method only when the applicable rules differ by method
 * (and the caller does not know it already).
 */
export async function requirementOf(
  pdk: Pdk,
  policy: Policy,
  knownMethod?: string,
): Promise<{ readonly requirement: Requirement; readonly method: string | undefined }> {
  const methods = policyForRoute(
    policy,
    policy.routes.size > 0 ? await pdk.router.getRoute() : undefined,
  )
  const method = methods.dependsOnMethod
    ? (knownMethod ?? (await pdk.request.getMethod()))
    : knownMethod
  return { requirement: requirementFor(methods, method), method }
}

/**
 * Applies a requirement to the verified claims (undefined: no verified token): refuses, or in
 * log-only mode logs the refusal, then publishes the scopes as groups when asked (one call).
 * @throws PluginError ERR_SCOPE_INSUFFICIENT (403), ERR_SCOPE_CONTEXT_MISSING (401).
 */
export async function enforceRequirement(
  pdk: Pdk,
  policy: Policy,
  requirement: Requirement,
  claims: JWTPayload | undefined,
  method: string | undefined,
  logger: Logger,
): Promise<void> {
  const verdict = authorize(requirement, claims, policy, method)
  if (!verdict.allowed) {
    if (!verdict.logOnly) throw verdict.error
    logger.warn(`log-only: would refuse with ${verdict.error.message}`)
  }
  if (policy.publishGroups && claims !== undefined) {
    await pdk.ctx.set(AUTHENTICATED_GROUPS_KEY, groupsOf(claims, policy.scopeClaims))
  }
}

/**
 * The access phase: the requirement, then the shared token only when a rule needs it (or
 * groups are published).
 */
export async function checkAccess(pdk: Pdk, policy: Policy, logger: Logger): Promise<void> {
  const { requirement, method } = await requirementOf(pdk, policy)
  if (requirement.kind === 'allow' && !policy.publishGroups) return
  const token = await readVerifiedToken(pdk)
  await enforceRequirement(pdk, policy, requirement, token?.claims, method, logger)
}

export interface ScopeAclDeps {
  /** Turns what kong-pdk passes a phase into the port; tests hand FakeKong through as is. */
  readonly adapt?: (kong: unknown) => Pdk
  readonly logger?: Logger
  /** Where refusals go; defaults to the config's log_refusals. */
  readonly refusals?: RefusalLog
}

/**
 * The class kong-pdk instantiates once per configured scope-acl plugin (`new Plugin(config)`).
 * The config is parsed and compiled here, once; a bad one is kept and answered with a 500 on
 * every request, because a constructor that throws would leave Kong without an instance.
 */
export class ScopeAclPlugin {
  readonly #config: ParsedConfig<Policy>
  readonly #adapt: (kong: unknown) => Pdk
  readonly #logger: Logger
  readonly #phase: PhaseOptions

  constructor(raw: unknown, deps: ScopeAclDeps = {}) {
    let mode: RefusalLogMode = logRefusalsField.default
    this.#config = tryParse((value) => {
      const parsed = parseConfig(value)
      mode = parsed.log_refusals
      return compilePolicy(parsed)
    }, raw)
    this.#adapt = deps.adapt ?? adaptKong
    this.#logger = deps.logger ?? stderrLogger(NAME)
    this.#phase = {
      plugin: NAME,
      realm: this.#config.ok ? this.#config.value.realm : fields.realm.default,
      logger: this.#logger,
      refusals: deps.refusals ?? refusalLog(NAME, mode, this.#logger),
    }
  }

  async access(kong: unknown): Promise<void> {
    await runPhase(this.#adapt(kong), this.#config, this.#phase, (pdk, policy) =>
      checkAccess(pdk, policy, this.#logger),
    )
  }
}
