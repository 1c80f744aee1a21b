import { systemClock, type Clock } from '../shared/clock'
import { isPluginError, PluginError } from '../shared/errors'
import { stderrLogger, type Logger } from '../shared/logger'
import { adaptKong } from '../shared/pdk/adapt'
import { runPhase, tryParse, type ParsedConfig } from '../shared/pdk/boundary'
import type { KongConsumer, Pdk } from '../shared/pdk/port'
import { writeVerifiedToken } from '../shared/pdk/shared-context'
import { cookieHeaderWithout, extractToken, queryWithout } from '../shared/token/extract'
import { importKeySource, type VerificationKey } from '../shared/token/keys'
import { claimHeadersCleared, kongCredential, TokenVerifier, upstreamHeaders } from './core'
import { parseConfig, type Config, type Credential } from './schema'

export const NAME = 'consumer-jwt'

/** Header lines asked of Kong: its largest limit. A request at the limit may hide more. */
const MAX_HEADERS = 1000

export interface Runtime {
  readonly config: Config
  readonly verifier: TokenVerifier
  readonly consumers: ConsumerCache
}

export interface RuntimeDeps {
  readonly clock?: Clock
  readonly env?: NodeJS.ProcessEnv
  readonly fetch?: typeof fetch
}

/**
 * Consumers loaded from Kong, remembered for consumer_cache_ttl seconds (a miss costs one
 * round trip). Kong restarts plugin instances on every config push (recordings F9), which
 * drops this cache together with the instance.
 */
export class ConsumerCache {
  readonly #entries = new Map<string, { consumer: KongConsumer | undefined; until: number }>()
  constructor(
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  async load(pdk: Pdk, ref: string): Promise<KongConsumer | undefined> {
    const now = this.clock.now()
    const hit = this.#entries.get(ref)
    if (hit !== undefined && hit.until > now) return hit.consumer
    const consumer = await pdk.client.loadConsumer(ref, true)
    const found =
      typeof consumer === 'object' && consumer !== null && typeof consumer.id === 'string'
    // A missing consumer is remembered briefly only, so a consumer added by a config push
    // (which restarts instances anyway) or by the Admin API is found soon.
    const ttl = found ? this.ttlMs : Math.min(this.ttlMs, 5000)
    if (ttl > 0)
      this.#entries.set(ref, { consumer: found ? consumer : undefined, until: now + ttl })
    return found ? consumer : undefined
  }
}

export function buildRuntime(raw: unknown, deps: RuntimeDeps = {}): Runtime {
  const config = parseConfig(raw, deps.env ?? process.env)
  const clock = deps.clock ?? systemClock
  const keys = new Map<string, VerificationKey>()
  for (const credential of config.credentials.values()) {
    keys.set(
      credential.key,
      importKeySource(credential.keySource, {
        timeoutMs: config.jwks_timeout_ms,
        cacheTtlMs: config.jwks_cache_ttl * 1000,
        cooldownMs: config.jwks_cooldown * 1000,
        clock,
        ...(deps.fetch !== undefined ? { fetch: deps.fetch } : {}),
      }),
    )
  }
  const keyFor = (credential: Credential): VerificationKey => {
    const key = keys.get(credential.key)
    if (key === undefined)
      throw new PluginError('ERR_INTERNAL', `no key imported for ${credential.key}`)
    return key
  }
  return {
    config,
    verifier: new TokenVerifier(config, { clock, keyFor }),
    consumers: new ConsumerCache(config.consumer_cache_ttl * 1000, clock),
  }
}

/**
 * The access phase. On the cached path it makes 4 PDK calls (5 round trips with the event):
 * read the headers, authenticate, set the upstream headers, share the token. Refusals make
 * 1 call before the exit (2 round trips): read the headers, then exit.
 */
export async function authenticate(pdk: Pdk, rt: Runtime, logger: Logger): Promise<void> {
  const { config } = rt
  if (
    (config.anonymous !== undefined && (await pdk.client.getCredential()) !== undefined) ||
    (!config.run_on_preflight && (await pdk.request.getMethod()) === 'OPTIONS')
  ) {
    // Not ours to authenticate (logical OR: another auth plugin already did; or a preflight
    // left alone), but the claim headers are still ours: a client's copy never goes upstream.
    const clear = claimHeadersCleared(config)
    if (clear !== undefined) await pdk.serviceRequest.setHeaders(clear)
    return
  }

  const headers = await pdk.request.getHeaders(MAX_HEADERS)
  if (Object.values(headers).reduce((n, values) => n + values.length, 0) >= MAX_HEADERS) {
    throw new PluginError(
      'ERR_REQUEST_INVALID',
      `${MAX_HEADERS} header lines or more: a second token could hide past Kong's limit`,
    )
  }
  const query = config.uri_param_names.length > 0 ? await pdk.request.getQuery() : undefined

  let outcome: Awaited<ReturnType<typeof verifyRequest>>
  try {
    outcome = await verifyRequest(pdk, rt, headers, query)
  } catch (error) {
    // Only an authentication failure (401) falls back; a bad request or an outage does not.
    if (config.anonymous === undefined || !isPluginError(error) || error.status !== 401) throw error
    logger.info(`anonymous fallback after ${error.message}`)
    const anonymous = await rt.consumers.load(pdk, config.anonymous)
    if (anonymous === undefined) {
      throw new PluginError(
        'ERR_CONFIG_INVALID',
        `anonymous consumer ${config.anonymous} not found`,
      )
    }
    await pdk.client.authenticate(anonymous, null)
    await pdk.serviceRequest.setHeaders(
      upstreamHeaders(config, anonymous, undefined, undefined, undefined),
    )
    return
  }

  const { extracted, verified, consumer } = outcome
  await pdk.client.authenticate(consumer, kongCredential(verified.credential, consumer))
  const hide = config.hide_credentials
    ? {
        origins: extracted.origins,
        cookieHeader: cookieHeaderWithout(headers.cookie ?? [], new Set(config.cookie_names)),
      }
    : undefined
  await pdk.serviceRequest.setHeaders(
    upstreamHeaders(config, consumer, verified.credential, verified.claims, hide),
  )
  if (
    hide !== undefined &&
    query !== undefined &&
    extracted.origins.some((o) => o.kind === 'query')
  ) {
    await pdk.serviceRequest.setRawQuery(queryWithout(query, new Set(config.uri_param_names)))
  }
  await writeVerifiedToken(pdk, verified.token)
}

async function verifyRequest(
  pdk: Pdk,
  rt: Runtime,
  headers: Awaited<ReturnType<Pdk['request']['getHeaders']>>,
  query: Awaited<ReturnType<Pdk['request']['getQuery']>> | undefined,
) {
  const { config } = rt
  const extracted = extractToken(headers, query, {
    headerNames: config.header_names,
    cookieNames: config.cookie_names,
    queryNames: config.uri_param_names,
  })
  const verified = await rt.verifier.verify(extracted.token)
  const consumer = await rt.consumers.load(pdk, verified.credential.consumer)
  if (consumer === undefined) {
    throw new PluginError(
      'ERR_CONSUMER_NOT_FOUND',
      `credential ${verified.credential.key} names consumer ${verified.credential.consumer}, which Kong does not know`,
    )
  }
  return { extracted, verified, consumer }
}

/** The class kong-pdk instantiates per plugin configuration; its constructor never throws. */
export class ConsumerJwtHandler {
  readonly #runtime: ParsedConfig<Runtime>
  readonly #logger: Logger

  constructor(config: unknown, deps: RuntimeDeps & { logger?: Logger } = {}) {
    this.#logger = deps.logger ?? stderrLogger(NAME)
    this.#runtime = tryParse((raw) => buildRuntime(raw, deps), config)
  }

  async access(kong: unknown): Promise<void> {
    await this.accessWith(adaptKong(kong))
  }

  /** The access phase against any port implementation (tests use a typed fake). */
  async accessWith(pdk: Pdk): Promise<void> {
    const realm = this.#runtime.ok ? this.#runtime.value.config.realm : 'kong'
    await runPhase(pdk, this.#runtime, { plugin: NAME, realm, logger: this.#logger }, (p, rt) =>
      authenticate(p, rt, this.#logger),
    )
  }
}
