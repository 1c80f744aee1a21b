/**
 * A plugin configuration of kong.yml as the plugin would see it: Kong's schema processing first
 * (defaults filled, unknown fields and wrong types refused: cli/kong/schema.ts, the emulator's
 * code), then, for this toolkit's plugins, the plugin's own exported `parseConfig`, the very
 * function that refuses a config at instance start with 500 ERR_CONFIG_INVALID.
 *
 * What only the running Kong can know is stood in for, and reported as such: a vault reference
 * (`{vault://env/…}`) in a referenceable field and a credential's `secret_env` become
 * placeholders, so the rest of the config is still checked. Given an environment (the token
 * commands, which sign and verify with the secrets), env vault references and `secret_env`
 * variables set in it are read from it, and only the others are stood in.
 */
import { isPluginError } from '../../plugins/shared/errors'
import {
  parseConfig as parseConsumerJwt,
  Schema as consumerJwtSchema,
  type Config as ConsumerJwtConfig,
} from '../../plugins/consumer-jwt/schema'
import {
  parseConfig as parseRevocation,
  Schema as revocationSchema,
  type Config as RevocationConfig,
} from '../../plugins/jwt-revocation/schema'
import {
  parseConfig as parseScopeAcl,
  Schema as scopeAclSchema,
  type Config as ScopeAclConfig,
} from '../../plugins/scope-acl/schema'
import { PRIORITIES, type PluginName } from '../../plugins/shared/priorities'
import { BUNDLED_FIELDS, BUNDLED_PRIORITIES } from '../kong/bundled-plugins'
import { processConfig, SchemaError, type FieldDef, type SchemaField } from '../kong/schema'
import { isPlainObject } from '../kong/values'
import { joinPath, type PluginUse } from './load'

export type ParsedConfig =
  | { readonly name: 'consumer-jwt'; readonly config: ConsumerJwtConfig }
  | { readonly name: 'scope-acl'; readonly config: ScopeAclConfig }
  | { readonly name: 'jwt-revocation'; readonly config: RevocationConfig }

/** Why a config would not run. `path` is relative to the plugin's `config`. */
export interface ConfigProblem {
  /** `schema`: Kong refuses the file; `parse`: Kong accepts it, the plugin refuses it (500). */
  readonly stage: 'schema' | 'parse'
  readonly path: string
  readonly message: string
}

/** A value the CLI cannot read and replaced with a stand-in. `path` is relative to `config`. */
export interface StandIn {
  readonly path: string
  readonly what: string
  /** With an environment given: why the value is not in it. */
  readonly reason?: string
}

export interface PluginConfig {
  readonly use: PluginUse
  /** Which plugin this is, for the CLI. */
  readonly kind: 'ours' | 'bundled' | 'unknown'
  readonly priority: number | undefined
  /** The config after Kong's schema processing; undefined when Kong would refuse it. */
  readonly kongConfig: Readonly<Record<string, unknown>> | undefined
  /** The plugin's own parsed config (this toolkit's plugins only, when it parses). */
  readonly parsed: ParsedConfig | undefined
  readonly problems: readonly ConfigProblem[]
  readonly standIns: readonly StandIn[]
}

/** An HMAC secret long enough for HS512 in plain text and in base64 (66 bytes either way). */
const SECRET_STAND_IN = 'A'.repeat(88)
const REDIS_URL_STAND_IN = 'redis://vault-reference.invalid:6379'
const OTHER_STAND_IN = 'vault-reference'

function standInFor(field: string): string {
  if (field === 'secret') return SECRET_STAND_IN
  if (field === 'url') return REDIS_URL_STAND_IN
  return OTHER_STAND_IN
}

/**
 * A reference Kong's `env` vault resolves: `{vault://env/partner-secret}` reads PARTNER_SECRET
 * (upper case, `-` as `_`), `{vault://env/name/key}` the field `key` of the JSON in NAME.
 */
function resolveEnvReference(
  value: string,
  env: NodeJS.ProcessEnv,
): { value: string } | { missing: string } {
  const m = /^\{vault:\/\/([^/}]+)\/([^/}]+)(?:\/([^}]+))?\}$/.exec(value.trim())
  if (m === null) return { missing: `${value} is not a vault reference the CLI can read` }
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
    const v = isPlainObject(parsed) ? parsed[field] : undefined
    if (typeof v === 'string' && v !== '') return { value: v }
  } catch {
    // reported below
  }
  return { missing: `${value}: ${variable} is not JSON with a string field "${field}"` }
}

function entries(fields: readonly SchemaField[]): Array<[string, FieldDef]> {
  return fields.flatMap((f) => Object.entries(f))
}

/**
 * Replaces vault references in referenceable fields (Kong resolves those before the plugin sees
 * the config) with their value from `env` when given and there, else with stand-ins, recording
 * each stand-in; walks the raw config alongside the schema.
 */
function replaceReferences(
  fields: readonly SchemaField[],
  raw: Record<string, unknown>,
  at: string,
  found: StandIn[],
  env: NodeJS.ProcessEnv | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw }
  for (const [name, def] of entries(fields)) {
    const v = raw[name]
    const path = joinPath(at, name)
    if (typeof v === 'string' && def.referenceable === true && v.startsWith('{vault://')) {
      const ref = env === undefined ? undefined : resolveEnvReference(v, env)
      if (ref !== undefined && 'value' in ref) {
        out[name] = ref.value
      } else {
        out[name] = standInFor(name)
        found.push({
          path,
          what: `vault reference ${v}`,
          ...(ref === undefined ? {} : { reason: `${name} ${ref.missing}` }),
        })
      }
    } else if (def.type === 'record' && isPlainObject(v)) {
      out[name] = replaceReferences(def.fields ?? [], v, path, found, env)
    } else if (
      (def.type === 'array' || def.type === 'set') &&
      def.elements?.type === 'record' &&
      Array.isArray(v)
    ) {
      out[name] = v.map((item: unknown, i): unknown =>
        isPlainObject(item)
          ? replaceReferences(def.elements?.fields ?? [], item, joinPath(path, i), found, env)
          : item,
      )
    }
  }
  return out
}

/** Kong's error paths count array elements from 1 (`credentials.1.secret`); ours from 0. */
function fromKongPath(path: string): string {
  const parts = path.split('.')
  let out = ''
  for (const p of parts) out = /^\d+$/.test(p) ? joinPath(out, Number(p) - 1) : joinPath(out, p)
  return out
}

/** `credentials[0].secret: must be …` → path and message. */
function splitDetail(detail: string): { path: string; message: string } {
  const m = /^([A-Za-z_][\w]*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): (.*)$/s.exec(detail)
  if (m === null || m[1] === undefined || m[2] === undefined) return { path: '', message: detail }
  return { path: m[1], message: m[2] }
}

const OURS: Record<
  PluginName,
  {
    readonly fields: readonly SchemaField[]
    readonly parse: (config: Record<string, unknown>, env: NodeJS.ProcessEnv) => ParsedConfig
  }
> = {
  'consumer-jwt': {
    fields: consumerJwtSchema as unknown as readonly SchemaField[],
    parse: (c, env) => ({ name: 'consumer-jwt', config: parseConsumerJwt(c, env) }),
  },
  'scope-acl': {
    fields: scopeAclSchema as unknown as readonly SchemaField[],
    parse: (c) => ({ name: 'scope-acl', config: parseScopeAcl(c) }),
  },
  'jwt-revocation': {
    fields: revocationSchema as unknown as readonly SchemaField[],
    parse: (c) => ({ name: 'jwt-revocation', config: parseRevocation(c) }),
  },
}

function isOurs(name: string): name is PluginName {
  return Object.prototype.hasOwnProperty.call(OURS, name)
}

/** The priority Kong runs a plugin at: ours, or a bundled plugin's; undefined when unknown. */
export function priorityOf(name: string): number | undefined {
  return isOurs(name) ? PRIORITIES[name] : BUNDLED_PRIORITIES[name]
}

/**
 * Reads one plugin configuration as Kong and then the plugin would. The plugin server's
 * environment is not this process's: without `env`, every vault reference and secret_env gets a
 * stand-in (reported in standIns); with `env`, only those it does not hold (with a `reason`).
 */
export function readPluginConfig(use: PluginUse, env?: NodeJS.ProcessEnv): PluginConfig {
  const { name } = use.entity
  const raw = use.entity.config
  const kind = isOurs(name) ? 'ours' : name in BUNDLED_PRIORITIES ? 'bundled' : 'unknown'
  const priority = priorityOf(name)
  const fields = isOurs(name) ? OURS[name].fields : BUNDLED_FIELDS[name]
  if (fields === undefined) {
    return {
      use,
      kind,
      priority,
      kongConfig: undefined,
      parsed: undefined,
      problems: [],
      standIns: [],
    }
  }
  const standIns: StandIn[] = []
  const input = replaceReferences(fields, raw, '', standIns, env)
  let kongConfig: Record<string, unknown>
  try {
    kongConfig = processConfig(fields, input)
  } catch (error) {
    if (!(error instanceof SchemaError)) throw error
    const problems = Object.entries(error.errors).map(([path, message]) => ({
      stage: 'schema' as const,
      path: fromKongPath(path),
      message,
    }))
    return { use, kind, priority, kongConfig: undefined, parsed: undefined, problems, standIns }
  }
  if (!isOurs(name)) {
    return { use, kind, priority, kongConfig, parsed: undefined, problems: [], standIns }
  }
  // What Kong adds to the config table it hands the plugin server (emulator/gateway.ts).
  const full: Record<string, unknown> = { ...kongConfig }
  if (use.route) full['route_id'] = use.route.id
  if (use.service) full['service_id'] = use.service.id
  if (use.consumer) full['consumer_id'] = use.consumer.id
  const parseEnv: NodeJS.ProcessEnv = { ...env }
  if (name === 'consumer-jwt' && Array.isArray(kongConfig['credentials'])) {
    kongConfig['credentials'].forEach((c: unknown, i) => {
      const ref = isPlainObject(c) ? c['secret_env'] : undefined
      if (typeof ref === 'string' && (env?.[ref] ?? '') === '') {
        parseEnv[ref] = SECRET_STAND_IN
        standIns.push({
          path: joinPath('credentials', i, 'secret_env'),
          what: `environment variable ${ref} of the plugin server`,
          ...(env === undefined
            ? {}
            : { reason: `secret_env: the environment variable ${ref} is not set` }),
        })
      }
    })
  }
  try {
    const parsed = OURS[name].parse(full, parseEnv)
    return { use, kind, priority, kongConfig, parsed, problems: [], standIns }
  } catch (error) {
    if (!isPluginError(error) || error.code !== 'ERR_CONFIG_INVALID') throw error
    const { path, message } = splitDetail(error.detail ?? error.message)
    return {
      use,
      kind,
      priority,
      kongConfig,
      parsed: undefined,
      problems: [{ stage: 'parse', path, message }],
      standIns,
    }
  }
}
