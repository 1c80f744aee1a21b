/**
 * Loader for Kong's declarative configuration (kong.yml, `_format_version: "3.0"`).
 *
 * Supported: services (url, or protocol/host/port/path), routes (nested or top-level with a
 * `service` reference), upstreams with targets, consumers (id, username, custom_id, tags, nested
 * plugins, key-auth credentials, jwt_secrets and acls), plugins at global / service / route /
 * consumer scope (nested, or top-level referring to entities by name or id), `enabled`. Field
 * defaults are Kong's (route: strip_path true, preserve_host false, path_handling v0, protocols
 * http/https, …). Plugin `config` is validated later against the plugin's dumped schema
 * (cli/kong/schema.ts); the bundled acl plugin's schema-level rules (no consumer scope, exactly one
 * of config.allow / config.deny) are checked here.
 */
import crypto from 'node:crypto'
import { parseDocument, type Document, type LineCounter } from 'yaml'
import { isPlainObject } from './values'

export const DEFAULT_WS_ID = '0dc6f45b-8f8d-40d2-a504-473544ee190b'

export interface ServiceEntity {
  readonly id: string
  readonly name?: string
  readonly protocol: string
  readonly host: string
  readonly port: number
  readonly path?: string
  readonly retries: number
  readonly connect_timeout: number
  readonly write_timeout: number
  readonly read_timeout: number
  readonly enabled: boolean
  readonly tags?: readonly string[]
  readonly created_at: number
  readonly updated_at: number
  readonly ws_id: string
}

export interface RouteEntity {
  readonly id: string
  readonly name?: string
  readonly paths?: readonly string[]
  readonly hosts?: readonly string[]
  readonly methods?: readonly string[]
  readonly headers?: Readonly<Record<string, readonly string[]>>
  readonly strip_path: boolean
  readonly preserve_host: boolean
  readonly regex_priority: number
  readonly path_handling: string
  readonly protocols: readonly string[]
  readonly https_redirect_status_code: number
  readonly request_buffering: boolean
  readonly response_buffering: boolean
  readonly service?: { readonly id: string }
  readonly tags?: readonly string[]
  readonly created_at: number
  readonly updated_at: number
  readonly ws_id: string
}

export interface ConsumerEntity {
  readonly id: string
  readonly username?: string
  readonly custom_id?: string
  readonly tags?: readonly string[]
  readonly created_at: number
  readonly updated_at: number
}

export interface TargetEntity {
  readonly host: string
  readonly port: number
  readonly weight: number
}

export interface UpstreamEntity {
  readonly id: string
  readonly name: string
  readonly targets: readonly TargetEntity[]
}

export interface PluginEntity {
  readonly id: string
  readonly name: string
  readonly config: Record<string, unknown>
  readonly enabled: boolean
  readonly route?: { readonly id: string }
  readonly service?: { readonly id: string }
  readonly consumer?: { readonly id: string }
  readonly instance_name?: string
  readonly protocols: readonly string[]
  readonly tags?: readonly string[]
}

export interface KeyAuthCredential {
  readonly id: string
  readonly key: string
  readonly consumer: { readonly id: string }
  readonly created_at: number
}

/** A `jwt_secrets` row (Kong's kong/plugins/jwt/daos.lua); absent fields are left out, as Kong's DAO does. */
export interface JwtSecret {
  readonly id: string
  readonly key: string
  readonly secret: string
  readonly rsa_public_key?: string
  readonly algorithm: string
  readonly consumer: { readonly id: string }
  readonly tags?: readonly string[]
  readonly created_at: number
}

/** daos.lua `algorithm` one_of; the second list must carry an rsa_public_key that parses as a key. */
export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
] as const
const JWT_ALGORITHMS_NEEDING_KEY = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA']
const JWT_SECRET_KEYS = [
  'id',
  'key',
  'secret',
  'rsa_public_key',
  'algorithm',
  'tags',
  'consumer',
  'created_at',
]

/** An `acls` row (Kong's kong/plugins/acl/daos.lua): one group of one consumer. */
export interface AclEntity {
  readonly id: string
  readonly consumer: { readonly id: string }
  readonly group: string
  readonly tags?: readonly string[]
  readonly created_at: number
}

const ACL_KEYS = ['id', 'consumer', 'group', 'tags', 'created_at']

/**
 * Where each entity was written in the file, as a path such as `services[0].routes[2]` or
 * `plugins[1]`, index for index with the entity lists of DeclarativeConfig.
 */
export interface EntitySources {
  readonly services: readonly string[]
  readonly routes: readonly string[]
  readonly consumers: readonly string[]
  readonly plugins: readonly string[]
  readonly acls: readonly string[]
}

export interface DeclarativeConfig {
  readonly services: readonly ServiceEntity[]
  readonly routes: readonly RouteEntity[]
  readonly consumers: readonly ConsumerEntity[]
  readonly upstreams: readonly UpstreamEntity[]
  readonly plugins: readonly PluginEntity[]
  readonly keyauthCredentials: readonly KeyAuthCredential[]
  readonly jwtSecrets: readonly JwtSecret[]
  readonly acls: readonly AclEntity[]
  /** Where each entity was written (set by buildConfig; absent in hand-built configs). */
  readonly sources?: EntitySources
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

type Raw = Record<string, unknown>

/** A stable UUID for an entity that has no `id`, so reloading the same file keeps the same ids. */
export function stableId(kind: string, key: string): string {
  const h = crypto.createHash('sha1').update(`${kind}:${key}`).digest('hex')
  const variant = ((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(18, 20)}-${h.slice(20, 32)}`
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${what}: expected a string`)
  return v
}

function optStr(v: unknown, what: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, what)
}

function strList(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new ConfigError(`${what}: expected an array of strings`)
  }
  return v.length === 0 ? undefined : v
}

function list(v: unknown, what: string): Raw[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v) || !v.every(isPlainObject))
    throw new ConfigError(`${what}: expected a list of entities`)
  return v
}

function checkKeys(raw: Raw, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(raw)) {
    if (!allowed.includes(k)) throw new ConfigError(`${what}: unknown field '${k}'`)
  }
}

const SERVICE_KEYS = [
  'id',
  'name',
  'url',
  'protocol',
  'host',
  'port',
  'path',
  'retries',
  'connect_timeout',
  'write_timeout',
  'read_timeout',
  'enabled',
  'tags',
  'routes',
  'plugins',
  'tls_verify',
  'tls_verify_depth',
  'ca_certificates',
  'client_certificate',
]
const ROUTE_KEYS = [
  'id',
  'name',
  'paths',
  'hosts',
  'methods',
  'headers',
  'strip_path',
  'preserve_host',
  'regex_priority',
  'path_handling',
  'protocols',
  'https_redirect_status_code',
  'request_buffering',
  'response_buffering',
  'service',
  'tags',
  'plugins',
  'snis',
  'sources',
  'destinations',
]
const CONSUMER_KEYS = ['id', 'username', 'custom_id', 'tags', 'plugins']
const CREDENTIAL_KEYS = [
  'keyauth_credentials',
  'basicauth_credentials',
  'jwt_secrets',
  'acls',
  'hmacauth_credentials',
  'oauth2_credentials',
  'mtls_auth_credentials',
]
const PLUGIN_KEYS = [
  'id',
  'name',
  'config',
  'enabled',
  'route',
  'service',
  'consumer',
  'instance_name',
  'protocols',
  'tags',
  'ordering',
]

interface Scope {
  service?: string
  route?: string
  consumer?: string
}

/** Parses kong.yml text (YAML or JSON) into normalised entities. */
export function parseDeclarativeConfig(
  text: string,
  now = Math.floor(Date.now() / 1000),
): DeclarativeConfig {
  let doc: unknown
  try {
    doc = parseKongYaml(text)
  } catch (e) {
    throw new ConfigError(`failed parsing declarative configuration: ${(e as Error).message}`)
  }
  if (!isPlainObject(doc)) throw new ConfigError('declarative configuration must be a map')
  return buildConfig(doc, now)
}

/**
 * YAML as Kong 3.9 reads a declarative file (lyaml 6.2.8, YAML 1.1): anchors, aliases and `<<`
 * merge keys resolved (explicit keys win over merged ones), then every aliased table copied,
 * as Kong's declarative_config.lua does (cycle_aware_deep_copy), so entities never share one.
 * Everything that reads kong.yml in this project goes through here.
 */
export function parseKongYaml(text: string): unknown {
  return kongYamlValue(parseKongYamlDocument(text))
}

/**
 * The YAML document of a kong.yml, source positions kept (with `lineCounter`, offsets become
 * lines and columns). Throws the first YAML error, which carries its line and column.
 */
export function parseKongYamlDocument(text: string, lineCounter?: LineCounter): Document {
  const doc = parseDocument(text, { merge: true, ...(lineCounter ? { lineCounter } : {}) })
  const [first] = doc.errors
  if (first !== undefined) throw first
  return doc
}

/** A parsed kong.yml document as the plain value Kong builds its entities from. */
export function kongYamlValue(doc: Document): unknown {
  const value: unknown = doc.toJS()
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown)
}

export function buildConfig(doc: Raw, now: number): DeclarativeConfig {
  const version = doc['_format_version']
  if (version !== '3.0' && version !== '2.1' && version !== '1.1') {
    throw new ConfigError(`_format_version: expected "3.0" (got ${JSON.stringify(version)})`)
  }
  checkKeys(
    doc,
    [
      '_format_version',
      '_transform',
      '_comment',
      '_workspace',
      'services',
      'routes',
      'consumers',
      'plugins',
      'upstreams',
      ...CREDENTIAL_KEYS,
    ],
    'declarative configuration',
  )
  const services: ServiceEntity[] = []
  const routes: RouteEntity[] = []
  const consumers: ConsumerEntity[] = []
  const upstreams: UpstreamEntity[] = []
  const pendingPlugins: Array<{ raw: Raw; scope: Scope; where: string }> = []
  const keyauth: Array<{ raw: Raw; consumer?: string }> = []
  const jwt: Array<{ raw: Raw; consumer: string; where: string }> = []
  // idKey: the consumer as Kong's id generation sees it (nested: parent id; top level: as written)
  const acl: Array<{ raw: Raw; consumer: string; idKey: string; where: string }> = []
  const pendingRoutes: Array<{ raw: Raw; serviceRef?: string; where: string }> = []
  const sources = {
    services: [] as string[],
    routes: [] as string[],
    consumers: [] as string[],
    plugins: [] as string[],
  }

  list(doc['services'], 'services').forEach((raw, i) => {
    const where = `services[${i}]`
    checkKeys(raw, SERVICE_KEYS, where)
    const svc = buildService(raw, where, now)
    services.push(svc)
    sources.services.push(where)
    list(raw['routes'], `${where}.routes`).forEach((r, j) =>
      pendingRoutes.push({ raw: r, serviceRef: svc.id, where: `${where}.routes[${j}]` }),
    )
    list(raw['plugins'], `${where}.plugins`).forEach((p, j) =>
      pendingPlugins.push({ raw: p, scope: { service: svc.id }, where: `${where}.plugins[${j}]` }),
    )
  })
  list(doc['routes'], 'routes').forEach((r, j) => {
    const ref = r['service']
    const refStr = isPlainObject(ref)
      ? optStr(ref['id'] ?? ref['name'], `routes[${j}].service`)
      : optStr(ref, `routes[${j}].service`)
    pendingRoutes.push({
      raw: r,
      ...(refStr !== undefined ? { serviceRef: refStr } : {}),
      where: `routes[${j}]`,
    })
  })
  for (const pr of pendingRoutes) {
    checkKeys(pr.raw, ROUTE_KEYS, pr.where)
    const svc =
      pr.serviceRef === undefined ? undefined : findService(services, pr.serviceRef, pr.where)
    const route = buildRoute(pr.raw, svc, pr.where, now)
    routes.push(route)
    sources.routes.push(pr.where)
    list(pr.raw['plugins'], `${pr.where}.plugins`).forEach((p, j) =>
      pendingPlugins.push({
        raw: p,
        scope: { route: route.id },
        where: `${pr.where}.plugins[${j}]`,
      }),
    )
  }
  list(doc['consumers'], 'consumers').forEach((raw, i) => {
    const where = `consumers[${i}]`
    checkKeys(raw, [...CONSUMER_KEYS, ...CREDENTIAL_KEYS], where)
    const username = optStr(raw['username'], `${where}.username`)
    const customId = optStr(raw['custom_id'], `${where}.custom_id`)
    if (username === undefined && customId === undefined) {
      throw new ConfigError(
        `${where}: at least one of these fields must be non-empty: 'custom_id', 'username'`,
      )
    }
    const tags = strList(raw['tags'], `${where}.tags`)
    const c: ConsumerEntity = {
      id:
        optStr(raw['id'], `${where}.id`) ??
        stableId('consumers', username ?? `custom:${customId ?? ''}`),
      ...(username !== undefined ? { username } : {}),
      ...(customId !== undefined ? { custom_id: customId } : {}),
      ...(tags ? { tags } : {}),
      created_at: now,
      updated_at: now,
    }
    consumers.push(c)
    sources.consumers.push(where)
    list(raw['plugins'], `${where}.plugins`).forEach((p, j) =>
      pendingPlugins.push({ raw: p, scope: { consumer: c.id }, where: `${where}.plugins[${j}]` }),
    )
    list(raw['keyauth_credentials'], `${where}.keyauth_credentials`).forEach((k) =>
      keyauth.push({ raw: k, consumer: c.id }),
    )
    list(raw['jwt_secrets'], `${where}.jwt_secrets`).forEach((j, n) =>
      jwt.push({ raw: j, consumer: c.id, where: `${where}.jwt_secrets[${n}]` }),
    )
    list(raw['acls'], `${where}.acls`).forEach((a, n) =>
      acl.push({ raw: a, consumer: c.id, idKey: c.id, where: `${where}.acls[${n}]` }),
    )
  })
  list(doc['keyauth_credentials'], 'keyauth_credentials').forEach((k) => {
    const ref = k['consumer']
    const id = isPlainObject(ref) ? ref['id'] : ref
    keyauth.push({
      raw: k,
      consumer: findConsumer(
        consumers,
        str(id, 'keyauth_credentials.consumer'),
        'keyauth_credentials',
      ).id,
    })
  })
  list(doc['jwt_secrets'], 'jwt_secrets').forEach((j, n) => {
    const ref = j['consumer']
    const id = isPlainObject(ref) ? (ref['id'] ?? ref['username']) : ref
    const where = `jwt_secrets[${n}]`
    jwt.push({
      raw: j,
      consumer: findConsumer(consumers, str(id, `${where}.consumer`), where).id,
      where,
    })
  })
  list(doc['acls'], 'acls').forEach((a, n) => {
    const ref = a['consumer']
    const id = isPlainObject(ref) ? (ref['id'] ?? ref['username']) : ref
    const where = `acls[${n}]`
    const refText = str(id, `${where}.consumer`)
    acl.push({
      raw: a,
      consumer: findConsumer(consumers, refText, where).id,
      idKey: refText,
      where,
    })
  })
  list(doc['upstreams'], 'upstreams').forEach((raw, i) => {
    const where = `upstreams[${i}]`
    const name = str(raw['name'], `${where}.name`)
    const targets = list(raw['targets'], `${where}.targets`).map((t, j) => {
      const target = str(t['target'], `${where}.targets[${j}].target`)
      const [host, port] = splitHostPort(target, 8000)
      const weight = t['weight'] === undefined ? 100 : Number(t['weight'])
      return { host, port, weight }
    })
    upstreams.push({
      id: optStr(raw['id'], `${where}.id`) ?? stableId('upstreams', name),
      name,
      targets,
    })
  })
  list(doc['plugins'], 'plugins').forEach((raw, i) => {
    const where = `plugins[${i}]`
    const scope: Scope = {}
    const ref = (k: 'service' | 'route' | 'consumer'): string | undefined => {
      const v = raw[k]
      if (v === undefined || v === null) return undefined
      const key = isPlainObject(v) ? (v['id'] ?? v['name'] ?? v['username']) : v
      return str(key, `${where}.${k}`)
    }
    const s = ref('service')
    const r = ref('route')
    const c = ref('consumer')
    if (s !== undefined) scope.service = findService(services, s, where).id
    if (r !== undefined) scope.route = findRoute(routes, r, where).id
    if (c !== undefined) scope.consumer = findConsumer(consumers, c, where).id
    pendingPlugins.push({ raw, scope, where })
  })

  const plugins: PluginEntity[] = []
  const seen = new Set<string>()
  for (const { raw, scope, where } of pendingPlugins) {
    checkKeys(raw, PLUGIN_KEYS, where)
    const name = str(raw['name'], `${where}.name`)
    const key = `${name}:${scope.route ?? ''}:${scope.service ?? ''}:${scope.consumer ?? ''}`
    if (seen.has(key)) {
      throw new ConfigError(
        `${where}: uniqueness violation: 'plugins' entity with name '${name}' already declared for this scope`,
      )
    }
    seen.add(key)
    const config = raw['config'] ?? {}
    if (!isPlainObject(config)) throw new ConfigError(`${where}.config: expected a record`)
    checkBundledPluginRules(name, config, scope, where)
    const enabled = raw['enabled'] ?? true
    if (typeof enabled !== 'boolean') throw new ConfigError(`${where}.enabled: expected a boolean`)
    const instanceName = optStr(raw['instance_name'], `${where}.instance_name`)
    const tags = strList(raw['tags'], `${where}.tags`)
    sources.plugins.push(where)
    plugins.push({
      id: optStr(raw['id'], `${where}.id`) ?? stableId('plugins', key),
      name,
      config,
      enabled,
      ...(scope.route !== undefined ? { route: { id: scope.route } } : {}),
      ...(scope.service !== undefined ? { service: { id: scope.service } } : {}),
      ...(scope.consumer !== undefined ? { consumer: { id: scope.consumer } } : {}),
      ...(instanceName !== undefined ? { instance_name: instanceName } : {}),
      protocols: strList(raw['protocols'], `${where}.protocols`) ?? [
        'grpc',
        'grpcs',
        'http',
        'https',
      ],
      ...(tags ? { tags } : {}),
    })
  }
  const keyauthCredentials = keyauth.map(({ raw, consumer }, i) => {
    const key = str(raw['key'], `keyauth_credentials[${i}].key`)
    return {
      id: optStr(raw['id'], `keyauth_credentials[${i}].id`) ?? stableId('keyauth_credentials', key),
      key,
      consumer: { id: consumer ?? '' },
      created_at: now,
    }
  })
  const jwtSecrets = jwt.map(({ raw, consumer, where }) =>
    buildJwtSecret(raw, consumer, where, now),
  )
  const dup = jwtSecrets.find((j, i) => jwtSecrets.findIndex((o) => o.key === j.key) !== i)
  if (dup)
    throw new ConfigError(
      `jwt_secrets: uniqueness violation: 'jwt_secrets' entity with key set to '${dup.key}' already declared`,
    )
  const acls = acl.map(({ raw, consumer, idKey, where }) =>
    buildAcl(raw, consumer, idKey, where, now),
  )
  const dupAcl = acls.find((a, i) => acls.findIndex((o) => o.id === a.id) !== i)
  if (dupAcl)
    throw new ConfigError(
      `acls: uniqueness violation: 'acls' entity with primary key set to '${dupAcl.id}' already declared`,
    )
  return {
    services,
    routes,
    consumers,
    upstreams,
    plugins,
    keyauthCredentials,
    jwtSecrets,
    acls,
    sources: { ...sources, acls: acl.map((a) => a.where) },
  }
}

/**
 * An `acls` row. Without an id, the id is derived from the consumer as written and the group, as
 * Kong's declarative_config.lua derives it from the cache key before references are resolved:
 * one group declared twice under one consumer is a primary-key clash, while the same pair
 * declared once nested and once top-level (by username) gives two rows.
 */
function buildAcl(
  raw: Raw,
  consumer: string,
  idKey: string,
  where: string,
  now: number,
): AclEntity {
  checkKeys(raw, ACL_KEYS, where)
  const group = str(raw['group'], `${where}.group`)
  const tags = strList(raw['tags'], `${where}.tags`)
  return {
    id: optStr(raw['id'], `${where}.id`) ?? stableId('acls', `${idKey}:${group}`),
    consumer: { id: consumer },
    group,
    ...(tags ? { tags } : {}),
    created_at: num(raw['created_at'], now, `${where}.created_at`),
  }
}

/** Kong's schema is_nonempty: not nil/null, not an empty table, not "". */
function isNonEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return false
  if (Array.isArray(v)) return v.length > 0
  if (isPlainObject(v)) return Object.keys(v).length > 0
  return true
}

/**
 * The parts of a bundled plugin's Kong schema that sit outside `config.fields` (which
 * cli/kong/schema.ts checks): kong/plugins/acl/schema.lua's `consumer = typedefs.no_consumer`
 * and its entity checks `only_one_of` + `at_least_one_of` on config.allow / config.deny, with
 * the messages of kong/db/schema/init.lua.
 */
function checkBundledPluginRules(name: string, config: Raw, scope: Scope, where: string): void {
  if (name !== 'acl') return
  if (scope.consumer !== undefined) throw new ConfigError(`${where}.consumer: value must be null`)
  const fields = ["'config.allow'", "'config.deny'"].join(', ')
  const set = [config['allow'], config['deny']].filter(isNonEmpty).length
  const errors: string[] = []
  if (set !== 1) errors.push(`exactly one of these fields must be non-empty: ${fields}`)
  if (set === 0) errors.push(`at least one of these fields must be non-empty: ${fields}`)
  if (errors.length > 0) throw new ConfigError(`${where}: ${errors.join('; ')}`)
}

/** Kong's `auto` string fields: utils.random_string(), 32 hex characters. */
function randomString(): string {
  return crypto.randomUUID().replace(/-/g, '')
}

function buildJwtSecret(raw: Raw, consumer: string, where: string, now: number): JwtSecret {
  checkKeys(raw, JWT_SECRET_KEYS, where)
  const key = optStr(raw['key'], `${where}.key`) ?? randomString()
  const algorithm = optStr(raw['algorithm'], `${where}.algorithm`) ?? 'HS256'
  if (!(JWT_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new ConfigError(`${where}.algorithm: expected one of: ${JWT_ALGORITHMS.join(', ')}`)
  }
  const rsaPublicKey = optStr(raw['rsa_public_key'], `${where}.rsa_public_key`)
  if (JWT_ALGORITHMS_NEEDING_KEY.includes(algorithm)) {
    if (rsaPublicKey === undefined)
      throw new ConfigError(`${where}.rsa_public_key: required field missing`)
    try {
      crypto.createPublicKey(rsaPublicKey)
    } catch {
      throw new ConfigError(`${where}.rsa_public_key: invalid key`)
    }
  }
  const tags = strList(raw['tags'], `${where}.tags`)
  return {
    id: optStr(raw['id'], `${where}.id`) ?? stableId('jwt_secrets', key),
    key,
    secret: optStr(raw['secret'], `${where}.secret`) ?? randomString(),
    ...(rsaPublicKey !== undefined ? { rsa_public_key: rsaPublicKey } : {}),
    algorithm,
    consumer: { id: consumer },
    ...(tags ? { tags } : {}),
    created_at: num(raw['created_at'], now, `${where}.created_at`),
  }
}

function splitHostPort(s: string, defPort: number): [string, number] {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(s)
  if (!m || m[1] === undefined) throw new ConfigError(`invalid target '${s}'`)
  return [m[1], m[2] !== undefined ? Number(m[2]) : defPort]
}

function num(v: unknown, def: number, what: string): number {
  if (v === undefined || v === null) return def
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new ConfigError(`${what}: expected an integer`)
  return v
}

function bool(v: unknown, def: boolean, what: string): boolean {
  if (v === undefined || v === null) return def
  if (typeof v !== 'boolean') throw new ConfigError(`${what}: expected a boolean`)
  return v
}

function buildService(raw: Raw, where: string, now: number): ServiceEntity {
  let protocol = 'http'
  let host: string
  let port: number | undefined
  let path: string | undefined
  const url = optStr(raw['url'], `${where}.url`)
  if (url !== undefined) {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      throw new ConfigError(`${where}.url: invalid url '${url}'`)
    }
    protocol = u.protocol.replace(/:$/, '')
    host = u.hostname.replace(/^\[|\]$/g, '')
    port = u.port === '' ? undefined : Number(u.port)
    path = u.pathname === '/' && !/^[a-z]+:\/\/[^/]+\/$/i.test(url) ? undefined : u.pathname
  } else {
    protocol = optStr(raw['protocol'], `${where}.protocol`) ?? 'http'
    host = str(raw['host'], `${where}.host`)
    port = raw['port'] === undefined ? undefined : num(raw['port'], 80, `${where}.port`)
    path = optStr(raw['path'], `${where}.path`)
  }
  if (protocol !== 'http' && protocol !== 'https') {
    throw new ConfigError(
      `${where}.protocol: only http and https services are emulated (got '${protocol}')`,
    )
  }
  const name = optStr(raw['name'], `${where}.name`)
  const tags = strList(raw['tags'], `${where}.tags`)
  return {
    id:
      optStr(raw['id'], `${where}.id`) ??
      stableId('services', name ?? `${host}:${port ?? ''}${path ?? ''}`),
    ...(name !== undefined ? { name } : {}),
    protocol,
    host,
    port: port ?? (protocol === 'https' ? 443 : 80),
    ...(path !== undefined ? { path } : {}),
    retries: num(raw['retries'], 5, `${where}.retries`),
    connect_timeout: num(raw['connect_timeout'], 60000, `${where}.connect_timeout`),
    write_timeout: num(raw['write_timeout'], 60000, `${where}.write_timeout`),
    read_timeout: num(raw['read_timeout'], 60000, `${where}.read_timeout`),
    enabled: bool(raw['enabled'], true, `${where}.enabled`),
    ...(tags ? { tags } : {}),
    created_at: now,
    updated_at: now,
    ws_id: DEFAULT_WS_ID,
  }
}

function buildRoute(
  raw: Raw,
  svc: ServiceEntity | undefined,
  where: string,
  now: number,
): RouteEntity {
  const paths = strList(raw['paths'], `${where}.paths`)
  const hosts = strList(raw['hosts'], `${where}.hosts`)
  const methods = strList(raw['methods'], `${where}.methods`)?.map((m) => m.toUpperCase())
  let headers: Record<string, string[]> | undefined
  if (raw['headers'] !== undefined && raw['headers'] !== null) {
    if (!isPlainObject(raw['headers'])) throw new ConfigError(`${where}.headers: expected a map`)
    headers = {}
    for (const [k, v] of Object.entries(raw['headers'])) {
      headers[k.toLowerCase()] = strList(v, `${where}.headers.${k}`) ?? []
    }
  }
  if (!paths && !hosts && !methods && !headers) {
    throw new ConfigError(
      `${where}: must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'`,
    )
  }
  for (const p of paths ?? []) {
    if (!p.startsWith('/') && !p.startsWith('~'))
      throw new ConfigError(`${where}.paths: should start with: / (fixed path) or ~/ (regex path)`)
    if (p.startsWith('~')) {
      try {
        new RegExp(p.slice(1))
      } catch (e) {
        throw new ConfigError(`${where}.paths: invalid regex '${p}': ${(e as Error).message}`)
      }
    }
  }
  const name = optStr(raw['name'], `${where}.name`)
  const tags = strList(raw['tags'], `${where}.tags`)
  const pathHandling = optStr(raw['path_handling'], `${where}.path_handling`) ?? 'v0'
  if (pathHandling !== 'v0' && pathHandling !== 'v1')
    throw new ConfigError(`${where}.path_handling: expected v0 or v1`)
  return {
    id:
      optStr(raw['id'], `${where}.id`) ??
      stableId('routes', name ?? `${svc?.id ?? ''}:${JSON.stringify([paths, hosts, methods])}`),
    ...(name !== undefined ? { name } : {}),
    ...(paths ? { paths } : {}),
    ...(hosts ? { hosts } : {}),
    ...(methods ? { methods } : {}),
    ...(headers ? { headers } : {}),
    strip_path: bool(raw['strip_path'], true, `${where}.strip_path`),
    preserve_host: bool(raw['preserve_host'], false, `${where}.preserve_host`),
    regex_priority: num(raw['regex_priority'], 0, `${where}.regex_priority`),
    path_handling: pathHandling,
    protocols: strList(raw['protocols'], `${where}.protocols`) ?? ['http', 'https'],
    https_redirect_status_code: num(
      raw['https_redirect_status_code'],
      426,
      `${where}.https_redirect_status_code`,
    ),
    request_buffering: bool(raw['request_buffering'], true, `${where}.request_buffering`),
    response_buffering: bool(raw['response_buffering'], true, `${where}.response_buffering`),
    ...(svc ? { service: { id: svc.id } } : {}),
    ...(tags ? { tags } : {}),
    created_at: now,
    updated_at: now,
    ws_id: DEFAULT_WS_ID,
  }
}

function findService(
  services: readonly ServiceEntity[],
  ref: string,
  where: string,
): ServiceEntity {
  const s = services.find((x) => x.id === ref || x.name === ref)
  if (!s) throw new ConfigError(`${where}: service '${ref}' not found`)
  return s
}

function findRoute(routes: readonly RouteEntity[], ref: string, where: string): RouteEntity {
  const r = routes.find((x) => x.id === ref || x.name === ref)
  if (!r) throw new ConfigError(`${where}: route '${ref}' not found`)
  return r
}

function findConsumer(
  consumers: readonly ConsumerEntity[],
  ref: string,
  where: string,
): ConsumerEntity {
  const c = consumers.find((x) => x.id === ref || x.username === ref)
  if (!c) throw new ConfigError(`${where}: consumer '${ref}' not found`)
  return c
}

/**
 * Resolves `{vault://env/NAME}` like Kong's env vault: NAME upper-cased, `-` → `_`, read from the
 * process environment (optionally `{vault://env/NAME/key}` reads a JSON value's key).
 */
export function resolveVaultReference(ref: string, env: NodeJS.ProcessEnv = process.env): string {
  const m = /^\{vault:\/\/([^/]+)\/([^/}]+)(?:\/([^}]+))?\}$/.exec(ref)
  if (!m || m[1] === undefined || m[2] === undefined)
    throw new ConfigError(`invalid vault reference '${ref}'`)
  if (m[1] !== 'env') throw new ConfigError(`vault '${m[1]}' is not emulated (only env): ${ref}`)
  const name = m[2].toUpperCase().replace(/-/g, '_')
  const value = env[name]
  if (value === undefined)
    throw new ConfigError(
      `could not resolve reference ${ref} (environment variable ${name} is not set)`,
    )
  if (m[3] === undefined) return value
  let doc: unknown
  try {
    doc = JSON.parse(value)
  } catch {
    throw new ConfigError(`could not resolve reference ${ref}: ${name} is not JSON`)
  }
  const v = isPlainObject(doc) ? doc[m[3]] : undefined
  if (typeof v !== 'string')
    throw new ConfigError(`could not resolve reference ${ref}: key '${m[3]}' not found`)
  return v
}
