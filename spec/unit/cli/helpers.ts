import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'
import type { CliIO } from '../../../cli/common'
import { run } from '../../../cli/index'
import { buildRuntime } from '../../../plugins/consumer-jwt/handler'

export const ROOT = resolve(__dirname, '../../..')
export const KONG_YML = join(ROOT, 'kong.yml')
export const KEYS = join(ROOT, 'spec/fixtures/keys')
export const GLOBEX_SECRET = readFileSync(join(KEYS, 'partner-globex.secret'), 'utf8').trim()

export interface CliResult {
  readonly code: number
  readonly out: string
  readonly err: string
}

/** The CLI in-process, with its output captured. */
export async function cli(
  args: readonly string[],
  o: { env?: NodeJS.ProcessEnv; nowMs?: number } = {},
): Promise<CliResult> {
  const out: string[] = []
  const err: string[] = []
  const io: CliIO = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: o.env ?? {},
    now: () => o.nowMs ?? Date.now(),
  }
  const code = await run(args, io)
  return { code, out: out.join('\n'), err: err.join('\n') }
}

export function tempDir(): { dir: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kjt-cli-'))
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) }
}

/** The consumer-jwt config of a kong.yml's first route, merge keys applied, as Kong sends it. */
export function consumerJwtConfig(path: string): Record<string, unknown> {
  const doc = parse(readFileSync(path, 'utf8'), { merge: true }) as {
    services: { routes: { plugins: { name: string; config: Record<string, unknown> }[] }[] }[]
  }
  const plugin = doc.services[0]?.routes[0]?.plugins.find((p) => p.name === 'consumer-jwt')
  if (plugin === undefined) throw new Error(`no consumer-jwt on the first route of ${path}`)
  // Revocation and route scope rules do not take part in verifying a token.
  const { revocation: _r, scopes: _s, ...config } = plugin.config
  return config
}

/**
 * The plugin's own verifier (parseConfig + TokenVerifier) for `config`, at `nowMs`; a jwks_uri
 * is answered with `jwks`.
 */
export function pluginVerifier(
  config: Record<string, unknown>,
  o: { nowMs: number; env?: NodeJS.ProcessEnv; jwks?: unknown },
): { verify: (token: string) => Promise<string> } {
  // What Kong does before the plugin sees the config: resolve env vault references.
  const credentials = (config.credentials as Record<string, unknown>[]).map((c) => {
    const ref = typeof c.secret === 'string' ? /^\{vault:\/\/env\/([^}/]+)\}$/.exec(c.secret) : null
    return ref === null
      ? c
      : { ...c, secret: o.env?.[ref[1]!.toUpperCase().replace(/-/g, '_')] ?? '' }
  })
  const rt = buildRuntime(
    { ...config, credentials },
    {
      clock: { now: () => o.nowMs },
      env: o.env ?? {},
      ...(o.jwks !== undefined
        ? { fetch: (() => Promise.resolve(Response.json(o.jwks))) as unknown as typeof fetch }
        : {}),
    },
  )
  return {
    /** 'PASSED' or the refusal code. */
    verify: async (token) => {
      try {
        await rt.verifier.verify(token)
        return 'PASSED'
      } catch (e) {
        return (e as { code: string }).code
      }
    },
  }
}
