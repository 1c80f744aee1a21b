import { recordOf, type ArrayField, type KongField, type RecordField } from './kong-fields'
import { readRecord } from './read'

/**
 * The shared Redis connection record, embedded by every plugin that talks to Redis (as Kong's
 * rate-limiting embeds kong/tools/redis/schema.lua as `config.redis`). Three deployments:
 *
 * - `single`: one server by `url`: `redis://[user:pass@]host:port/db`, `rediss://…` for TLS, or
 *   the path of a Unix socket (`/run/redis/redis.sock`).
 * - `sentinel`: `sentinels` (`host:port` list) and the master group `sentinel_name`.
 * - `cluster`: seed `cluster_nodes` (`host:port` list).
 *
 * Credentials given as fields win over credentials inside the URL. Secrets are
 * `referenceable` (Kong vault references) and never logged.
 */
export interface RedisSettings {
  readonly mode: 'single' | 'sentinel' | 'cluster'
  readonly url: string
  readonly username: string | undefined
  readonly password: string | undefined
  readonly database: number
  readonly tls: boolean
  readonly tls_verify: boolean
  readonly tls_server_name: string | undefined
  readonly sentinels: readonly HostPort[]
  readonly sentinel_name: string | undefined
  readonly sentinel_username: string | undefined
  readonly sentinel_password: string | undefined
  readonly cluster_nodes: readonly HostPort[]
  readonly connect_timeout_ms: number
}

export interface HostPort {
  readonly host: string
  readonly port: number
}

const hostPortList = (description: string) =>
  ({
    type: 'array',
    elements: { type: 'string', match: '^[^%s]+:%d+$' },
    default: [],
    description,
  }) as const satisfies ArrayField

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

export const REDIS_FIELDS = {
  mode: {
    type: 'string',
    default: 'single',
    one_of: ['single', 'sentinel', 'cluster'],
    required: true,
    description:
      'Redis deployment: `single` (one server given by `url`), `sentinel` (`sentinels` + `sentinel_name`) or `cluster` (`cluster_nodes`).',
  },
  url: {
    type: 'string',
    default: DEFAULT_REDIS_URL,
    required: true,
    referenceable: true,
    description:
      'Single mode: `redis://[user:password@]host:port[/db]`, `rediss://…` for TLS, or an absolute Unix socket path. Ignored in sentinel and cluster modes.',
  },
  username: {
    type: 'string',
    required: false,
    referenceable: true,
    description: 'ACL user name (Redis 6+). Overrides a user name given in `url`.',
  },
  password: {
    type: 'string',
    required: false,
    referenceable: true,
    encrypted: true,
    description:
      'Password (of the ACL user, or `requirepass`). Overrides a password in `url`. Never logged.',
  },
  database: {
    type: 'integer',
    default: 0,
    between: [0, 15],
    description:
      'Database index. Overridden by a `/db` path in `url`; must stay 0 in cluster mode.',
  },
  tls: {
    type: 'boolean',
    default: false,
    description:
      'Use TLS to the Redis servers (sentinel and cluster modes; single mode uses a `rediss://` URL).',
  },
  tls_verify: {
    type: 'boolean',
    default: true,
    description:
      "Verify the server's TLS certificate against the system CAs. Turn off only for tests.",
  },
  tls_server_name: {
    type: 'string',
    required: false,
    description:
      'SNI name and name to verify in the server certificate, when it differs from the host.',
  },
  sentinels: hostPortList('Sentinel mode: the Sentinel servers as `host:port` strings.'),
  sentinel_name: {
    type: 'string',
    required: false,
    description:
      'Sentinel mode: the name of the monitored master group (`sentinel monitor <name> …`).',
  },
  sentinel_username: {
    type: 'string',
    required: false,
    referenceable: true,
    description:
      'Sentinel mode: ACL user name for the Sentinels themselves, when they require one.',
  },
  sentinel_password: {
    type: 'string',
    required: false,
    referenceable: true,
    encrypted: true,
    description:
      'Sentinel mode: password for the Sentinels themselves (`requirepass` of the Sentinels). Never logged.',
  },
  cluster_nodes: hostPortList(
    'Cluster mode: seed nodes as `host:port` strings; the rest of the cluster is discovered.',
  ),
  connect_timeout_ms: {
    type: 'integer',
    default: 1000,
    between: [50, 60_000],
    description:
      'How long one connection attempt may take before it is abandoned and retried with backoff.',
  },
} as const satisfies Record<keyof RedisSettings, KongField>

/** The `redis` record field, to embed in a plugin's schema. */
export function redisRecordField(description: string): RecordField {
  return { type: 'record', required: true, description, fields: recordOf(REDIS_FIELDS) }
}

/**
 * Reads the record against REDIS_FIELDS (defaults, types and bounds from there) and checks the
 * rules Kong cannot express. Absent means "the defaults"; anything else that is not a record is
 * a mistake, never {}. A referenceable field (url and the credentials) that is "" is refused
 * rather than read as unset: Kong substitutes "" for a vault reference it cannot resolve, and
 * for `url` unset would mean the local default Redis.
 * @throws PluginError ERR_CONFIG_INVALID naming the field at `path`.
 */
export function parseRedisSettings(raw: unknown, path = 'redis'): RedisSettings {
  const r = readRecord(raw ?? {}, REDIS_FIELDS, path)
  /** Kong sends "" for some unset strings; these have no default to fall back on. */
  const optional = (field: 'tls_server_name' | 'sentinel_name'): string | undefined =>
    r.read(field) || undefined
  const nodes = (field: 'sentinels' | 'cluster_nodes'): HostPort[] =>
    r
      .read(field, { pattern: 'host:port' })
      .map((item) => parseHostPort(item) ?? fail(field, `${JSON.stringify(item)} is not host:port`))
  const fail = (field: keyof RedisSettings, why: string): never => {
    throw r.invalid(field, why)
  }

  const mode = r.read('mode')
  const url = r.read('url')
  const settings: RedisSettings = {
    mode,
    url,
    username: r.read('username'),
    password: r.read('password'),
    database: r.read('database'),
    tls: r.read('tls'),
    tls_verify: r.read('tls_verify'),
    tls_server_name: optional('tls_server_name'),
    sentinels: nodes('sentinels'),
    sentinel_name: optional('sentinel_name'),
    sentinel_username: r.read('sentinel_username'),
    sentinel_password: r.read('sentinel_password'),
    cluster_nodes: nodes('cluster_nodes'),
    connect_timeout_ms: r.read('connect_timeout_ms'),
  }
  if (mode === 'single' && !isRedisUrl(url)) {
    fail('url', 'must start with redis:// or rediss://, or be an absolute Unix socket path')
  }
  if (mode === 'sentinel') {
    if (settings.sentinels.length === 0)
      fail('sentinels', 'sentinel mode needs at least one sentinel')
    if (settings.sentinel_name === undefined)
      fail('sentinel_name', 'sentinel mode needs the master group name')
  }
  if (mode === 'cluster') {
    if (settings.cluster_nodes.length === 0)
      fail('cluster_nodes', 'cluster mode needs at least one node')
    if (settings.database !== 0) fail('database', 'Redis Cluster only has database 0')
  }
  return Object.freeze(settings)
}

export function isRedisUrl(url: string): boolean {
  if (url.startsWith('/')) return true
  try {
    const u = new URL(url)
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== ''
  } catch {
    return false
  }
}

/** `host:port`, `[v6addr]:port`. */
export function parseHostPort(value: string): HostPort | undefined {
  const m = /^\[?([^\s\]]+?)\]?:(\d{1,5})$/.exec(value.trim())
  if (m === null) return undefined
  const port = Number(m[2])
  if (port < 1 || port > 65_535) return undefined
  return { host: m[1] as string, port }
}

/**
 * A redacted one-line description for logs: the deployment and its hosts, never a secret.
 */
export function describeRedis(settings: RedisSettings): string {
  const list = (n: readonly HostPort[]): string => n.map((h) => `${h.host}:${h.port}`).join(',')
  switch (settings.mode) {
    case 'single':
      if (settings.url.startsWith('/')) return `unix:${settings.url}`
      try {
        const u = new URL(settings.url)
        return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`
      } catch {
        return 'redis (unparsable url)'
      }
    case 'sentinel':
      return `sentinel ${settings.sentinel_name ?? '?'} via ${list(settings.sentinels)}`
    case 'cluster':
      return `cluster via ${list(settings.cluster_nodes)}`
  }
}
