/**
 * One kong-js-pluginserver process per plugin, started and queried the way Kong 3.9 does
 * (doc §2.8–2.9, FINDINGS F1/F2/F12/F22).
 *
 * - The query command (`--dump-all-plugins`) must print strict JSON; Kong 3.9 registers only the
 *   first plugin of the dump.
 * - `Version` must be "x.y.z" and `Priority` an integer (Kong ≥3.0 refuses the plugin otherwise).
 * - The start command is respawned when it exits (Kong respawns at once, at most once per second).
 * - Stopping sends SIGTERM and no RPC.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { RpcClient, type WireRecord } from './msgpack-rpc'
import type { SchemaField } from '../cli/kong/schema'

export interface PluginInfo {
  readonly Name: string
  readonly Version: string
  readonly Phases: readonly string[]
  readonly Priority: number
  readonly Schema: { readonly name: string; readonly fields: readonly SchemaField[] }
}

/**
 * Which plugin-server command to run: `toolkit` (default) is ours, dist/pluginserver/main.js,
 * the one docker/kong.conf gives Kong (kong-pdk's server with the event-leak fix);
 * `kong-pdk` is kong-pdk's own bin, unchanged, for comparisons.
 */
export type PluginServerKind = 'toolkit' | 'kong-pdk'

/** Path of the plugin-server script of that kind. */
export function pluginServerBin(kind: PluginServerKind = 'toolkit'): string {
  if (kind === 'kong-pdk') {
    // kong-pdk's package.json "main" points at a file that does not exist; resolve a real one
    const listener = require.resolve('kong-pdk/listener.js')
    return path.join(path.dirname(listener), 'bin', 'kong-js-pluginserver')
  }
  // From the build (dist/emulator/) or the sources (emulator/, run by the test runner).
  const built = path.join(__dirname, '..', 'pluginserver', 'main.js')
  const bin = fs.existsSync(built)
    ? built
    : path.join(__dirname, '..', 'dist', 'pluginserver', 'main.js')
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`)
  return bin
}

const VERSION_RE = /^\d+\.\d+\.\d+/

/** Runs the query command and validates its output as Kong 3.9 does; returns the first plugin. */
export async function queryPluginInfo(
  dir: string,
  kind: PluginServerKind = 'toolkit',
): Promise<PluginInfo> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [pluginServerBin(kind), '--plugins-directory', dir, '--dump-all-plugins'],
      { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' } },
      (err, out) =>
        err ? reject(new Error(`query command failed for ${dir}: ${err.message}`)) : resolve(out),
    )
  })
  let dump: unknown
  try {
    dump = JSON.parse(stdout)
  } catch {
    throw new Error(
      `query command for ${dir} did not print strict JSON (Kong would fail to start): ${stdout.slice(0, 300)}`,
    )
  }
  const list: unknown =
    dump !== null && typeof dump === 'object' && !Array.isArray(dump) && 'Plugins' in dump
      ? dump.Plugins
      : dump
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error(`no plugin found in ${dir} (Kong: "plugin is enabled but not installed")`)
  }
  const first = list[0] as Partial<PluginInfo>
  if (typeof first.Name !== 'string') throw new Error(`plugin in ${dir} has no Name`)
  if (typeof first.Version !== 'string' || !VERSION_RE.test(first.Version)) {
    throw new Error(
      `Plugin ${first.Name} cannot be loaded because its VERSION field does not follow the "x.y.z" format`,
    )
  }
  if (typeof first.Priority !== 'number' || !Number.isInteger(first.Priority)) {
    throw new Error(`Plugin ${first.Name}: PRIORITY must be an integer`)
  }
  if (!Array.isArray(first.Phases)) throw new Error(`Plugin ${first.Name}: no Phases`)
  if (
    first.Phases.includes('response') &&
    (first.Phases.includes('header_filter') || first.Phases.includes('body_filter'))
  ) {
    throw new Error(`Plugin ${first.Name} cannot have both response and header_filter/body_filter`)
  }
  return first as PluginInfo
}

export interface PluginServerOptions {
  readonly dir: string
  readonly prefix: string
  readonly readTimeoutMs?: number
  readonly onWire?: (rec: WireRecord) => void
  readonly onLog?: (line: string) => void
  /** Respawn the process when it exits unexpectedly, as Kong does (default true). */
  readonly respawn?: boolean
  /** Which plugin-server command (default `toolkit`). */
  readonly kind?: PluginServerKind
}

export class PluginServer {
  readonly rpc: RpcClient
  readonly socketPath: string
  private child: ChildProcess | undefined
  private stopping = false
  private lastSpawn = 0
  private exitWaiters: Array<() => void> = []

  private constructor(
    readonly info: PluginInfo,
    private readonly opts: PluginServerOptions,
  ) {
    const sockName = `${info.Name}.sock`
    this.socketPath = path.join(opts.prefix, sockName)
    this.rpc = new RpcClient({
      serverName: info.Name,
      socketPath: this.socketPath,
      ...(opts.readTimeoutMs !== undefined ? { readTimeoutMs: opts.readTimeoutMs } : {}),
      ...(opts.onWire ? { onWire: opts.onWire } : {}),
    })
  }

  get name(): string {
    return this.info.Name
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Queries the directory, spawns the server and waits until its socket accepts connections. */
  static async start(opts: PluginServerOptions): Promise<PluginServer> {
    const dir = path.resolve(opts.dir)
    const info = await queryPluginInfo(dir, opts.kind)
    const server = new PluginServer(info, { ...opts, dir })
    await server.spawn()
    return server
  }

  /** Sends SIGTERM (no RPC, F12) and waits for the process to exit. */
  async stop(): Promise<void> {
    this.stopping = true
    this.rpc.close()
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve))
    child.kill('SIGTERM')
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(killTimer)
  }

  /** Kills the process with a signal (tests of F22); it is respawned like Kong does. */
  kill(signal: NodeJS.Signals): void {
    this.child?.kill(signal)
  }

  /** Resolves when the server accepts connections again (after a respawn). */
  async waitReady(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (await canConnect(this.socketPath)) return
      if (Date.now() > deadline)
        throw new Error(`plugin server ${this.name} not listening on ${this.socketPath}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  private async spawn(): Promise<void> {
    this.lastSpawn = Date.now()
    try {
      fs.unlinkSync(this.socketPath)
    } catch {
      // no stale socket
    }
    const child = spawn(
      process.execPath,
      [
        pluginServerBin(this.opts.kind),
        '--plugins-directory',
        this.opts.dir,
        '--kong-prefix',
        this.opts.prefix,
        '--sock-name',
        path.basename(this.socketPath),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' },
      },
    )
    this.child = child
    const log = (buf: Buffer): void => {
      for (const line of buf.toString('utf8').split('\n')) {
        // Kong logs each line of the server's output at [info] with the prefix [<name>:<pid>]
        if (line.trim() !== '') this.opts.onLog?.(`[${this.name}:${child.pid ?? '?'}] ${line}`)
      }
    }
    // stdio 'pipe': both streams exist
    child.stdout.on('data', log)
    child.stderr.on('data', log)
    child.on('exit', (code, signal) => {
      this.opts.onLog?.(
        `external pluginserver '${this.name}' terminated: ${signal ? `signal ${signal}` : `exit ${code ?? '?'}`}`,
      )
      const waiters = this.exitWaiters
      this.exitWaiters = []
      for (const w of waiters) w()
      if (this.stopping || this.opts.respawn === false || code === 127) return
      const delay = Math.max(0, 1000 - (Date.now() - this.lastSpawn))
      setTimeout(() => {
        if (!this.stopping) void this.spawn().catch(() => undefined)
      }, delay)
    })
    await this.waitReady()
  }
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(socketPath)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}
