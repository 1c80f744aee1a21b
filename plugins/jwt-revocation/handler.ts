import { nowSeconds, systemClock, type Clock } from '../shared/clock'
import { PluginError } from '../shared/errors'
import { stderrLogger, type Logger } from '../shared/logger'
import { adaptKong } from '../shared/pdk/adapt'
import { runPhase, tryParse, type ParsedConfig, type PhaseOptions } from '../shared/pdk/boundary'
import { refusalLog, type RefusalLog } from '../shared/refusal-log'
import { asKongConsumer, type KongConsumer, type Pdk } from '../shared/pdk/port'
import { readVerifiedToken } from '../shared/pdk/shared-context'
import { sharedRevocationStore } from '../shared/revocation/redis-revocation-store'
import {
  isRevocationUnavailable,
  type RevocationStore,
} from '../shared/revocation/revocation-store'
import type { JWTPayload } from 'jose'
import type { RevocationTarget } from '../shared/revocation/keys'
import {
  checkTimes,
  consumerTargets,
  decide,
  needsConsumer,
  onUnavailable,
  tokenTargets,
  type ConsumerRef,
} from './core'
import { logRefusalsField } from '../shared/schema/kong-fields'
import { fields, parseConfig, type Config } from './schema'

export const NAME = 'jwt-revocation'

export interface HandlerDeps {
  readonly logger?: Logger
  /** Where lookups go; defaults to the process-wide Redis store for the config's settings. */
  readonly storeFor?: (config: Config, logger: Logger) => RevocationStore
  readonly clock?: Clock
  /** Where refusals go; defaults to the config's log_refusals. */
  readonly refusals?: RefusalLog
}

/** The process-wide Redis store for these settings (one connection per distinct settings). */
export function defaultStore(config: Config, logger: Logger): RevocationStore {
  return sharedRevocationStore(
    config.redis,
    { prefix: config.key_prefix, timeoutMs: config.timeout_ms, cacheTtlMs: config.cache_ttl_ms },
    logger,
  )
}

/**
 * The revocation decision for one verified token, Redis lookup included: time limits, the keys
 * the claims and the consumer call for, one bounded lookup, the verdict. No PDK call; the
 * caller supplies the claims and the consumer. Used by this plugin's access phase and, in the
 * same event, by consumer-jwt's `revocation` setting.
 */
export class RevocationCheck {
  #store: RevocationStore | undefined

  constructor(
    readonly config: Config,
    private readonly storeFor: () => RevocationStore,
    private readonly unavailableLog: (line: string) => void,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Whether {@link check} uses the consumer (`consumer` is checked). */
  get needsConsumer(): boolean {
    return needsConsumer(this.config)
  }

  /**
   * The refusals the claims alone decide (time limits, a missing or malformed jti, sub, iss),
   * so a caller can refuse before fetching the consumer. Returns the claims' own keys.
   * @throws PluginError as {@link check} does, ERR_REVOCATION_UNAVAILABLE and ERR_TOKEN_REVOKED aside.
   */
  precheck(claims: JWTPayload): RevocationTarget[] {
    checkTimes(claims, nowSeconds(this.clock))
    return tokenTargets(claims, this.config)
  }

  /**
   * `tokenKeys`: what {@link precheck} returned, when the caller ran it already.
   * @throws PluginError ERR_TOKEN_REVOKED, ERR_CLAIM_MISSING, ERR_CLAIM_INVALID, ERR_TOKEN_EXPIRED,
   *   ERR_TOKEN_NOT_YET_VALID, or ERR_REVOCATION_UNAVAILABLE under fail_closed.
   */
  async check(
    claims: JWTPayload,
    consumer: KongConsumer | undefined,
    tokenKeys: readonly RevocationTarget[] = this.precheck(claims),
  ): Promise<void> {
    const targets = [...tokenKeys]
    targets.push(...consumerTargets(consumerRef(consumer), this.config))
    if (targets.length === 0) return

    let entries: Awaited<ReturnType<RevocationStore['lookup']>>
    try {
      // Created on first use, never in a constructor: the shared store owns the connection.
      this.#store ??= this.storeFor()
      entries = await this.#store.lookup(targets)
    } catch (error) {
      if (!isRevocationUnavailable(error)) throw error
      this.unavailableLog(onUnavailable(this.config, error.message))
      return
    }
    decide(claims, targets, entries, this.config)
  }
}

/**
 * The access phase. With a token and every kind checked it makes 2 PDK calls (3 round trips
 * with the event): read the shared token, read the consumer; the consumer call is skipped when
 * `consumer` is not checked. Redis costs at most one round trip, none when the cache answers.
 */
export async function checkRevocation(pdk: Pdk, revocation: RevocationCheck): Promise<void> {
  const token = await readVerifiedToken(pdk)
  if (token === undefined) {
    if (revocation.config.require_token) {
      throw new PluginError(
        'ERR_SCOPE_CONTEXT_MISSING',
        'no verified token in kong.ctx.shared (require_token = true)',
      )
    }
    return
  }
  // The claims first: a refusal there costs no consumer call.
  const tokenKeys = revocation.precheck(token.claims)
  const consumer = revocation.needsConsumer
    ? asKongConsumer(await pdk.client.getConsumer())
    : undefined
  await revocation.check(token.claims, consumer, tokenKeys)
}

function consumerRef(consumer: KongConsumer | undefined): ConsumerRef | undefined {
  if (consumer === undefined) return undefined
  return {
    id: consumer.id,
    username: typeof consumer.username === 'string' ? consumer.username : undefined,
  }
}

/**
 * At most one fail_open line per interval, with the count of requests passed meanwhile: an
 * outage under load must not flood Kong's error log.
 */
export function throttledLog(
  logger: Logger,
  intervalMs = 5000,
  now: () => number = Date.now,
): (line: string) => void {
  let last = Number.NEGATIVE_INFINITY
  let suppressed = 0
  return (line) => {
    const t = now()
    if (t - last < intervalMs) {
      suppressed++
      return
    }
    last = t
    logger.warn(suppressed > 0 ? `${line} [+${suppressed} more since the last report]` : line)
    suppressed = 0
  }
}

/** The class kong-pdk instantiates per plugin configuration; its constructor never throws. */
export class JwtRevocationHandler {
  readonly #check: ParsedConfig<RevocationCheck>
  readonly #phase: PhaseOptions

  constructor(config: unknown, deps: HandlerDeps = {}) {
    const logger = deps.logger ?? stderrLogger(NAME)
    const storeFor = deps.storeFor ?? defaultStore
    const unavailableLog = throttledLog(logger)
    this.#check = tryParse((raw) => {
      const parsed = parseConfig(raw)
      return new RevocationCheck(parsed, () => storeFor(parsed, logger), unavailableLog, deps.clock)
    }, config)
    const settings = this.#check.ok ? this.#check.value.config : undefined
    this.#phase = {
      plugin: NAME,
      realm: settings?.realm ?? fields.realm.default,
      logger,
      refusals:
        deps.refusals ??
        refusalLog(NAME, settings?.log_refusals ?? logRefusalsField.default, logger),
    }
  }

  async access(kong: unknown): Promise<void> {
    await this.accessWith(adaptKong(kong))
  }

  /** The access phase against any port implementation (tests use a typed fake). */
  async accessWith(pdk: Pdk): Promise<void> {
    await runPhase(pdk, this.#check, this.#phase, (p, check) => checkRevocation(p, check))
  }
}
