import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { ConnectionOptions } from 'node:tls'
import type { Logger } from '../logger'
import { describeRedis, type RedisSettings } from '../schema/redis-fields'

/**
 * Process-wide Redis connections, keyed by connection settings (protocol doc §1.6: plugin
 * instances are created per config and per worker, dropped without a hook, and re-created, so
 * they must not own sockets). Every instance with the same settings shares one command
 * connection and one subscriber connection for the life of the process.
 */

export type RedisClient = Redis | Cluster

/** How a client is tuned. The request path wants answers fast or not at all. */
export interface RedisTuning {
  /** Per-command timeout (ioredis `commandTimeout`); undefined: none. */
  readonly commandTimeoutMs: number | undefined
  /**
   * Request path: no offline queue, no per-request retries: while Redis is unreachable a
   * command fails at once instead of waiting for a reconnect. The CLI turns this off and
   * waits for the connection instead.
   */
  readonly failFast: boolean
}

/** Reconnect backoff: 50 ms doubling to 2 s, with jitter so a fleet does not reconnect in step. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(50 * 2 ** Math.min(attempt, 10), 2000)
  return Math.round(base / 2 + Math.random() * (base / 2))
}

function tlsOptions(settings: RedisSettings, host: string | undefined): ConnectionOptions {
  const servername = settings.tls_server_name ?? host
  return {
    rejectUnauthorized: settings.tls_verify,
    ...(servername !== undefined && !/^[\d.:]+$/.test(servername) ? { servername } : {}),
  }
}

function commonOptions(settings: RedisSettings, tuning: RedisTuning): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: settings.connect_timeout_ms,
    ...(tuning.commandTimeoutMs !== undefined ? { commandTimeout: tuning.commandTimeoutMs } : {}),
    enableOfflineQueue: !tuning.failFast,
    maxRetriesPerRequest: tuning.failFast ? 0 : 1,
    retryStrategy: reconnectDelay,
    enableReadyCheck: true,
    autoResubscribe: true,
    keepAlive: 10_000,
    connectionName: 'kong-jwt-toolkit',
    // Wait before destroying a socket that ignores end(); only closing (CLI, tests) waits on it.
    disconnectTimeout: 200,
  }
}

/** The ioredis options of a single-server or Sentinel deployment (exported for tests). */
export function redisOptions(settings: RedisSettings, tuning: RedisTuning): RedisOptions {
  const options: RedisOptions = { ...commonOptions(settings, tuning), db: settings.database }
  if (settings.mode === 'sentinel') {
    Object.assign(options, {
      sentinels: settings.sentinels.map((n) => ({ host: n.host, port: n.port })),
      name: settings.sentinel_name,
      sentinelUsername: settings.sentinel_username,
      sentinelPassword: settings.sentinel_password,
      sentinelRetryStrategy: reconnectDelay,
      sentinelCommandTimeout: tuning.commandTimeoutMs,
      // Follow Sentinel's +switch-master at once: without it the client keeps reading a demoted
      // master (seen ~10 s after a planned failover), and revocations on the new master pass.
      failoverDetector: true,
      ...(settings.tls
        ? {
            tls: tlsOptions(settings, undefined),
            enableTLSForSentinelMode: true,
            sentinelTLS: tlsOptions(settings, undefined),
          }
        : {}),
    } satisfies RedisOptions)
  } else if (settings.url.startsWith('/')) {
    options.path = settings.url
  } else {
    const u = new URL(settings.url)
    options.host = u.hostname.replace(/^\[(.*)\]$/, '$1')
    options.port = u.port === '' ? 6379 : Number(u.port)
    if (u.username !== '') options.username = decodeURIComponent(u.username)
    if (u.password !== '') options.password = decodeURIComponent(u.password)
    const db = u.pathname.replace(/^\//, '')
    if (/^\d+$/.test(db)) options.db = Number(db)
    if (u.protocol === 'rediss:' || settings.tls) options.tls = tlsOptions(settings, options.host)
  }
  if (settings.username !== undefined) options.username = settings.username
  if (settings.password !== undefined) options.password = settings.password
  return options
}

/** The ioredis options of a Cluster deployment (exported for tests). */
export function clusterOptions(settings: RedisSettings, tuning: RedisTuning): ClusterOptions {
  const node: RedisOptions = {
    ...commonOptions(settings, tuning),
    ...(settings.username !== undefined ? { username: settings.username } : {}),
    ...(settings.password !== undefined ? { password: settings.password } : {}),
    ...(settings.tls ? { tls: tlsOptions(settings, undefined) } : {}),
  }
  return {
    lazyConnect: true,
    enableOfflineQueue: !tuning.failFast,
    enableReadyCheck: true,
    clusterRetryStrategy: reconnectDelay,
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 50,
    maxRedirections: 4,
    slotsRefreshTimeout: settings.connect_timeout_ms,
    redisOptions: node,
  }
}

/** A new, unshared client. The CLI uses this; the plugin goes through {@link sharedRedis}. */
export function createRedisClient(settings: RedisSettings, tuning: RedisTuning): RedisClient {
  if (settings.mode === 'cluster') {
    return new Cluster(
      settings.cluster_nodes.map((n) => ({ host: n.host, port: n.port })),
      clusterOptions(settings, tuning),
    )
  }
  return new Redis(redisOptions(settings, tuning))
}

/**
 * Waits until `client` can take commands, starting the connection if it never was.
 * @throws Error when it is not ready within `timeoutMs`.
 */
export async function waitReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return
  if (client.status === 'wait') client.connect().catch(() => undefined)
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('error', onError)
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`Redis not ready within ${timeoutMs} ms (status ${client.status})`))
    }, timeoutMs)
    timer.unref()
    const onReady = (): void => {
      done()
      resolve()
    }
    // Redis refusing the connection (a wrong password) is known at once: no need to wait out
    // the timeout, and it must not read as an outage (see isRefusalByRedis).
    const onError = (error: unknown): void => {
      if (!isRefusalByRedis(error)) return
      done()
      reject(error)
    }
    client.once('ready', onReady)
    client.on('error', onError)
  })
}

export interface ChannelListener {
  onMessage(message: string): void
  /** true once the channel is subscribed, false as soon as the subscription may miss messages. */
  onLive(live: boolean): void
}

/** One shared Redis deployment: a command client and, on demand, a subscriber. */
export class SharedRedis {
  readonly client: RedisClient
  #subscriber: RedisClient | undefined
  readonly #listeners = new Map<string, Set<ChannelListener>>()
  #epoch = 0
  #lastErrorLog = 0
  #refusal: Error | undefined

  constructor(
    readonly settings: RedisSettings,
    tuning: RedisTuning,
    private readonly logger: Logger,
  ) {
    this.client = createRedisClient(settings, tuning)
    this.client.on('error', (error: unknown) => {
      if (isRefusalByRedis(error)) this.#refusal = error
      this.logError('command connection', error)
    })
    this.client.on('ready', () => {
      this.#refusal = undefined
    })
  }

  /**
   * Why Redis refused the command connection (a wrong password, an ACL user without the
   * commands we need), while it is not ready; undefined otherwise. Such a Redis is misconfigured,
   * not down: it must not count as an outage that `fail_open` would pass.
   */
  refusal(): Error | undefined {
    return this.client.status === 'ready' ? undefined : this.#refusal
  }

  /** Subscribes `listener` to `channel`; the first call opens the subscriber connection. */
  subscribe(channel: string, listener: ChannelListener): void {
    let set = this.#listeners.get(channel)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(channel, set)
    }
    set.add(listener)
    const sub = this.#subscriber ?? this.startSubscriber()
    if (sub.status === 'ready') this.subscribeChannel(sub, channel, [listener])
  }

  /**
   * SUBSCRIBEs and then tells the listeners they are live, unless the connection went down
   * meanwhile (the epoch moved): then the next 'ready' does it again.
   */
  private subscribeChannel(
    sub: RedisClient,
    channel: string,
    listeners: Iterable<ChannelListener>,
  ): void {
    const epoch = this.#epoch
    sub.subscribe(channel).then(
      () => {
        if (epoch !== this.#epoch || sub.status !== 'ready') return
        for (const l of listeners) l.onLive(true)
      },
      (error: unknown) => this.logError('subscribe', error),
    )
  }

  private startSubscriber(): RedisClient {
    // The subscriber queues its SUBSCRIBE while connecting and has no command timeout: it
    // carries no request, only invalidations.
    const sub = createRedisClient(this.settings, { commandTimeoutMs: undefined, failFast: false })
    this.#subscriber = sub
    sub.on('error', (error: unknown) => this.logError('subscriber connection', error))
    sub.on('message', (channel: string, message: string) => {
      for (const l of this.#listeners.get(channel) ?? []) l.onMessage(message)
    })
    const down = (): void => {
      this.#epoch++
      for (const set of this.#listeners.values()) for (const l of set) l.onLive(false)
    }
    sub.on('close', down)
    sub.on('reconnecting', down)
    sub.on('end', down)
    sub.on('ready', () => {
      for (const [channel, set] of this.#listeners) this.subscribeChannel(sub, channel, [...set])
    })
    sub.connect().catch(() => undefined)
    return sub
  }

  private logError(what: string, error: unknown): void {
    const now = Date.now()
    if (now - this.#lastErrorLog < 10_000) return
    this.#lastErrorLog = now
    const message = error instanceof Error ? error.message : String(error)
    this.logger.warn(`redis ${describeRedis(this.settings)} ${what}: ${message}`)
  }

  /** Closes both connections (tests and the CLI; the plugin never closes). */
  async close(): Promise<void> {
    const all = [this.client, this.#subscriber].filter((c): c is RedisClient => c !== undefined)
    // QUIT is queued behind anything pending on a connection that is not up: drop those at once.
    await Promise.all(
      all.map(async (c) => {
        if (c.status !== 'ready') c.disconnect()
        else await c.quit().catch(() => c.disconnect())
      }),
    )
  }
}

const REGISTRY = new Map<string, SharedRedis>()

/** The process-wide connection for these settings, created on first use. */
export function sharedRedis(
  settings: RedisSettings,
  tuning: RedisTuning,
  logger: Logger,
): SharedRedis {
  const key = JSON.stringify([settings, tuning])
  let shared = REGISTRY.get(key)
  if (shared === undefined) {
    shared = new SharedRedis(settings, tuning, logger)
    REGISTRY.set(key, shared)
  }
  return shared
}

/** Closes and forgets every shared connection (tests only). */
export async function closeSharedRedis(): Promise<void> {
  const all = [...REGISTRY.values()]
  REGISTRY.clear()
  await Promise.all(all.map((s) => s.close()))
}

/**
 * Redis error replies that mean the deployment is down, busy or moving: an outage. Every other
 * reply (WRONGPASS, NOAUTH, NOPERM, ERR from a script, WRONGTYPE, …) is Redis refusing what we
 * asked, which no wait or failover mends.
 */
const OUTAGE_REPLIES = new Set([
  'BUSY',
  'LOADING',
  'MASTERDOWN',
  'READONLY',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'NOREPLICAS',
  'OOM',
  'MOVED',
  'ASK',
])

/** Whether `error` is an error reply of Redis that is not an outage (see OUTAGE_REPLIES). */
export function isRefusalByRedis(error: unknown): error is Error {
  if (!(error instanceof Error) || !(error instanceof ReplyError)) return false
  const code = /^[A-Z]+/.exec(error.message)?.[0] ?? ''
  // A server out of connections (maxclients) is full, not refusing us: an outage.
  if (/^ERR max number of clients reached/.test(error.message)) return false
  return !OUTAGE_REPLIES.has(code)
}
