/**
 * The "Kong target" the e2e scenarios run against.
 *
 * - Default: the Kong emulator (emulator/) on the given kong.yml, with the project's built plugin
 *   servers (dist/servers/<name>, one per plugin, as Kong 3.9 needs) and an echo upstream that
 *   every service and upstream target is pointed at.
 * - When KONG_PROXY_URL and KONG_ADMIN_URL are set: that running Kong. The config is pushed with
 *   `POST /config` on its admin API; services/targets are pointed at KONG_ECHO_URL when set (an echo
 *   upstream Kong can reach), otherwise the config is pushed unchanged.
 *
 * The same scenario code runs unchanged on both.
 */
import fs from 'node:fs'
import path from 'node:path'
import {
  startEchoUpstream,
  type EchoRecord,
  type EchoUpstream,
} from '../../../emulator/echo-upstream'
import { pointAtUpstream } from '../../../emulator/demo-kit'
import { start, type RunningEmulator } from '../../../emulator/emulator'
import type { LogEntry } from '../../../emulator/request-context'

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
  /** Base URL of the echo upstream (undefined for an external Kong without KONG_ECHO_URL). */
  readonly upstreamUrl: string | undefined
  /** Requests the local echo upstream received (empty for an external Kong). */
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
  /** Waits until log phases of finished requests have run (emulator; no-op for an external Kong). */
  settled(): Promise<void>
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

async function startExternal(
  opts: KongTargetOptions,
  proxyUrl: string,
  adminUrl: string,
): Promise<KongTarget> {
  const echoUrl = process.env['KONG_ECHO_URL']
  const rewrite = (c: string): string =>
    opts.useEchoUpstream !== false && echoUrl ? pointAtUpstream(c, echoUrl) : c
  const push = async (config: string): Promise<void> => {
    const res = await fetch(`${adminUrl}/config`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ config: rewrite(config) }),
    })
    if (res.status !== 201)
      throw new Error(`POST /config failed: ${res.status} ${await res.text()}`)
  }
  await push(opts.config)
  return {
    kind: 'external',
    proxyUrl,
    adminUrl,
    upstreamUrl: echoUrl,
    upstreamRequests: [],
    logs: [],
    emulator: undefined,
    proxy: (p, init) => fetch(`${proxyUrl}${p}`, init),
    admin: (p, init) => fetch(`${adminUrl}${p}`, init),
    upstreamRequestFor: () => undefined,
    reload: push,
    settled: () => new Promise((r) => setTimeout(r, 100)),
    stop: () => Promise.resolve(),
  }
}

/** Starts the Kong target for one e2e file (call `stop()` in afterAll). */
export async function startKongTarget(opts: KongTargetOptions): Promise<KongTarget> {
  const proxyEnv = process.env['KONG_PROXY_URL']
  const adminEnv = process.env['KONG_ADMIN_URL']
  if (proxyEnv && adminEnv)
    return startExternal(opts, proxyEnv.replace(/\/$/, ''), adminEnv.replace(/\/$/, ''))

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
    settled: () => emu.idle(),
    stop: async () => {
      await emu.stop()
      await echo.stop()
    },
  }
}
