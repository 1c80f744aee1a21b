import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { parseDocument } from 'yaml'
import { parseConfig, type Config, type Credential } from '../../plugins/consumer-jwt/schema'
import { isPluginError } from '../../plugins/shared/errors'
import { jsonText } from '../../plugins/shared/json'
import { CliError, EXIT } from '../common'

/**
 * The consumer-jwt credentials of a declarative kong.yml, as the plugin itself reads them
 * (plugins/consumer-jwt/schema.ts parseConfig), for `token mint` and `token inspect`.
 *
 * The YAML reading is the first function alone, so it can be pointed at a shared loader later;
 * the rest works on the plain objects it returns.
 */

type Raw = Record<string, unknown>

const isRecord = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v)

/** kong.yml as plain data, YAML merge keys (`<<: *anchor`) applied as decK does. */
export function readDeclarativeConfig(path: string): Raw {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(error)
    throw new CliError(`--config ${path}: cannot read it (${why})`, EXIT.USAGE)
  }
  const doc = parseDocument(text, { merge: true, prettyErrors: true })
  const first = doc.errors[0]
  if (first !== undefined) {
    throw new CliError(
      `--config ${path}: not valid YAML: ${first.message.split('\n')[0] ?? ''}`,
      EXIT.USAGE,
    )
  }
  const data: unknown = doc.toJS({ maxAliasCount: 1000 })
  if (!isRecord(data)) {
    throw new CliError(
      `--config ${path}: not a Kong declarative config (a YAML mapping)`,
      EXIT.USAGE,
    )
  }
  return data
}

/** One consumer-jwt plugin of the file, where it is, and its config as written (merged). */
interface Placement {
  readonly where: string
  readonly config: Raw
}

function pluginsOf(entity: unknown): unknown[] {
  return isRecord(entity) && Array.isArray(entity.plugins) ? entity.plugins : []
}

function nameOf(entity: unknown, kind: string, index: number): string {
  if (!isRecord(entity)) return `${kind} #${index + 1}`
  const name = entity.name ?? entity.username ?? entity.id
  return typeof name === 'string' ? `${kind} ${name}` : `${kind} #${index + 1}`
}

/** Every enabled consumer-jwt plugin: global, on services, on routes (nested or not), on consumers. */
function placements(data: Raw): Placement[] {
  const found: Placement[] = []
  const take = (plugins: unknown[], where: (p: Raw) => string): void => {
    for (const p of plugins) {
      if (!isRecord(p) || p.name !== 'consumer-jwt' || p.enabled === false) continue
      found.push({ where: where(p), config: isRecord(p.config) ? p.config : {} })
    }
  }
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
  take(list(data.plugins), (p) => {
    const scope = ['route', 'service', 'consumer'].find((k) => p[k] !== undefined && p[k] !== null)
    if (scope === undefined) return 'global'
    const ref = p[scope]
    const name = isRecord(ref) ? (ref.name ?? ref.username ?? ref.id) : ref
    return `${scope} ${String(name)}`
  })
  list(data.services).forEach((s, i) => {
    take(pluginsOf(s), () => nameOf(s, 'service', i))
    if (isRecord(s))
      list(s.routes).forEach((r, j) => take(pluginsOf(r), () => nameOf(r, 'route', j)))
  })
  list(data.routes).forEach((r, i) => take(pluginsOf(r), () => nameOf(r, 'route', i)))
  list(data.consumers).forEach((c, i) => take(pluginsOf(c), () => nameOf(c, 'consumer', i)))
  return found
}

/** Key order does not matter; used to find the plugins that verify tokens alike. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (isRecord(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`
  }
  return jsonText(value) ?? 'null'
}

/**
 * A secret reference Kong's `env` vault resolves: `{vault://env/partner-secret}` reads
 * PARTNER_SECRET (upper case, `-` as `_`), `{vault://env/name/key}` the field `key` of the JSON
 * in NAME. Returns undefined for a value that is not a reference.
 */
export function resolveVaultReference(
  value: string,
  env: NodeJS.ProcessEnv,
): { value: string } | { missing: string } | undefined {
  const m = /^\{vault:\/\/([^/}]+)\/([^/}]+)(?:\/([^}]+))?\}$/.exec(value.trim())
  if (m === null) return undefined
  const [, vault, name, field] = m as unknown as [string, string, string, string | undefined]
  if (vault !== 'env') {
    return { missing: `${value} is a reference to the "${vault}" vault; the CLI resolves env only` }
  }
  const variable = name.toUpperCase().replace(/-/g, '_')
  const raw = env[variable]
  if (raw === undefined || raw === '')
    return { missing: `${value} needs ${variable} in the environment` }
  if (field === undefined) return { value: raw }
  try {
    const parsed: unknown = JSON.parse(raw)
    const v = isRecord(parsed) ? parsed[field] : undefined
    if (typeof v === 'string' && v !== '') return { value: v }
  } catch {
    // reported below
  }
  return { missing: `${value}: ${variable} is not JSON with a string field "${field}"` }
}

/**
 * Credentials whose HS secret this machine cannot know (an unset secret_env, a vault reference
 * not resolvable here) get a random stand-in, so the rest of the file still loads; the reason is
 * kept, and no signature is made or checked with the stand-in.
 */
function withResolvedSecrets(
  config: Raw,
  env: NodeJS.ProcessEnv,
): { config: Raw; unavailable: Map<string, string>; base64: Set<string> } {
  const unavailable = new Map<string, string>()
  const base64 = new Set<string>()
  if (!Array.isArray(config.credentials)) return { config, unavailable, base64 }
  for (const c of config.credentials as unknown[])
    if (isRecord(c) && c.secret_is_base64 === true && typeof c.key === 'string') base64.add(c.key)
  const standIn = (c: Raw, why: string): Raw => {
    if (typeof c.key === 'string') unavailable.set(c.key, why)
    const { secret_env: _env, ...rest } = c
    return { ...rest, secret: randomBytes(32).toString('base64url'), secret_is_base64: true }
  }
  const credentials = config.credentials.map((c: unknown) => {
    if (!isRecord(c)) return c
    if (typeof c.secret === 'string') {
      const ref = resolveVaultReference(c.secret, env)
      if (ref === undefined) return c
      return 'value' in ref ? { ...c, secret: ref.value } : standIn(c, `secret ${ref.missing}`)
    }
    if (typeof c.secret_env === 'string') {
      const v = env[c.secret_env]
      if (v === undefined || v === '')
        return standIn(c, `secret_env: the environment variable ${c.secret_env} is not set`)
    }
    return c
  })
  return { config: { ...config, credentials }, unavailable, base64 }
}

/** consumer-jwt plugins that verify tokens the same way (same config but for scopes/revocation). */
export interface VerifierGroup {
  /** Where these plugins are: `route orders-read`, `global`, … */
  readonly where: readonly string[]
  /** The config as the plugin parses it. */
  readonly config: Config
  /** Credential key → why its secret is not known here. */
  readonly unavailableSecrets: ReadonlyMap<string, string>
  /** Keys of the credentials whose secret is written base64 (secret_is_base64). */
  readonly base64Secrets: ReadonlySet<string>
}

export interface ConsumerJwtSettings {
  readonly path: string
  readonly groups: readonly VerifierGroup[]
  /** The file's consumers, to match a name given as username, id or custom_id. */
  readonly consumers: readonly Raw[]
}

/**
 * The consumer-jwt plugins of kong.yml, grouped by verification settings. Route scope rules and
 * revocation do not change how a token is verified and are left out (not parsed, not checked).
 */
export function loadConsumerJwt(path: string, env: NodeJS.ProcessEnv): ConsumerJwtSettings {
  const data = readDeclarativeConfig(path)
  const found = placements(data)
  if (found.length === 0)
    throw new CliError(`--config ${path}: no enabled consumer-jwt plugin in it`, EXIT.USAGE)
  const byCanon = new Map<string, { where: string[]; config: Raw }>()
  for (const p of found) {
    const { scopes: _s, revocation: _r, route_id: _id, ...verification } = p.config
    const key = canonical(verification)
    const group = byCanon.get(key)
    if (group === undefined) byCanon.set(key, { where: [p.where], config: verification })
    else group.where.push(p.where)
  }
  const groups = [...byCanon.values()].map(({ where, config }) => {
    const resolved = withResolvedSecrets(config, env)
    let parsed: Config
    try {
      parsed = parseConfig(resolved.config, env)
    } catch (error) {
      const detail = isPluginError(error) ? (error.detail ?? error.message) : String(error)
      throw new CliError(
        `--config ${path}: consumer-jwt on ${where[0] ?? '?'}: ${detail}`,
        EXIT.USAGE,
      )
    }
    return {
      where,
      config: parsed,
      unavailableSecrets: resolved.unavailable,
      base64Secrets: resolved.base64,
    }
  })
  const consumers = Array.isArray(data.consumers) ? data.consumers.filter(isRecord) : []
  return { path, groups, consumers }
}

/** Whether `name` designates the consumer a credential names (username or id, either way round). */
function sameConsumer(
  settings: ConsumerJwtSettings,
  credential: Credential,
  name: string,
): boolean {
  if (credential.consumer === name) return true
  return settings.consumers.some((c) => {
    const ids = [c.username, c.id, c.custom_id].filter((v) => typeof v === 'string')
    return ids.includes(name) && ids.includes(credential.consumer)
  })
}

export interface ConsumerCredential {
  readonly credential: Credential
  readonly group: VerifierGroup
}

/**
 * The one credential of `consumer`. Several (distinct keys, or the same key verified differently
 * in different places) need `credentialKey` / `place` to choose.
 */
export function credentialOf(
  settings: ConsumerJwtSettings,
  consumer: string,
  choose: { credentialKey?: string; place?: string } = {},
): ConsumerCredential {
  const all: ConsumerCredential[] = []
  for (const group of settings.groups)
    for (const credential of group.config.credentials.values())
      if (sameConsumer(settings, credential, consumer)) all.push({ credential, group })
  if (all.length === 0) {
    const names = new Set(
      settings.groups.flatMap((g) => [...g.config.credentials.values()].map((c) => c.consumer)),
    )
    throw new CliError(
      `consumer ${JSON.stringify(consumer)} has no consumer-jwt credential in ${settings.path} (consumers with one: ${[...names].join(', ')})`,
      EXIT.USAGE,
    )
  }
  let found = all
  if (choose.credentialKey !== undefined) {
    found = found.filter((f) => f.credential.key === choose.credentialKey)
    if (found.length === 0)
      throw new CliError(
        `--credential ${choose.credentialKey}: not a credential of ${consumer} (its keys: ${[...new Set(all.map((f) => f.credential.key))].join(', ')})`,
        EXIT.USAGE,
      )
  }
  if (choose.place !== undefined) {
    const place = choose.place
    found = found.filter((f) => f.group.where.some((w) => w === place || w.endsWith(` ${place}`)))
    if (found.length === 0)
      throw new CliError(
        `--route ${place}: no consumer-jwt there with a credential of ${consumer} (they are on: ${all.flatMap((f) => f.group.where).join(', ')})`,
        EXIT.USAGE,
      )
  }
  const keys = [...new Set(found.map((f) => f.credential.key))]
  if (keys.length > 1)
    throw new CliError(
      `consumer ${consumer} has ${keys.length} credentials (${keys.join(', ')}); choose one with --credential <key>`,
      EXIT.USAGE,
    )
  if (found.length > 1)
    throw new CliError(
      `credential ${keys[0] ?? ''} is verified differently in several places (${found.map((f) => f.group.where.join(', ')).join(' | ')}); choose one with --route <name>`,
      EXIT.USAGE,
    )
  return found[0] as ConsumerCredential
}
