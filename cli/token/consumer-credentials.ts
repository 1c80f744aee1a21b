import type { Config, Credential } from '../../plugins/consumer-jwt/schema'
import type { ConsumerEntity } from '../kong/declarative-config'
import { isPlainObject } from '../kong/values'
import { describeLoadError, loadPolicy, PolicyLoadError, type PluginUse } from '../policy/load'
import { readPluginConfig } from '../policy/plugin-configs'
import { jsonText } from '../../plugins/shared/json'
import { CliError, EXIT } from '../common'

/**
 * The consumer-jwt credentials of a declarative kong.yml, for `token mint` and `token inspect`:
 * the file read by the policy commands' loader (cli/policy/load.ts), each config as Kong and
 * then the plugin itself read it (cli/policy/plugin-configs.ts), with the secrets this machine
 * holds (env vault references, secret_env) read from the environment.
 */

/** `route orders-read`, `service orders`, `consumer web-app` or `global`. */
function placeOf(use: PluginUse): string {
  if (use.route) return `route ${use.route.name ?? use.route.id}`
  if (use.service) return `service ${use.service.name ?? use.service.id}`
  if (use.consumer)
    return `consumer ${use.consumer.username ?? use.consumer.custom_id ?? use.consumer.id}`
  return 'global'
}

/** Key order does not matter; used to find the plugins that verify tokens alike. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (isPlainObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`
  }
  return jsonText(value) ?? 'null'
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
  readonly consumers: readonly ConsumerEntity[]
}

/**
 * The consumer-jwt plugins of kong.yml, grouped by verification settings. Route scope rules and
 * revocation do not change how a token is verified and are left out (not parsed, not checked).
 */
export function loadConsumerJwt(path: string, env: NodeJS.ProcessEnv): ConsumerJwtSettings {
  let policy
  try {
    policy = loadPolicy(path)
  } catch (error) {
    if (error instanceof PolicyLoadError)
      throw new CliError(`--config ${describeLoadError(error)}`, EXIT.USAGE)
    throw error
  }
  const found = policy.plugins.filter((u) => u.entity.name === 'consumer-jwt' && u.entity.enabled)
  if (found.length === 0)
    throw new CliError(`--config ${path}: no enabled consumer-jwt plugin in it`, EXIT.USAGE)
  const byCanon = new Map<string, { where: string[]; use: PluginUse }>()
  for (const use of found) {
    const { scopes: _s, revocation: _r, ...verification } = use.entity.config
    const key = canonical(verification)
    const group = byCanon.get(key)
    if (group === undefined)
      byCanon.set(key, {
        where: [placeOf(use)],
        use: { ...use, entity: { ...use.entity, config: verification } },
      })
    else group.where.push(placeOf(use))
  }
  const groups = [...byCanon.values()].map(({ where, use }): VerifierGroup => {
    const read = readPluginConfig(use, env)
    const problem = read.problems[0]
    if (problem !== undefined || read.parsed?.name !== 'consumer-jwt') {
      const detail =
        problem === undefined
          ? 'not read'
          : `${problem.path === '' ? '' : `${problem.path}: `}${problem.message}`
      throw new CliError(
        `--config ${path}: consumer-jwt on ${where[0] ?? '?'}: ${detail}`,
        EXIT.USAGE,
      )
    }
    const credentials = Array.isArray(read.kongConfig?.['credentials'])
      ? (read.kongConfig['credentials'] as unknown[])
      : []
    const keyAt = (i: number): unknown => {
      const c = credentials[i]
      return isPlainObject(c) ? c['key'] : undefined
    }
    const unavailableSecrets = new Map<string, string>()
    for (const s of read.standIns) {
      const m = /^credentials\[(\d+)\]\.(?:secret|secret_env)$/.exec(s.path)
      const key = m === null ? undefined : keyAt(Number(m[1]))
      if (typeof key === 'string' && s.reason !== undefined) unavailableSecrets.set(key, s.reason)
    }
    const base64Secrets = new Set<string>()
    credentials.forEach((c, i) => {
      const key = keyAt(i)
      if (isPlainObject(c) && c['secret_is_base64'] === true && typeof key === 'string')
        base64Secrets.add(key)
    })
    return { where, config: read.parsed.config, unavailableSecrets, base64Secrets }
  })
  return { path, groups, consumers: policy.config.consumers }
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
