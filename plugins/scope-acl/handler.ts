import type { Logger } from '../shared/logger'
import { stderrLogger } from '../shared/logger'
import { adaptKong } from '../shared/pdk/adapt'
import { runPhase, tryParse, type ParsedConfig } from '../shared/pdk/boundary'
import type { Pdk } from '../shared/pdk/port'
import { readVerifiedToken } from '../shared/pdk/shared-context'
import {
  authorize,
  compilePolicy,
  groupsOf,
  policyForRoute,
  requirementFor,
  type Policy,
} from './core'
import { parseConfig } from './schema'

export const NAME = 'scope-acl'

/** Where Kong's acl plugin looks for groups when there is no consumer (protocol doc §6.2). */
export const AUTHENTICATED_GROUPS_KEY = 'authenticated_groups'

/**
 * The access phase, with as few Kong round trips as the config allows: the route only when
 * there are per-route entries, the method only when the applicable rules differ by method,
 * the token only when a rule needs it (or groups are published), the groups only when asked.
 */
export async function checkAccess(pdk: Pdk, policy: Policy, logger: Logger): Promise<void> {
  const methods = policyForRoute(
    policy,
    policy.routes.size > 0 ? await pdk.router.getRoute() : undefined,
  )
  const method = methods.dependsOnMethod ? await pdk.request.getMethod() : undefined
  const requirement = requirementFor(methods, method)
  if (requirement.kind === 'allow' && !policy.publishGroups) return

  const token = await readVerifiedToken(pdk)
  const verdict = authorize(requirement, token?.claims, policy, method)
  if (!verdict.allowed) {
    if (!verdict.logOnly) throw verdict.error
    logger.warn(`log-only: would refuse with ${verdict.error.message}`)
  }
  if (policy.publishGroups && token !== undefined) {
    await pdk.ctx.set(AUTHENTICATED_GROUPS_KEY, groupsOf(token.claims, policy.scopeClaims))
  }
}

export interface ScopeAclDeps {
  /** Turns what kong-pdk passes a phase into the port; tests hand FakeKong through as is. */
  readonly adapt?: (kong: unknown) => Pdk
  readonly logger?: Logger
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

  constructor(raw: unknown, deps: ScopeAclDeps = {}) {
    this.#config = tryParse((value) => compilePolicy(parseConfig(value)), raw)
    this.#adapt = deps.adapt ?? adaptKong
    this.#logger = deps.logger ?? stderrLogger(NAME)
  }

  async access(kong: unknown): Promise<void> {
    const realm = this.#config.ok ? this.#config.value.realm : 'kong'
    await runPhase(
      this.#adapt(kong),
      this.#config,
      { plugin: NAME, realm, logger: this.#logger },
      (pdk, policy) => checkAccess(pdk, policy, this.#logger),
    )
  }
}
