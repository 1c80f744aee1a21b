import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { ping, REDIS_BINARY } from './redis-server'

/**
 * Real Sentinel and Cluster deployments for the revocation integration tests, started from
 * Debian's redis packages: every process is private (its own loopback port and temp dir, no
 * persistence) and killed by `dispose()` (and, as a last resort, when the test process exits).
 */

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' })
  const path = r.stdout.trim()
  return r.status === 0 && path !== '' ? path : undefined
}

/** How to start a Sentinel: `redis-sentinel` (package redis-sentinel), else `redis-server --sentinel`. */
const SENTINEL: { file: string; args: string[] } | undefined = (() => {
  const sentinel = which('redis-sentinel')
  if (sentinel !== undefined) return { file: sentinel, args: [] }
  return REDIS_BINARY === undefined ? undefined : { file: REDIS_BINARY, args: ['--sentinel'] }
})()

const REDIS_CLI = which('redis-cli')

/** Why the Sentinel suite is skipped, or undefined when it can run. */
export function noSentinelReason(): string | undefined {
  if (REDIS_BINARY !== undefined && SENTINEL !== undefined) return undefined
  return 'SKIPPED: no redis-server binary to run a master, a replica and Sentinels (apt-get install redis-server redis-sentinel)'
}

/** Why the Cluster suite is skipped, or undefined when it can run. */
export function noClusterReason(): string | undefined {
  if (REDIS_BINARY !== undefined && REDIS_CLI !== undefined) return undefined
  return 'SKIPPED: needs redis-server and redis-cli (apt-get install redis-server) to create a Cluster'
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

const taken = new Set<number>()

async function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/**
 * A free loopback port, never one this process handed out before. `withBus`: port + 10000 is
 * free too (a Cluster node's bus port).
 */
async function freePort(withBus = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address()
        srv.close(() =>
          typeof addr === 'object' && addr !== null
            ? resolve(addr.port)
            : reject(new Error('no port')),
        )
      })
    })
    if (taken.has(port)) continue
    if (withBus && (port + 10_000 > 65_535 || !(await canListen(port + 10_000)))) continue
    taken.add(port)
    if (withBus) taken.add(port + 10_000)
    return port
  }
  throw new Error('no free port')
}

/** Polls `probe` until it returns a value other than undefined, or throws after `ms`. */
export async function waitFor<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 50,
): Promise<T> {
  const until = Date.now() + ms
  let last: unknown
  while (Date.now() < until) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (error) {
      last = error
    }
    await sleep(intervalMs)
  }
  const why = last instanceof Error ? `: ${last.message}` : ''
  throw new Error(`${what}: not within ${ms} ms${why}`)
}

/** One command on a short-lived connection to 127.0.0.1:`port` (setup and checks only). */
export async function command(port: number, name: string, ...args: string[]): Promise<unknown> {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  c.on('error', () => undefined)
  try {
    await c.connect()
    return await c.call(name, ...args)
  } finally {
    c.disconnect()
  }
}

/** `INFO <section>` as a map. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const text = String(await command(port, 'INFO', section))
  const out = new Map<string, string>()
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1))
  }
  return out
}

const LIVE = new Set<ChildProcess>()
process.once('exit', () => {
  for (const p of LIVE) p.kill('SIGKILL')
})

/** One redis-server or redis-sentinel process on its own port, stoppable and restartable. */
export class RedisProcess {
  #proc: ChildProcess | undefined

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly file: string,
    private readonly args: readonly string[],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.#proc !== undefined
  }

  async start(): Promise<void> {
    const proc = spawn(this.file, [...this.args], { cwd: this.dir, stdio: 'ignore' })
    this.#proc = proc
    LIVE.add(proc)
    proc.once('exit', () => {
      LIVE.delete(proc)
      if (this.#proc === proc) this.#proc = undefined
    })
    const until = Date.now() + 10_000
    while (Date.now() < until) {
      if (this.#proc !== proc) throw new Error(`${this.file} on port ${this.port} exited`)
      if (await ping(this.port)) return
      await sleep(50)
    }
    throw new Error(`${this.file} on port ${this.port} did not answer PING`)
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.#proc
    if (proc === undefined) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(signal)
    await exited
  }
}

function serverArgs(port: number, dir: string, extra: string[] = []): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    ...extra,
  ]
}

/**
 * A master, optionally one replica, and `sentinels` Sentinels (quorum 1) monitoring the master
 * as `name`.
 */
export class SentinelDeployment {
  private constructor(
    readonly name: string,
    readonly root: string,
    readonly servers: RedisProcess[],
    readonly sentinels: RedisProcess[],
  ) {}

  static async start(options: {
    replica: boolean
    sentinels: number
  }): Promise<SentinelDeployment> {
    if (REDIS_BINARY === undefined || SENTINEL === undefined) throw new Error(noSentinelReason())
    const root = mkdtempSync(join(tmpdir(), 'revocation-sentinel-'))
    const name = 'revocation-it'
    const d = new SentinelDeployment(name, root, [], [])
    try {
      const masterPort = await freePort()
      const mkdir = (sub: string): string => {
        const dir = join(root, sub)
        mkdirSync(dir)
        return dir
      }
      const masterDir = mkdir('master')
      const master = new RedisProcess(
        masterPort,
        masterDir,
        REDIS_BINARY,
        serverArgs(masterPort, masterDir),
      )
      d.servers.push(master)
      await master.start()
      if (options.replica) {
        const port = await freePort()
        const dir = mkdir('replica')
        const replica = new RedisProcess(
          port,
          dir,
          REDIS_BINARY,
          serverArgs(port, dir, ['--replicaof', '127.0.0.1', String(masterPort)]),
        )
        d.servers.push(replica)
        await replica.start()
        await waitFor('replica in sync', 10_000, async () =>
          (await info(port, 'replication')).get('master_link_status') === 'up' ? true : undefined,
        )
      }
      for (let i = 0; i < options.sentinels; i++) {
        const port = await freePort()
        const dir = mkdir(`sentinel-${i}`)
        const conf = join(dir, 'sentinel.conf')
        writeFileSync(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir}`,
            `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
            `sentinel down-after-milliseconds ${name} 1000`,
            // Also how long a split vote between the Sentinels waits before a new election (x2).
            `sentinel failover-timeout ${name} 3000`,
            '',
          ].join('\n'),
        )
        const sentinel = new RedisProcess(port, dir, SENTINEL.file, [conf, ...SENTINEL.args])
        d.sentinels.push(sentinel)
        await sentinel.start()
      }
      for (const s of d.sentinels) {
        await waitFor('sentinel knows the master', 10_000, async () =>
          (await d.masterPortFrom(s)) === masterPort ? true : undefined,
        )
      }
      return d
    } catch (error) {
      await d.dispose()
      throw error
    }
  }

  get sentinelAddresses(): string[] {
    return this.sentinels.map((s) => s.address)
  }

  /** The master's port as `sentinel` reports it. */
  async masterPortFrom(sentinel: RedisProcess): Promise<number | undefined> {
    const reply = await command(sentinel.port, 'SENTINEL', 'get-master-addr-by-name', this.name)
    return Array.isArray(reply) ? Number(reply[1]) : undefined
  }

  /** The server currently acting as master (asked to the servers themselves). */
  async currentMaster(): Promise<RedisProcess | undefined> {
    for (const s of this.servers) {
      if (!s.running) continue
      const role = await command(s.port, 'ROLE').catch(() => undefined)
      if (Array.isArray(role) && role[0] === 'master') return s
    }
    return undefined
  }

  /**
   * SENTINEL FAILOVER through the first Sentinel, once it can pick the replica; resolves when
   * the Sentinel names the replica as the new master and the replica says it is master.
   */
  async failover(timeoutMs: number): Promise<{ from: RedisProcess; to: RedisProcess }> {
    const sentinel = this.sentinels[0] as RedisProcess
    const fromPort = await this.masterPortFrom(sentinel)
    const from = this.servers.find((s) => s.port === fromPort)
    const to = this.servers.find((s) => s.port !== fromPort)
    if (from === undefined || to === undefined) throw new Error('failover needs a replica')
    const t0 = Date.now()
    await waitFor('sentinel accepts FAILOVER', timeoutMs, async () => {
      const reply = await command(sentinel.port, 'SENTINEL', 'failover', this.name)
      return reply === 'OK' ? true : undefined
    })
    const left = (): number => Math.max(100, timeoutMs - (Date.now() - t0))
    await waitFor('sentinel names the new master', left(), async () =>
      (await this.masterPortFrom(sentinel)) === to.port ? true : undefined,
    )
    await waitFor('the replica is promoted', left(), async () => {
      const role = await command(to.port, 'ROLE')
      return Array.isArray(role) && role[0] === 'master' ? true : undefined
    })
    return { from, to }
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((p) => p.stop('SIGKILL')))
    rmSync(this.root, { recursive: true, force: true })
  }
}

/** A Redis Cluster of `masters` masters and no replicas, created with `redis-cli --cluster create`. */
export class ClusterDeployment {
  private constructor(
    readonly root: string,
    readonly nodes: RedisProcess[],
  ) {}

  static async start(masters = 3, nodeTimeoutMs = 1000): Promise<ClusterDeployment> {
    if (REDIS_BINARY === undefined || REDIS_CLI === undefined) throw new Error(noClusterReason())
    const root = mkdtempSync(join(tmpdir(), 'revocation-cluster-'))
    const d = new ClusterDeployment(root, [])
    try {
      for (let i = 0; i < masters; i++) {
        const port = await freePort(true)
        const dir = join(root, `node-${i}`)
        mkdirSync(dir)
        d.nodes.push(
          new RedisProcess(
            port,
            dir,
            REDIS_BINARY,
            serverArgs(port, dir, [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              join(dir, 'nodes.conf'),
              '--cluster-node-timeout',
              String(nodeTimeoutMs),
            ]),
          ),
        )
      }
      await Promise.all(d.nodes.map((n) => n.start()))
      const r = spawnSync(
        REDIS_CLI,
        ['--cluster', 'create', ...d.addresses, '--cluster-replicas', '0', '--cluster-yes'],
        { encoding: 'utf8', timeout: 20_000 },
      )
      if (r.status !== 0)
        throw new Error(`redis-cli --cluster create failed: ${r.stdout}${r.stderr}`)
      await d.waitState('ok', 15_000)
      return d
    } catch (error) {
      await d.dispose()
      throw error
    }
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address)
  }

  /** Waits until every running node reports `cluster_state:<state>`. */
  async waitState(state: 'ok' | 'fail', timeoutMs: number): Promise<void> {
    await waitFor(`cluster_state:${state}`, timeoutMs, async () => {
      for (const n of this.nodes) {
        if (!n.running) continue
        const text = String(await command(n.port, 'CLUSTER', 'INFO'))
        if (!text.includes(`cluster_state:${state}`)) return undefined
      }
      return true
    })
  }

  /** The node serving `key`'s slot. */
  async nodeOf(key: string): Promise<RedisProcess> {
    const first = this.nodes.find((n) => n.running) as RedisProcess
    const slot = Number(await command(first.port, 'CLUSTER', 'KEYSLOT', key))
    const shards = (await command(first.port, 'CLUSTER', 'SLOTS')) as [
      number,
      number,
      [string, number, ...unknown[]],
    ][]
    const owner = shards.find(([lo, hi]) => slot >= lo && slot <= hi)
    const node = this.nodes.find((n) => n.port === owner?.[2][1])
    if (node === undefined) throw new Error(`no node serves slot ${slot}`)
    return node
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop('SIGKILL')))
    rmSync(this.root, { recursive: true, force: true })
  }
}
