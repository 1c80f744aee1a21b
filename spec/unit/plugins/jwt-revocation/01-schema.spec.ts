import { describe, expect, it } from '@jest/globals'
import { labelled } from '../../../helpers/labelled'
import * as plugin from '../../../../plugins/jwt-revocation/index'
import { fields, parseConfig, Schema } from '../../../../plugins/jwt-revocation/schema'
import { isPluginError } from '../../../../plugins/shared/errors'
import { PRIORITIES } from '../../../../plugins/shared/priorities'
import { REDIS_FIELDS } from '../../../../plugins/shared/schema/redis-fields'
import type { KongField } from '../../../../plugins/shared/schema/kong-fields'

/** What Kong sends for a plugin configured with nothing: defaults filled in, the rest null. */
function kongDefaults(): Record<string, unknown> {
  const redis: Record<string, unknown> = {}
  for (const [name, f] of Object.entries(REDIS_FIELDS))
    redis[name] = 'default' in f ? f.default : null
  const config: Record<string, unknown> = {}
  for (const [name, f] of Object.entries(fields)) config[name] = 'default' in f ? f.default : null
  return { ...config, redis }
}

function configError(raw: unknown): string {
  try {
    parseConfig(raw)
  } catch (error) {
    if (isPluginError(error)) return `${error.code} ${error.detail ?? ''}`
    throw error
  }
  throw new Error('expected parseConfig to throw')
}

describe('jwt-revocation: (schema)', () => {
  it('exports exactly the five names kong-pdk reads, with its name and priority', () => {
    expect(Object.keys(plugin).sort()).toEqual(['Name', 'Plugin', 'Priority', 'Schema', 'Version'])
    expect(plugin.Name).toBe('jwt-revocation')
    expect(plugin.Priority).toBe(PRIORITIES['jwt-revocation'])
    expect(plugin.Version).toMatch(/^\d+\.\d+\.\d+$/)
    expect(typeof plugin.Plugin.prototype.access).toBe('function')
  })

  it('gives every field, nested ones included, a description Kong accepts (10-500 chars)', () => {
    const walk = (entries: readonly Readonly<Record<string, KongField>>[], path: string): void => {
      for (const entry of entries) {
        for (const [name, field] of Object.entries(entry)) {
          labelled(field.description.length, `${path}${name}`).toBeGreaterThanOrEqual(10)
          labelled(field.description.length, `${path}${name}`).toBeLessThanOrEqual(500)
          if (field.type === 'record') walk(field.fields, `${path}${name}.`)
        }
      }
    }
    walk(Schema, '')
  })

  it('marks the Redis secrets referenceable and gives them no default', () => {
    for (const name of ['password', 'sentinel_password', 'username', 'url'] as const) {
      labelled(REDIS_FIELDS[name].referenceable, name).toBe(true)
    }
    expect('default' in REDIS_FIELDS.password).toBe(false)
    expect('default' in REDIS_FIELDS.sentinel_password).toBe(false)
  })

  it('accepts what Kong sends for an empty config and applies the documented defaults', () => {
    const c = parseConfig(kongDefaults())
    expect(c).toMatchObject({
      key_prefix: 'jwt-revocation:',
      check: ['jti', 'subject', 'consumer'],
      subject_scope: 'both',
      missing_jti: 'refuse',
      missing_iat: 'refuse',
      require_token: false,
      on_unavailable: 'fail_closed',
      timeout_ms: 250,
      cache_ttl_ms: 1000,
      realm: 'kong',
    })
    expect(c.redis).toMatchObject({
      mode: 'single',
      url: 'redis://127.0.0.1:6379',
      database: 0,
      password: undefined,
    })
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('accepts a config with only some fields (the rest default)', () => {
    expect(parseConfig({ on_unavailable: 'fail_open' }).on_unavailable).toBe('fail_open')
  })

  it('refuses an empty check list, naming the field', () => {
    expect(configError({ ...kongDefaults(), check: [] })).toMatch(/^ERR_CONFIG_INVALID check:/)
  })

  it('refuses an unknown check kind', () => {
    expect(configError({ ...kongDefaults(), check: ['jti', 'aud'] })).toMatch(
      /^ERR_CONFIG_INVALID check: unknown kind "aud"/,
    )
  })

  it('refuses a redis setting that is not a record instead of reading it as the defaults', () => {
    for (const redis of ['redis://elsewhere:6379', 6379, true, ['redis://x']]) {
      expect(configError({ ...kongDefaults(), redis })).toMatch(
        /^ERR_CONFIG_INVALID redis: must be a record/,
      )
    }
  })

  it('refuses an empty redis url or password (an unresolved vault reference) instead of using the local default', () => {
    for (const field of ['url', 'password', 'username', 'sentinel_password']) {
      expect(configError({ ...kongDefaults(), redis: { [field]: '' } })).toMatch(
        new RegExp(`^ERR_CONFIG_INVALID redis\\.${field}: is empty: an unresolved vault reference`),
      )
    }
  })

  it('refuses a key prefix with spaces', () => {
    expect(configError({ ...kongDefaults(), key_prefix: 'a b' })).toMatch(
      /^ERR_CONFIG_INVALID key_prefix:/,
    )
  })

  it('refuses a timeout outside 10..5000 ms', () => {
    expect(configError({ ...kongDefaults(), timeout_ms: 5 })).toMatch(
      /^ERR_CONFIG_INVALID timeout_ms:/,
    )
  })

  it('refuses an unknown on_unavailable policy', () => {
    expect(configError({ ...kongDefaults(), on_unavailable: 'maybe' })).toMatch(
      /^ERR_CONFIG_INVALID on_unavailable:/,
    )
  })

  it('refuses a single-mode url that is neither redis://, rediss:// nor a socket path', () => {
    const raw = { ...kongDefaults(), redis: { url: 'http://localhost:6379' } }
    expect(configError(raw)).toMatch(/^ERR_CONFIG_INVALID redis\.url:/)
  })

  it('accepts rediss:// and unix socket urls', () => {
    expect(parseConfig({ redis: { url: 'rediss://u:p@redis.example:6380/2' } }).redis.url).toBe(
      'rediss://u:p@redis.example:6380/2',
    )
    expect(parseConfig({ redis: { url: '/run/redis/redis.sock' } }).redis.url).toBe(
      '/run/redis/redis.sock',
    )
  })

  it('refuses sentinel mode without sentinels or without a master name', () => {
    expect(configError({ redis: { mode: 'sentinel', sentinel_name: 'mymaster' } })).toMatch(
      /redis\.sentinels:/,
    )
    expect(configError({ redis: { mode: 'sentinel', sentinels: ['s1:26379'] } })).toMatch(
      /redis\.sentinel_name:/,
    )
  })

  it('parses sentinel and cluster node lists, IPv6 included', () => {
    const s = parseConfig({
      redis: { mode: 'sentinel', sentinel_name: 'm', sentinels: ['s1:26379', '[::1]:26380'] },
    })
    expect(s.redis.sentinels).toEqual([
      { host: 's1', port: 26379 },
      { host: '::1', port: 26380 },
    ])
    const c = parseConfig({ redis: { mode: 'cluster', cluster_nodes: ['n1:7000'] } })
    expect(c.redis.cluster_nodes).toEqual([{ host: 'n1', port: 7000 }])
  })

  it('refuses cluster mode without nodes, with a bad node, or with a database other than 0', () => {
    expect(configError({ redis: { mode: 'cluster' } })).toMatch(/redis\.cluster_nodes:/)
    expect(configError({ redis: { mode: 'cluster', cluster_nodes: ['n1'] } })).toMatch(
      /redis\.cluster_nodes: "n1" is not host:port/,
    )
    expect(
      configError({ redis: { mode: 'cluster', cluster_nodes: ['n1:7000'], database: 3 } }),
    ).toMatch(/redis\.database:/)
  })

  it('never puts a password in an error message', () => {
    const msg = configError({ redis: { url: 'http://x', password: 's3cret-pw' } })
    expect(msg).not.toContain('s3cret-pw')
  })
})
