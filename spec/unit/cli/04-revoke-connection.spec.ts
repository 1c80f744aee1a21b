import { describe, expect, it } from '@jest/globals'
import { redisRecord } from '../../../cli/revoke'
import { parseRedisSettings } from '../../../plugins/shared/schema/redis-fields'
import { cli } from './helpers'

const base = { keyPrefix: 'p:', timeoutMs: '5000' }

describe('kong-jwt-toolkit revoke: (cli, Redis connection options)', () => {
  it('--sentinel (repeated) + --sentinel-master: the plugin record of a Sentinel group, passwords from the environment', () => {
    const record = redisRecord(
      {
        ...base,
        sentinel: ['10.0.0.1:26379', '10.0.0.2:26379'],
        sentinelMaster: 'mymaster',
        sentinelUsername: 'watcher',
        redisUsername: 'kong',
        database: '2',
        tls: true,
      },
      { REDIS_PASSWORD: 'pw', REDIS_SENTINEL_PASSWORD: 'spw', REDIS_URL: 'redis://ignored:6379' },
    )
    expect(parseRedisSettings(record)).toMatchObject({
      mode: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
      ],
      sentinel_name: 'mymaster',
      sentinel_username: 'watcher',
      sentinel_password: 'spw',
      username: 'kong',
      password: 'pw',
      database: 2,
      tls: true,
    })
  })

  it('--cluster-node (repeated): the record of a Cluster', () => {
    expect(
      parseRedisSettings(redisRecord({ ...base, clusterNode: ['n1:7000', 'n2:7001'] }, {})),
    ).toMatchObject({
      mode: 'cluster',
      cluster_nodes: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 7001 },
      ],
    })
  })

  it('without options: $REDIS_SENTINELS + $REDIS_SENTINEL_MASTER, $REDIS_CLUSTER_NODES, else $REDIS_URL', () => {
    expect(
      parseRedisSettings(
        redisRecord(base, { REDIS_SENTINELS: 's1:1, s2:2', REDIS_SENTINEL_MASTER: 'm' }),
      ),
    ).toMatchObject({
      mode: 'sentinel',
      sentinels: [
        { host: 's1', port: 1 },
        { host: 's2', port: 2 },
      ],
      sentinel_name: 'm',
    })
    expect(parseRedisSettings(redisRecord(base, { REDIS_CLUSTER_NODES: 'n:7000' }))).toMatchObject({
      mode: 'cluster',
    })
    expect(parseRedisSettings(redisRecord(base, { REDIS_URL: 'redis://h:1/3' }))).toMatchObject({
      mode: 'single',
      url: 'redis://h:1/3',
    })
    // An option beats the environment.
    expect(
      parseRedisSettings(
        redisRecord({ ...base, redisUrl: 'redis://o:2' }, { REDIS_SENTINELS: 's1:1' }),
      ),
    ).toMatchObject({ mode: 'single', url: 'redis://o:2' })
  })

  it.each([
    [
      ['--redis-url', 'redis://h:1', '--sentinel', 's:1'],
      'error: --redis-url and --sentinel: give one kind of Redis deployment',
    ],
    [
      ['--sentinel', 's:1', '--cluster-node', 'n:1'],
      'error: --sentinel and --cluster-node: give one kind of Redis deployment',
    ],
    [
      ['--sentinel', 's:1'],
      'error: --sentinel needs --sentinel-master <name> (the name in `sentinel monitor <name> …`)',
    ],
    [['--sentinel-master', 'm'], 'error: --sentinel-master needs --sentinel'],
    [
      ['--sentinel', 'nohost', '--sentinel-master', 'm'],
      'error: --sentinel: "nohost" is not host:port',
    ],
    [['--cluster-node', 'n:99999'], 'error: --cluster-node: "n:99999" is not host:port'],
    [
      ['--redis-url', 'http://h:1'],
      'error: --redis-url: must start with redis:// or rediss://, or be an absolute Unix socket path',
    ],
    [
      ['--redis-url', 'redis://h:1', '--tls'],
      'error: --tls is for --sentinel and --cluster-node; for one server use a rediss:// URL',
    ],
    [
      ['--cluster-node', 'n:1', '--database', '1'],
      'error: --database is for --sentinel (a URL names its database as /db; a Cluster has only 0)',
    ],
    [
      ['--sentinel', 's:1', '--sentinel-master', 'm', '--database', '16'],
      'error: --database: must be an integer from 0 to 15',
    ],
  ])('%j: a usage error before connecting', async (args, message) => {
    const r = await cli(['revoke', 'jti', 'x', '--exp', 'never', ...args])
    expect(r).toMatchObject({ code: 2, err: message })
  })

  it('--help lists the deployment options', async () => {
    const r = await cli(['revoke', 'jti', '--help'])
    expect(r.code).toBe(0)
    for (const o of [
      '--redis-url <url>',
      '--sentinel <host:port>',
      '--sentinel-master <name>',
      '--cluster-node <host:port>',
    ])
      expect(r.out).toContain(o)
    expect(r.out).toContain('$REDIS_SENTINEL_PASSWORD')
  })
})
