import { systemClock, type Clock } from '../shared/clock'
import { isPluginError, PluginError } from '../shared/errors'
import { stderrLogger, type Logger } from '../shared/logger'
import { adaptKong } from '../shared/pdk/adapt'
import { runPhase, tryParse, type ParsedConfig, type PhaseOptions } from '../shared/pdk/boundary'
import { refusalLog, type RefusalLog } from '../shared/refusal-log'
import {
  asKongConsumer,
  asKongCredential,
  type HeaderPatch,
  type KongConsumer,
  type Pdk,
} from '../shared/pdk/port'
import { writeVerifiedToken } from '../shared/pdk/shared-context'
import { readScopes } from '../shared/scopes/parse'
import { cookieHeaderWithout, extractToken, queryWithout } from '../shared/token/extract'
import { importKeySource, type VerificationKey } from '../shared/token/keys'
import { AssertionSigner } from './assertion'
import { claimHeadersCleared, kongCredential, TokenVerifier, upstreamHeaders } from './core'
import { logRefusalsField } from '../shared/schema/kong-fields'
import { fields, parseConfig, type Config, type Credential } from './schema'
import type { JWTPayload } from 'jose'
import {
  defaultStore as defaultRevocationStore,
  RevocationCheck,
  throttledLog,
} from '../jwt-revocation/handler'
import type { Config as RevocationConfig } from '../jwt-revocation/schema'
import type { RevocationStore } from '../shared/revocation/revocation-store'
import { compilePolicy, type Policy } from '../scope-acl/core'
import { enforceRequirement, requirementOf } from '../scope-acl/handler'

export const NAME = 'consumer-jwt'

/** Header lines asked of Kong: its largest limit. A request at the limit may hide more. */
const MAX_HEADERS = 1000

export interface Runtime {
  readonly config: Config
  readonly verifier: TokenVerifier
  readonly consumers: ConsumerCache
  /** The compiled `scopes` rules; undefined when the config has none. */
  readonly policy: Policy | undefined
  /** The `revocation` check; undefined when the config has none. */
  readonly revocation: RevocationCheck | undefined
  /** Signs the gateway assertion (key imported once); undefined when `assertion` is off. */
  readonly assertion: AssertionSigner | undefined
}

export interface RuntimeDeps {
  readonly clock?: Clock
  readonly env?: NodeJS.ProcessEnv
  readonly fetch?: typeof fetch
  /** Where revocation lookups go; defaults to the process-wide Redis store for the settings. */
  readonly revocationStoreFor?: (config: RevocationConfig, logger: Logger) => RevocationStore
  readonly logger?: Logger
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
    const consumer = asKongConsumer(await pdk.client.loadConsumer(ref, true))
    // A missing consumer is remembered briefly only, so a consumer added by a config push
    // (which restarts instances anyway) or by the Admin API is found soon.
    const ttl = consumer !== undefined ? this.ttlMs : Math.min(this.ttlMs, 5000)
    if (ttl > 0) this.#entries.set(ref, { consumer, until: now + ttl })
    return consumer
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
  const logger = deps.logger ?? stderrLogger(NAME)
  const storeFor = deps.revocationStoreFor ?? defaultRevocationStore
  const revocationConfig = config.revocation
  return {
    config,
    verifier: new TokenVerifier(config, { clock, keyFor }),
    consumers: new ConsumerCache(config.consumer_cache_ttl * 1000, clock),
    policy: config.scopes === undefined ? undefined : compilePolicy(config.scopes),
    assertion:
      config.assertion === undefined ? undefined : new AssertionSigner(config.assertion, clock),
    revocation:
      revocationConfig === undefined
        ? undefined
        : new RevocationCheck(
            revocationConfig,
            () => storeFor(revocationConfig, logger),
            throttledLog(logger),
            clock,
          ),
  }
}

/**
 * The access phase: one event decides the request. Authentication, then, when configured, the
 * revocation lookup and the scope rules of this route and method, then the upstream headers,
 * and `kong.client.authenticate` as the very last call: a plugin server that dies mid-event
 * leaves no consumer authenticated, so Kong's acl guard refuses the request.
 *
 * Round trips on the cached path: the event, the headers, the upstream headers, authenticate
 * (4); one more each for the method (rules that differ by method), the route (per-route
 * rules), sharing the token (share_token). A refusal after reading the headers: 2. With an
 * `assertion`, the request line (method and path, one call) is read after verification and
 * the scope rules, and answers the rules' method: 5 with or without rules by method.
 */
export async function authenticate(pdk: Pdk, rt: Runtime, logger: Logger): Promise<void> {
  const { config } = rt
  const preflightSkipped = !config.run_on_preflight && (await pdk.request.getMethod()) === 'OPTIONS'
  if (
    preflightSkipped ||
    (config.anonymous !== undefined &&
      asKongCredential(await pdk.client.getCredential()) !== undefined)
  ) {
    // Not ours to authenticate (a preflight left alone; or logical OR: another auth plugin
    // already did), but the scope rules and the claim headers are still ours: rules that need
    // a token refuse, as scope-acl would, and a client's copy of a claim header never goes up.
    await enforceScopes(pdk, rt, undefined, logger, preflightSkipped ? 'OPTIONS' : undefined)
    // No assertion either: this plugin authenticated nobody, so the client's copy is removed.
    const clear = { ...claimHeadersCleared(config), ...rt.assertion?.cleared() }
    if (Object.keys(clear).length > 0) await pdk.serviceRequest.setHeaders(clear)
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
    const anonymous = await rt.consumers.load(pdk, config.anonymous)
    if (anonymous === undefined) {
      throw new PluginError(
        'ERR_CONFIG_INVALID',
        `anonymous consumer ${config.anonymous} not found`,
      )
    }
    const line = rt.assertion === undefined ? undefined : requestLine(pdk)
    await enforceScopes(line?.pdk ?? pdk, rt, undefined, logger)
    const request = await line?.read()
    await pdk.serviceRequest.setHeaders(
      await withAssertion(
        rt,
        upstreamHeaders(config, anonymous, undefined, undefined, undefined),
        request,
        () => ({ consumer: anonymous, credential: undefined, subject: undefined, scopes: [] }),
      ),
    )
    await pdk.client.authenticate(anonymous, null)
    return
  }

  const { extracted, verified, consumer } = outcome
  if (rt.revocation !== undefined) await rt.revocation.check(verified.claims, consumer)
  // Method and path in one call, read after verification (a refusal never pays for it); the
  // scope rules that need the method get it from there rather than from get_method.
  const line = rt.assertion === undefined ? undefined : requestLine(pdk)
  await enforceScopes(line?.pdk ?? pdk, rt, verified.claims, logger)
  const request = await line?.read()
  const hide = config.hide_credentials
    ? {
        origins: extracted.origins,
        cookieHeader: cookieHeaderWithout(headers.cookie ?? [], new Set(config.cookie_names)),
      }
    : undefined
  await pdk.serviceRequest.setHeaders(
    await withAssertion(
      rt,
      upstreamHeaders(config, consumer, verified.credential, verified.claims, hide),
      request,
      () => ({
        consumer,
        credential: verified.credential.key,
        subject: typeof verified.claims.sub === 'string' ? verified.claims.sub : undefined,
        scopes: readScopes(verified.claims, config.scope_claims),
      }),
    ),
  )
  if (
    hide !== undefined &&
    query !== undefined &&
    extracted.origins.some((o) => o.kind === 'query')
  ) {
    await pdk.serviceRequest.setRawQuery(queryWithout(query, new Set(config.uri_param_names)))
  }
  if (config.share_token) await writeVerifiedToken(pdk, verified.token)
  await pdk.client.authenticate(consumer, kongCredential(verified.credential, consumer))
}

/**
 * The request line (method and path, one call), read at most once: the port handed to the scope
 * rules answers get_method from it, so rules by method cost no call of their own, and rules that
 * refuse without the method leave it unread.
 */
function requestLine(pdk: Pdk): {
  readonly pdk: Pdk
  readonly read: () => Promise<{ readonly method: string; readonly path: string }>
} {
  let line: Promise<{ readonly method: string; readonly path: string }> | undefined
  const read = () => (line ??= AssertionSigner.readRequest(pdk))
  return {
    read,
    pdk: { ...pdk, request: { ...pdk.request, getMethod: async () => (await read()).method } },
  }
}

/**
 * The upstream headers with the signed assertion added, when configured: it travels in the
 * same set_headers call as the identity headers, so no extra round trip sets it.
 */
async function withAssertion(
  rt: Runtime,
  headers: HeaderPatch,
  request: { readonly method: string; readonly path: string } | undefined,
  /** Built only when an assertion is signed: no scope reading on every request otherwise. */
  facts: () => Omit<Parameters<AssertionSigner['sign']>[0], 'method' | 'path'>,
): Promise<HeaderPatch> {
  if (rt.assertion === undefined || request === undefined) return headers
  return { ...headers, [rt.assertion.header]: await rt.assertion.sign({ ...facts(), ...request }) }
}

/** The `scopes` rules for this request, if configured (scope-acl's decision, in this event). */
async function enforceScopes(
  pdk: Pdk,
  rt: Runtime,
  claims: JWTPayload | undefined,
  logger: Logger,
  knownMethod?: string,
): Promise<void> {
  if (rt.policy === undefined) return
  const { requirement, method } = await requirementOf(pdk, rt.policy, knownMethod)
  await enforceRequirement(pdk, rt.policy, requirement, claims, method, logger)
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
  readonly #phase: PhaseOptions

  constructor(config: unknown, deps: RuntimeDeps & { refusals?: RefusalLog } = {}) {
    this.#logger = deps.logger ?? stderrLogger(NAME)
    this.#runtime = tryParse((raw) => buildRuntime(raw, { ...deps, logger: this.#logger }), config)
    const settings = this.#runtime.ok ? this.#runtime.value.config : undefined
    this.#phase = {
      plugin: NAME,
      realm: settings?.realm ?? fields.realm.default,
      logger: this.#logger,
      refusals:
        deps.refusals ??
        refusalLog(NAME, settings?.log_refusals ?? logRefusalsField.default, this.#logger),
    }
  }

  async access(kong: unknown): Promise<void> {
    await this.accessWith(adaptKong(kong))
  }

  /** The access phase against any port implementation (tests use a typed fake). */
  async accessWith(pdk: Pdk): Promise<void> {
    await runPhase(pdk, this.#runtime, this.#phase, (p, rt) => authenticate(p, rt, this.#logger))
  }
}
