import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * Where the revocation integration tests get a real Redis:
 * - REDIS_URL (CI starts redis-server and exports it): used for everything that does not need
 *   to stop the server;
 * - otherwise a private `redis-server` on a free port in a temp dir, when the binary exists;
 * - otherwise nothing, and the suites say so in their titles.
 * Tests that stop, pause or restart Redis always need a private server.
 */
export const REDIS_BINARY = findBinary()

export function sharedRedisUrl(): string | undefined {
  const url = process.env['REDIS_URL']
  return url === undefined || url === '' ? undefined : url
}

/** Why suites that need Redis are skipped, or undefined when they can run. */
export function noRedisReason(): string | undefined {
  if (sharedRedisUrl() !== undefined || REDIS_BINARY !== undefined) return undefined
  return 'SKIPPED: no REDIS_URL and no redis-server binary (apt-get install redis-server)'
}

/** Why suites that must stop or restart Redis are skipped, or undefined. */
export function noPrivateRedisReason(): string | undefined {
  if (REDIS_BINARY !== undefined) return undefined
  return 'SKIPPED: needs a redis-server binary to start, stop and restart a private server (REDIS_URL cannot be stopped)'
}

function findBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  const path = r.stdout.trim()
  return r.status === 0 && path !== '' ? path : undefined
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
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
}

/** Whether a Redis answers PING on the loopback port within 300 ms. */
export async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket()
    const done = (ok: boolean): void => {
      s.destroy()
      resolve(ok)
    }
    s.setTimeout(300, () => done(false))
    s.once('error', () => done(false))
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'))
    s.once('data', (d) => done(d.toString().startsWith('+PONG')))
  })
}

/** A private redis-server: its own port and data dir, stoppable, pausable and restartable. */
export class PrivateRedis {
  #proc: ChildProcess | undefined
  #paused = false

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly appendonly: boolean,
  ) {}

  static async start(options: { appendonly?: boolean } = {}): Promise<PrivateRedis> {
    if (REDIS_BINARY === undefined) throw new Error('redis-server not installed')
    const r = new PrivateRedis(
      await freePort(),
      mkdtempSync(join(tmpdir(), 'revocation-redis-')),
      options.appendonly ?? false,
    )
    await r.launch()
    return r
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.#proc !== undefined
  }

  private async launch(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      this.appendonly ? 'yes' : 'no',
      '--appendfsync',
      'always',
      '--daemonize',
      'no',
    ]
    const proc = spawn(REDIS_BINARY as string, args, { stdio: 'ignore' })
    this.#proc = proc
    proc.once('exit', () => {
      if (this.#proc === proc) this.#proc = undefined
    })
    const until = Date.now() + 10_000
    while (Date.now() < until) {
      if (await ping(this.port)) return
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING`)
  }

  /** Stops the server (SIGTERM: a clean shutdown that flushes the AOF) and waits for it. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.#proc
    if (proc === undefined) return
    if (this.#paused) this.resume()
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(signal)
    await exited
  }

  /** Starts it again on the same port with the same data dir. */
  async restart(): Promise<void> {
    await this.stop()
    await this.launch()
  }

  /** Freezes the process: connections stay open but nothing is answered (a hung Redis). */
  pause(): void {
    this.#proc?.kill('SIGSTOP')
    this.#paused = true
  }

  resume(): void {
    this.#proc?.kill('SIGCONT')
    this.#paused = false
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL')
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** A unique key prefix per test, so suites can share one Redis (REDIS_URL) safely. */
export function testPrefix(name: string): string {
  return `test:${name}:${process.pid}:${Math.random().toString(36).slice(2, 8)}:`
}

/** Deletes the keys this test process wrote under {@link testPrefix} (matters on a shared REDIS_URL). */
export async function cleanupTestKeys(url: string): Promise<void> {
  const { Redis } = await import('ioredis')
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(
        cursor,
        'MATCH',
        `test:*:${process.pid}:*`,
        'COUNT',
        500,
      )
      cursor = next
      if (keys.length > 0) await client.del(...keys)
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
}
