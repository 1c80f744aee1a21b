/**
 * kong-jwt-toolkit's Kong emulator — a TEST AND DEMO TOOL, NOT A GATEWAY.
 *
 * It plays Kong 3.9.3's part against the real kong-js-pluginserver processes (one per plugin, as
 * Kong 3.9 needs) so that "green here" means "works in Kong": declarative config in, HTTP through,
 * the plugin-server protocol exactly as the recordings in ../shared/kong-transcripts show it.
 * emulator/README.md lists every emulated behaviour with the recording that backs it.
 *
 * Programmatic API: `start(options)` → { proxyUrl, adminUrl, stop(), reload(), logs, wire, … }.
 * Admin API: `POST /config` (kong.yml text or JSON; reload without restart), `GET /status`.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { ConfigError } from '../cli/kong/declarative-config'
import { Gateway, builtinPlugins, loadedPluginFromServer, type LoadedPlugin } from './gateway'
import type { WireRecord } from './msgpack-rpc'
import { PluginServer, type PluginServerKind } from './plugin-server'
import type { LogEntry } from './request-context'

export interface EmulatorOptions {
  /** kong.yml text (YAML or JSON). */
  readonly config: string
  /** One directory per plugin server (e.g. dist/servers/<name>), absolute or relative to cwd. */
  readonly pluginDirs: readonly string[]
  readonly proxyPort?: number
  readonly adminPort?: number
  readonly host?: string
  /** nginx's 60 s lua_socket_read_timeout, shortened for tests of slow handlers. */
  readonly rpcReadTimeoutMs?: number
  /**
   * Record every MessagePack message exchanged with the plugin servers (replay tests); the
   * bench switches recording on and off around the requests it inspects (setWireRecording).
   */
  readonly recordWire?: boolean
  /** Environment used for {vault://env/…} references (default process.env). */
  readonly env?: NodeJS.ProcessEnv
  /** Print logs to stderr as they happen. */
  readonly printLogs?: boolean
  /** Which plugin-server command to start: ours (default) or kong-pdk's own, for comparisons. */
  readonly pluginServer?: PluginServerKind
}

export interface RunningEmulator {
  readonly proxyUrl: string
  readonly adminUrl: string
  /** Everything Kong would have logged: PDK kong.log.*, plugin-server output, RPC errors. */
  readonly logs: LogEntry[]
  /** MessagePack messages Kong↔plugin servers, when recordWire is set. */
  readonly wire: WireRecord[]
  /** Pauses or resumes recording into `wire` (only when started with recordWire). */
  setWireRecording(on: boolean): void
  readonly servers: ReadonlyMap<string, PluginServer>
  readonly gateway: Gateway
  /** Replaces the configuration (like Kong's POST /config). Throws ConfigError when invalid. */
  reload(config: string): void
  /** Resolves when all log phases started so far have finished. */
  idle(): Promise<void>
  stop(): Promise<void>
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
}

export async function start(options: EmulatorOptions): Promise<RunningEmulator> {
  const host = options.host ?? '127.0.0.1'
  const logs: LogEntry[] = []
  const wire: WireRecord[] = []
  let recording = true
  const onLog = (entry: LogEntry): void => {
    logs.push(entry)
    if (options.printLogs)
      process.stderr.write(`[${entry.level}] [${entry.plugin}] ${entry.message}\n`)
  }
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'kong-emu-'))
  const servers = new Map<string, PluginServer>()
  const stopAll = async (): Promise<void> => {
    await Promise.all([...servers.values()].map((s) => s.stop()))
    fs.rmSync(prefix, { recursive: true, force: true })
  }
  try {
    const started = await Promise.all(
      options.pluginDirs.map((dir) =>
        PluginServer.start({
          dir,
          prefix,
          ...(options.rpcReadTimeoutMs !== undefined
            ? { readTimeoutMs: options.rpcReadTimeoutMs }
            : {}),
          ...(options.recordWire
            ? {
                onWire: (r: WireRecord) => {
                  if (recording) wire.push(r)
                },
              }
            : {}),
          onLog: (line) => onLog({ level: 'info', plugin: 'pluginserver', message: line }),
          ...(options.pluginServer !== undefined ? { kind: options.pluginServer } : {}),
        }),
      ),
    )
    for (const s of started) {
      if (servers.has(s.name))
        throw new ConfigError(`two plugin servers report the plugin '${s.name}'`)
      servers.set(s.name, s)
    }
  } catch (e) {
    await stopAll()
    throw e
  }
  const plugins = new Map<string, LoadedPlugin>()
  for (const b of builtinPlugins()) plugins.set(b.name, b)
  for (const s of servers.values()) plugins.set(s.name, loadedPluginFromServer(s))

  const gateway = new Gateway({
    plugins,
    nodeId: crypto.randomUUID(),
    onLog,
    ...(options.env ? { env: options.env } : {}),
  })
  try {
    gateway.load(options.config)
  } catch (e) {
    await stopAll()
    throw e
  }

  const proxy = gateway.createProxyServer()
  proxy.keepAliveTimeout = 60_000
  const admin = http.createServer((req, res) => handleAdmin(req, res, gateway, servers))
  let proxyPort: number
  let adminPort: number
  try {
    proxyPort = await listen(proxy, options.proxyPort ?? 0, host)
    adminPort = await listen(admin, options.adminPort ?? 0, host)
  } catch (e) {
    await Promise.all([close(proxy), close(admin)])
    await stopAll()
    throw e
  }
  gateway.setProxyPort(proxyPort)
  return {
    proxyUrl: `http://${host}:${proxyPort}`,
    adminUrl: `http://${host}:${adminPort}`,
    logs,
    wire,
    setWireRecording: (on) => {
      recording = on
    },
    servers,
    gateway,
    reload: (config: string) => {
      gateway.load(config)
    },
    idle: () => gateway.idle(),
    stop: async () => {
      await Promise.all([close(proxy), close(admin)])
      await gateway.idle()
      await stopAll()
    },
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  })
  res.end(text)
}

/** The POST /config body: raw kong.yml/JSON, `{"config": "<yaml>"}`, or form field `config=`. */
export function configFromAdminBody(body: string, contentType: string | undefined): string {
  const ct = (contentType ?? '').toLowerCase()
  if (ct.includes('application/x-www-form-urlencoded')) {
    const v = new URLSearchParams(body).get('config')
    if (v !== null) return v
  }
  if (ct.includes('application/json')) {
    try {
      const doc = JSON.parse(body) as unknown
      if (
        doc !== null &&
        typeof doc === 'object' &&
        typeof (doc as { config?: unknown }).config === 'string'
      ) {
        return (doc as { config: string }).config
      }
    } catch {
      // not JSON: parsed as YAML below, which reports the error
    }
  }
  return body
}

function handleAdmin(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  gateway: Gateway,
  servers: ReadonlyMap<string, PluginServer>,
): void {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const url = (req.url ?? '/').split('?')[0]
    if (req.method === 'GET' && url === '/status') {
      sendJson(res, 200, {
        emulator: true,
        server: { connections_accepted: 0 },
        configuration_hash: gateway.current ? 'loaded' : null,
        plugin_servers: [...servers.values()].map((s) => ({ name: s.name, pid: s.pid ?? null })),
      })
      return
    }
    if (req.method === 'GET' && url === '/') {
      sendJson(res, 200, {
        version: '3.9.3',
        tagline: 'Welcome to kong (emulator: a test and demo tool)',
      })
      return
    }
    if (req.method === 'POST' && url === '/config') {
      try {
        const state = gateway.load(
          configFromAdminBody(Buffer.concat(chunks).toString('utf8'), req.headers['content-type']),
        )
        // Kong answers 201 with the flattened entities; the emulator returns a summary
        sendJson(res, 201, {
          services: state.config.services.length,
          routes: state.config.routes.length,
          consumers: state.config.consumers.length,
          plugins: state.config.plugins.length,
        })
      } catch (e) {
        sendJson(res, 400, {
          message: `declarative config is invalid: ${(e as Error).message}`,
          name: 'invalid declarative configuration',
          code: 14,
        })
      }
      return
    }
    sendJson(res, 404, { message: 'Not found' })
  })
}
