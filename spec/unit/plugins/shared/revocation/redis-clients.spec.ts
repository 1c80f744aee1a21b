import { describe, expect, it } from '@jest/globals'
import {
  clusterOptions,
  reconnectDelay,
  redisOptions,
} from '../../../../../plugins/shared/revocation/redis-clients'
import {
  describeRedis,
  parseRedisSettings,
} from '../../../../../plugins/shared/schema/redis-fields'

const fast = { commandTimeoutMs: 250, failFast: true }

describe('redis client options', () => {
  it('tunes the request path to fail fast: command timeout, no offline queue, no retries, lazy connect', () => {
    const o = redisOptions(parseRedisSettings({}), fast)
    expect(o).toMatchObject({
      host: '127.0.0.1',
      port: 6379,
      db: 0,
      lazyConnect: true,
      commandTimeout: 250,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
    })
    expect(o.tls).toBeUndefined()
  })

  it('reads user, password, db and TLS from a rediss:// url; explicit fields win for credentials', () => {
    const o = redisOptions(
      parseRedisSettings({ url: 'rediss://app:p%40ss@redis.example:6380/3' }),
      fast,
    )
    expect(o).toMatchObject({
      host: 'redis.example',
      port: 6380,
      username: 'app',
      password: 'p@ss',
      db: 3,
    })
    expect(o.tls).toMatchObject({ rejectUnauthorized: true, servername: 'redis.example' })
    const o2 = redisOptions(
      parseRedisSettings({ url: 'redis://app:old@h:1', username: 'kong', password: 'new' }),
      fast,
    )
    expect(o2).toMatchObject({ username: 'kong', password: 'new' })
  })

  it('connects to a Unix socket path', () => {
    const o = redisOptions(
      parseRedisSettings({ url: '/run/redis/redis.sock', password: 'pw' }),
      fast,
    )
    expect(o).toMatchObject({ path: '/run/redis/redis.sock', password: 'pw' })
    expect(o.host).toBeUndefined()
  })

  it('maps Sentinel settings, following a switch of master at once', () => {
    const s = parseRedisSettings({
      mode: 'sentinel',
      sentinels: ['s1:26379', 's2:26379'],
      sentinel_name: 'mymaster',
      sentinel_password: 'spw',
      password: 'pw',
    })
    expect(redisOptions(s, fast)).toMatchObject({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'mymaster',
      sentinelPassword: 'spw',
      password: 'pw',
      enableOfflineQueue: false,
      failoverDetector: true,
    })
  })

  it('maps Cluster settings, with the request-path tuning on every node', () => {
    const s = parseRedisSettings({
      mode: 'cluster',
      cluster_nodes: ['n1:7000'],
      password: 'pw',
      tls: true,
    })
    const o = clusterOptions(s, fast)
    expect(o).toMatchObject({ lazyConnect: true, enableOfflineQueue: false })
    expect(o.redisOptions).toMatchObject({
      password: 'pw',
      commandTimeout: 250,
      maxRetriesPerRequest: 0,
    })
    expect(o.redisOptions?.tls).toBeDefined()
  })

  it('lets the CLI wait for the connection instead', () => {
    expect(
      redisOptions(parseRedisSettings({}), { commandTimeoutMs: 5000, failFast: false }),
    ).toMatchObject({
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
    })
  })

  it('backs off reconnects exponentially up to 2 s', () => {
    for (let i = 0; i < 50; i++) {
      expect(reconnectDelay(0)).toBeLessThanOrEqual(50)
      expect(reconnectDelay(20)).toBeGreaterThanOrEqual(1000)
      expect(reconnectDelay(20)).toBeLessThanOrEqual(2000)
    }
  })

  it('describes a deployment for logs without its secrets', () => {
    expect(describeRedis(parseRedisSettings({ url: 'redis://u:secret@h:1/2' }))).toBe(
      'redis://h:1/2',
    )
    expect(
      describeRedis(parseRedisSettings({ mode: 'cluster', cluster_nodes: ['a:1', 'b:2'] })),
    ).toBe('cluster via a:1,b:2')
  })
})
