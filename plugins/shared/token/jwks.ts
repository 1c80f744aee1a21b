import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { Clock } from '../clock'
import { PluginError } from '../errors'

export interface RemoteJwksOptions {
  readonly uri: string
  /** Longest a request waits on a fetch, ms. */
  readonly timeoutMs: number
  /** Age after which keys are refreshed in the background, ms. */
  readonly cacheTtlMs: number
  /** Least time between two refetches triggered by an unknown kid, ms. */
  readonly cooldownMs: number
  readonly clock: Clock
  readonly fetch?: typeof fetch
}

type LocalSet = ReturnType<typeof createLocalJWKSet>

/**
 * A JWKS endpoint, fetched on first use and cached. Unlike jose's createRemoteJWKSet, keys
 * stay usable while the endpoint is down (stale-if-error): a refresh that fails keeps the old
 * set. An unknown `kid` triggers at most one refetch per cooldown, and concurrent requests
 * share one fetch in flight. A request never waits longer than `timeoutMs` on a fetch.
 */
export class RemoteJwks {
  #set: LocalSet | undefined
  #fetchedAt = 0
  #lastAttempt = Number.NEGATIVE_INFINITY
  #inflight: Promise<void> | undefined
  #lastError: string | undefined
  readonly #o: RemoteJwksOptions

  constructor(options: RemoteJwksOptions) {
    this.#o = options
  }

  /** A key getter for jose's jwtVerify. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const now = this.#o.clock.now()
    let fetchedNow = false
    // Read into a local: the refresh below sets this.#set, which TypeScript's narrowing misses.
    let set = this.#set
    if (set === undefined) {
      await this.#refreshBounded()
      fetchedNow = true
      set = this.#set
      if (set === undefined) {
        throw new PluginError(
          'ERR_KEY_SOURCE_UNAVAILABLE',
          `JWKS ${this.#o.uri}: ${this.#lastError ?? 'no keys'}`,
        )
      }
    } else if (now - this.#fetchedAt > this.#o.cacheTtlMs) {
      void this.#refresh() // stale: refresh in the background, serve the old keys meanwhile
    }
    try {
      return await set(header, token)
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error
      // One wait per request at most: no refetch right after the first fetch, nor in cooldown.
      if (fetchedNow || this.#o.clock.now() - this.#lastAttempt < this.#o.cooldownMs) throw error
      await this.#refreshBounded()
      return (this.#set ?? set)(header, token)
    }
  }

  /** Whether a set of keys has been fetched (tests and diagnostics). */
  get loaded(): boolean {
    return this.#set !== undefined
  }

  async #refreshBounded(): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#o.timeoutMs)
      timer.unref()
    })
    try {
      await Promise.race([this.#refresh(), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  #refresh(): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight
    this.#lastAttempt = this.#o.clock.now()
    this.#inflight = this.#load()
      .then((set) => {
        this.#set = set
        this.#fetchedAt = this.#o.clock.now()
        this.#lastError = undefined
      })
      .catch((error: unknown) => {
        this.#lastError = error instanceof Error ? error.message : String(error)
      })
      .finally(() => {
        this.#inflight = undefined
      })
    return this.#inflight
  }

  async #load(): Promise<LocalSet> {
    const doFetch = this.#o.fetch ?? fetch
    const response = await doFetch(this.#o.uri, {
      headers: { accept: 'application/json, application/jwk-set+json' },
      redirect: 'error',
      signal: AbortSignal.timeout(Math.max(this.#o.timeoutMs * 5, 5000)),
    })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    const body = await response.json()
    if (
      typeof body !== 'object' ||
      body === null ||
      !Array.isArray((body as { keys?: unknown }).keys)
    ) {
      throw new Error('response is not a JSON Web Key Set')
    }
    return createLocalJWKSet(body as JSONWebKeySet)
  }
}

const registry = new Map<string, RemoteJwks>()

/**
 * One RemoteJwks per endpoint and settings for the life of the process: plugin instances
 * are restarted on every config push (recordings F9), the keys they fetched should not be.
 */
export function remoteJwks(options: RemoteJwksOptions): RemoteJwks {
  const id = JSON.stringify([
    options.uri,
    options.timeoutMs,
    options.cacheTtlMs,
    options.cooldownMs,
  ])
  let jwks = registry.get(id)
  if (jwks === undefined) {
    jwks = new RemoteJwks(options)
    registry.set(id, jwks)
  }
  return jwks
}
