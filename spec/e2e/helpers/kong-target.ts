/**
 * The "Kong target" the e2e scenarios run against.
 *
 * - Default: the Kong emulator (emulator/) on the given kong.yml, with the project's built plugin
 *   servers (dist/servers/<name>, one per plugin, as Kong 3.9 needs) and an echo upstream that
 *   every service and upstream target is pointed at.
 * - When KONG_PROXY_URL and KONG_ADMIN_URL are set: that running Kong (DB-less). The config is
 *   pushed with `POST /config` on its admin API, every service and upstream target pointed at an
 *   echo upstream this process runs (on loopback, or at KONG_ECHO_URL for a Kong elsewhere), and
 *   each push waits until Kong serves it. What reached the upstream is matched by
 *   X-Kong-Request-Id, which Kong 3.x sends both ways by default.
 *
 * - When KONG_TARGET=container: Kong built from docker/Dockerfile and started by testcontainers
 *   (spec/e2e/helpers/container-target.ts), driven like an external Kong; needs a Docker engine.
 *
 * The same scenario code runs unchanged on all three.
 */
import fs from 'node:fs'
import path from 'node:path'
import {
  startEchoUpstream,
  type EchoRecord,
  type EchoUpstream,
} from '../../../emulator/echo-upstream'
import { stringify } from 'yaml'
import { parseKongYaml } from '../../../cli/kong/declarative-config'
import { pointAtUpstream } from '../../../emulator/demo-kit'
import { start, type RunningEmulator } from '../../../emulator/emulator'
import type { LogEntry } from '../../../emulator/request-context'
import { startContainerTarget } from './container-target'

export interface KongTargetOptions {
  /** kong.yml text (YAML or JSON). */
  readonly config: string
  /** Point every service and upstream target at the echo upstream (default true). */
  readonly useEchoUpstream?: boolean
  /** Plugin-server directories for the emulator (default: every dist/servers/<name>). */
  readonly pluginDirs?: readonly string[]
  /** Environment for {vault://env/…} references (emulator; default process.env). */
  readonly env?: NodeJS.ProcessEnv
  /** Shortened plugin-server read timeout (emulator only; Kong: 60 s). */
  readonly rpcReadTimeoutMs?: number
}

export interface KongTarget {
  readonly kind: 'emulator' | 'external'
  readonly proxyUrl: string
  readonly adminUrl: string
  /** Base URL of the echo upstream, as Kong reaches it. */
  readonly upstreamUrl: string | undefined
  /** Requests the echo upstream received. */
  readonly upstreamRequests: readonly EchoRecord[]
  /** Logs of the emulated Kong (kong.log.*, plugin-server output); empty for an external Kong. */
  readonly logs: readonly LogEntry[]
  /** The running emulator (undefined for an external Kong). */
  readonly emulator: RunningEmulator | undefined
  /** fetch() against the proxy: `proxy('/orders', { headers })`. */
  proxy(pathAndQuery: string, init?: RequestInit): Promise<Response>
  /** fetch() against the admin API. */
  admin(pathAndQuery: string, init?: RequestInit): Promise<Response>
  /** The echo record of a proxied response (matched by X-Kong-Request-Id), if it reached the upstream. */
  upstreamRequestFor(res: Response): EchoRecord | undefined
  /** Loads another kong.yml (POST /config), rewritten like the first one. */
  reload(config: string): Promise<void>
  stop(): Promise<void>
}

export { pointAtUpstream }

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..')

/** dist/servers/<name> for every built plugin (run `npm run build` first). */
export function builtPluginDirs(root = REPO_ROOT): string[] {
  const base = path.join(root, 'dist', 'servers')
  if (!fs.existsSync(base)) return []
  return fs
    .readdirSync(base, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => path.join(base, d.name))
}

/**
 * A probe route for "is this config live?": a unique path per push. Kong answers 404 (no Route
 * matched) while the previous config is still in force, anything else once the pushed one is
 * (with kong.yml's global acl guard the probe gets acl's 401, which is fine: the route exists).
 */
function withProbeRoute(config: string, upstreamUrl: string, probePath: string): string {
  const doc = parseKongYaml(config) as Record<string, unknown>
  const services = Array.isArray(doc['services']) ? (doc['services'] as unknown[]) : []
  services.push({
    name: 'kjt-e2e-live-probe',
    url: upstreamUrl,
    routes: [{ name: 'kjt-e2e-live-probe', paths: [probePath] }],
  })
  doc['services'] = services
  return stringify(doc)
}

/** How a Kong that is not this process reaches the servers the tests run on loopback. */
export interface ExternalReach {
  /** The echo upstream, already listening. */
  readonly echo: EchoUpstream
  /** The echo's URL as Kong reaches it. */
  readonly echoUrl: string
  /** Host name that stands for this machine's loopback inside Kong (a container), if any. */
  readonly loopbackAlias?: string
}

/** The echo upstream for a Kong on this machine, or at KONG_ECHO_URL for a Kong elsewhere. */
async function defaultReach(): Promise<ExternalReach> {
  // Our own echo upstream, which Kong must reach: on loopback for a Kong on this machine, or
  // at KONG_ECHO_URL (e.g. http://host.docker.internal:18080 for a Kong in a container), whose
  // port it then listens on, on every interface.
  const given = process.env['KONG_ECHO_URL']
  const echo = await startEchoUpstream(
    given === undefined ? 0 : Number(new URL(given).port || 80),
    given === undefined ? '127.0.0.1' : '0.0.0.0',
  )
  return { echo, echoUrl: given ?? echo.url }
}

/** Rewrites loopback URLs (JWKS endpoint, Redis, …) of a config to the alias Kong resolves. */
export function toLoopbackAlias(config: string, alias: string | undefined): string {
  return alias === undefined ? config : config.replace(/\b(127\.0\.0\.1|localhost)(?=:\d)/g, alias)
}

export async function startExternal(
  opts: KongTargetOptions,
  proxyUrl: string,
  adminUrl: string,
  reach?: ExternalReach,
): Promise<KongTarget> {
  const { echo, echoUrl, loopbackAlias } = reach ?? (await defaultReach())
  const rewrite = (c: string): string =>
    toLoopbackAlias(opts.useEchoUpstream === false ? c : pointAtUpstream(c, echoUrl), loopbackAlias)
  let pushes = 0
  const push = async (config: string): Promise<void> => {
    const probe = `/__kjt-e2e-live/${process.pid}-${++pushes}`
    const res = await fetch(`${adminUrl}/config`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ config: withProbeRoute(rewrite(config), echoUrl, probe) }),
    })
    if (res.status !== 201)
      throw new Error(`POST /config failed: ${res.status} ${await res.text()}`)
    // Kong applies a pushed config a moment later, and restarts every plugin instance in use.
    const deadline = Date.now() + 15_000
    for (;;) {
      const live = await fetch(`${proxyUrl}${probe}`)
      await live.arrayBuffer()
      if (live.status !== 404) return
      if (Date.now() > deadline) throw new Error(`config pushed to ${adminUrl} not live after 15 s`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  try {
    await push(opts.config)
  } catch (error) {
    await echo.stop()
    throw error
  }
  return {
    kind: 'external',
    proxyUrl,
    adminUrl,
    upstreamUrl: echoUrl,
    upstreamRequests: echo.received,
    logs: [],
    emulator: undefined,
    proxy: (p, init) => fetch(`${proxyUrl}${p}`, init),
    admin: (p, init) => fetch(`${adminUrl}${p}`, init),
    upstreamRequestFor: (res) => {
      const id = res.headers.get('x-kong-request-id')
      return id === null ? undefined : echo.byRequestId(id)
    },
    reload: push,
    stop: () => echo.stop(),
  }
}

/** Starts the Kong target for one e2e file (call `stop()` in afterAll). */
export async function startKongTarget(opts: KongTargetOptions): Promise<KongTarget> {
  const proxyEnv = process.env['KONG_PROXY_URL']
  const adminEnv = process.env['KONG_ADMIN_URL']
  if (proxyEnv && adminEnv)
    return startExternal(opts, proxyEnv.replace(/\/$/, ''), adminEnv.replace(/\/$/, ''))
  if (process.env['KONG_TARGET'] === 'container') return startContainerTarget(opts)

  const echo: EchoUpstream = await startEchoUpstream()
  const rewrite = (c: string): string =>
    opts.useEchoUpstream === false ? c : pointAtUpstream(c, echo.url)
  const pluginDirs = opts.pluginDirs ?? builtPluginDirs()
  let emu: RunningEmulator
  try {
    emu = await start({
      config: rewrite(opts.config),
      pluginDirs,
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.rpcReadTimeoutMs !== undefined ? { rpcReadTimeoutMs: opts.rpcReadTimeoutMs } : {}),
    })
  } catch (e) {
    await echo.stop()
    throw e
  }
  return {
    kind: 'emulator',
    proxyUrl: emu.proxyUrl,
    adminUrl: emu.adminUrl,
    upstreamUrl: echo.url,
    upstreamRequests: echo.received,
    logs: emu.logs,
    emulator: emu,
    proxy: (p, init) => fetch(`${emu.proxyUrl}${p}`, init),
    admin: (p, init) => fetch(`${emu.adminUrl}${p}`, init),
    upstreamRequestFor: (res) => {
      const id = res.headers.get('x-kong-request-id')
      return id === null ? undefined : echo.byRequestId(id)
    },
    reload: async (config) => {
      const res = await fetch(`${emu.adminUrl}/config`, {
        method: 'POST',
        headers: { 'Content-Type': 'text/yaml' },
        body: rewrite(config),
      })
      if (res.status !== 201)
        throw new Error(`POST /config failed: ${res.status} ${await res.text()}`)
    },
    stop: async () => {
      await emu.stop()
      await echo.stop()
    },
  }
}
