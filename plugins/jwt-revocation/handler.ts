import { nowSeconds, systemClock, type Clock } from '../shared/clock'
import { PluginError } from '../shared/errors'
import { stderrLogger, type Logger } from '../shared/logger'
import { adaptKong } from '../shared/pdk/adapt'
import { runPhase, tryParse, type ParsedConfig } from '../shared/pdk/boundary'
import type { KongConsumer, Pdk } from '../shared/pdk/port'
import { readVerifiedToken } from '../shared/pdk/shared-context'
import { sharedRevocationStore } from '../shared/revocation/redis-revocation-store'
import {
  isRevocationUnavailable,
  type RevocationStore,
} from '../shared/revocation/revocation-store'
import {
  checkTimes,
  consumerTargets,
  decide,
  needsConsumer,
  onUnavailable,
  tokenTargets,
  type ConsumerRef,
} from './core'
import { parseConfig, type Config } from './schema'

export const NAME = 'jwt-revocation'

export interface HandlerDeps {
  readonly logger?: Logger
  /** Where lookups go; defaults to the process-wide Redis store for the config's settings. */
  readonly storeFor?: (config: Config, logger: Logger) => RevocationStore
  readonly clock?: Clock
}

function defaultStore(config: Config, logger: Logger): RevocationStore {
  return sharedRevocationStore(
    config.redis,
    { prefix: config.key_prefix, timeoutMs: config.timeout_ms, cacheTtlMs: config.cache_ttl_ms },
    logger,
  )
}

/**
 * The access phase. With a token and every kind checked it makes 2 PDK calls (3 round trips
 * with the event): read the shared token, read the consumer; the consumer call is skipped when
 * `consumer` is not checked. Redis costs at most one MGET, none when the cache answers.
 */
export async function checkRevocation(
  pdk: Pdk,
  config: Config,
  store: () => RevocationStore,
  logger: Logger,
  unavailableLog: (line: string) => void = (line) => logger.warn(line),
  clock: Clock = systemClock,
): Promise<void> {
  const token = await readVerifiedToken(pdk)
  if (token === undefined) {
    if (config.require_token) {
      throw new PluginError(
        'ERR_SCOPE_CONTEXT_MISSING',
        'no verified token in kong.ctx.shared (require_token = true)',
      )
    }
    return
  }
  checkTimes(token.claims, nowSeconds(clock))
  const targets = tokenTargets(token.claims, config)
  if (needsConsumer(config))
    targets.push(...consumerTargets(consumerRef(await pdk.client.getConsumer()), config))
  if (targets.length === 0) return

  let entries: Awaited<ReturnType<RevocationStore['lookup']>>
  try {
    entries = await store().lookup(targets)
  } catch (error) {
    if (!isRevocationUnavailable(error)) throw error
    unavailableLog(onUnavailable(config, error.message))
    return
  }
  decide(token.claims, targets, entries, config)
}

function consumerRef(consumer: KongConsumer | undefined): ConsumerRef | undefined {
  if (typeof consumer !== 'object' || consumer === null || typeof consumer.id !== 'string')
    return undefined
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
  readonly #config: ParsedConfig<Config>
  readonly #logger: Logger
  readonly #storeFor: (config: Config, logger: Logger) => RevocationStore
  readonly #unavailableLog: (line: string) => void
  readonly #clock: Clock
  #store: RevocationStore | undefined

  constructor(config: unknown, deps: HandlerDeps = {}) {
    this.#logger = deps.logger ?? stderrLogger(NAME)
    this.#storeFor = deps.storeFor ?? defaultStore
    this.#unavailableLog = throttledLog(this.#logger)
    this.#clock = deps.clock ?? systemClock
    this.#config = tryParse(parseConfig, config)
  }

  async access(kong: unknown): Promise<void> {
    await this.accessWith(adaptKong(kong))
  }

  /** The access phase against any port implementation (tests use a typed fake). */
  async accessWith(pdk: Pdk): Promise<void> {
    const realm = this.#config.ok ? this.#config.value.realm : 'kong'
    await runPhase(pdk, this.#config, { plugin: NAME, realm, logger: this.#logger }, (p, config) =>
      checkRevocation(
        p,
        config,
        () => this.store(config),
        this.#logger,
        this.#unavailableLog,
        this.#clock,
      ),
    )
  }

  /** Created on first use, never in the constructor: the shared store owns the connection. */
  private store(config: Config): RevocationStore {
    this.#store ??= this.#storeFor(config, this.#logger)
    return this.#store
  }
}
