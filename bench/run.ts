/**
 * `npm run bench`: round trips and CPU of the plugins, reported as counts and as ratios
 * measured in this one run (the machines are noisy; absolute times mean little).
 *
 * 1. Kong round trips per access event, counted on the wire between the Kong emulator and the
 *    real plugin servers, for kong.yml's flows. Targets: consumer-jwt ≤ 5 allowed (cached
 *    token, known consumer), ≤ 2 refused; scope-acl ≤ 3.
 * 2. consumer-jwt verification CPU per algorithm, uncached vs a cache hit.
 * 3. Request latency through the emulator: a route with consumer-jwt + scope-acl vs one with
 *    no plugin.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { stringify, parse } from 'yaml'
import { buildRuntime } from '../plugins/consumer-jwt/handler'
import {
  demoToken,
  globexSecret,
  KEYS_DIR,
  KONG_YML,
  localizeKongYml,
  pointAtUpstream,
  startDemoIdp,
  type DemoConsumer,
} from '../emulator/demo-kit'
import { startEchoUpstream } from '../emulator/echo-upstream'
import { start } from '../emulator/emulator'

const ROOT = path.dirname(KONG_YML)
const N = Number(process.env['BENCH_N'] ?? 300)

function pluginDirs(): string[] {
  const base = path.join(ROOT, 'dist', 'servers')
  return readdirSync(base).map((n) => path.join(base, n))
}

interface Wire {
  server: string
  dir: string
  msg: unknown
}

/** Kong→server requests per plugin server for what happened since `from`. */
function tripsSince(wire: readonly Wire[], from: number): Record<string, number> {
  const out: Record<string, number> = {}
  for (const w of wire.slice(from)) {
    if (w.dir !== 'kong->server') continue
    const method = Array.isArray(w.msg) ? String(w.msg[2]) : ''
    if (method === 'plugin.StartInstance' || method === 'plugin.CloseInstance') continue
    out[w.server] = (out[w.server] ?? 0) + 1
  }
  return out
}

async function roundTrips(): Promise<void> {
  const idp = await startDemoIdp()
  const echo = await startEchoUpstream()
  const doc = parse(
    localizeKongYml(readFileSync(KONG_YML, 'utf8'), { jwksUrl: idp.jwksUrl, redisUrl: undefined }),
  ) as {
    services: { name: string; url?: string; routes?: unknown[] }[]
  }
  doc.services.push({
    name: 'bare',
    url: 'http://bare:8080',
    routes: [{ name: 'bare', paths: ['/bare'] }],
  })
  const kong = await start({
    config: pointAtUpstream(stringify(doc), echo.url),
    pluginDirs: pluginDirs(),
    recordWire: true,
    env: { ...process.env, PARTNER_GLOBEX_SECRET: globexSecret() },
  })
  const send = async (
    path: string,
    token?: string,
    method = 'GET',
  ): Promise<{ status: number; trips: Record<string, number> }> => {
    await kong.idle()
    const from = kong.wire.length
    const res = await fetch(`${kong.proxyUrl}${path}`, {
      method,
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    })
    await res.arrayBuffer()
    await kong.idle()
    return { status: res.status, trips: tripsSince(kong.wire, from) }
  }

  console.log(
    '## Kong round trips per access event (HandleEvent + one Step per answered PDK call)\n',
  )
  console.log('| flow | status | consumer-jwt | scope-acl |')
  console.log('|---|---|---|---|')
  const web = await demoToken('web-app', { scope: 'orders:read' })
  await send('/orders/1', web) // first use: instance start, consumer load, verification
  const flows: [string, string, string | undefined, string?][] = [
    ['web-app GET /orders, cached token and consumer', '/orders/1', web],
    [
      'web-app GET /orders, new token (consumer cached)',
      '/orders/1',
      await demoToken('web-app', { scope: 'orders:read' }),
    ],
    ['no token', '/orders/1', undefined],
    [
      'expired token',
      '/orders/1',
      await demoToken('web-app', {}, { now: Math.floor(Date.now() / 1000) - 3600 }),
    ],
    [
      'partner-acme POST /orders (scope refused; its consumer loaded for the first time)',
      '/orders',
      await demoToken('partner-acme', { scope: 'orders:read' }),
      'POST',
    ],
  ]
  const rows: [string, number, number | undefined, number | undefined][] = []
  for (const [title, p, token, method] of flows) {
    const r = await send(p, token, method)
    rows.push([title, r.status, r.trips['consumer-jwt'], r.trips['scope-acl']])
    console.log(
      `| ${title} | ${r.status} | ${r.trips['consumer-jwt'] ?? 0} | ${r.trips['scope-acl'] ?? '—'} |`,
    )
  }

  console.log('\n## Latency through the emulator, same run\n')
  const timeIt = async (p: string, token: string | undefined): Promise<number> => {
    for (let i = 0; i < 20; i++) await send(p, token)
    const t0 = performance.now()
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${kong.proxyUrl}${p}`, {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
      })
      await res.arrayBuffer()
    }
    return (performance.now() - t0) / N
  }
  const bare = await timeIt('/bare', undefined)
  const withPlugins = await timeIt('/orders/1', web)
  console.log('| route | ms/request | ratio to no plugin |')
  console.log('|---|---|---|')
  console.log(`| no plugin | ${bare.toFixed(3)} | 1.00 |`)
  console.log(
    `| consumer-jwt + scope-acl, cached token | ${withPlugins.toFixed(3)} | ${(withPlugins / bare).toFixed(2)} |`,
  )
  console.log('\n(The emulator is not Kong: only the ratio and the round-trip counts carry over.)')

  await kong.stop()
  await echo.stop()
  await idp.stop()
  const [cached, , refused] = rows
  const ok = (cached?.[2] ?? 99) <= 5 && (refused?.[2] ?? 99) <= 2 && (cached?.[3] ?? 99) <= 3
  console.log(
    `\nround-trip targets (consumer-jwt ≤ 5 allowed, ≤ 2 refused; scope-acl ≤ 3): ${ok ? 'met' : 'NOT MET'}`,
  )
  if (!ok) process.exitCode = 1
}

async function verificationCpu(): Promise<void> {
  console.log('\n## consumer-jwt verification CPU, same run\n')
  console.log('| consumer (alg) | µs/token uncached | µs/token cache hit | ratio |')
  console.log('|---|---|---|---|')
  const consumers: [DemoConsumer, string][] = [
    ['web-app', 'ES256'],
    ['mobile-app', 'EdDSA'],
    ['partner-globex', 'HS256'],
  ]
  const config = parse(readFileSync(KONG_YML, 'utf8')) as {
    plugins: { name: string; config: Record<string, unknown> }[]
  }
  const raw = config.plugins.find((p) => p.name === 'consumer-jwt')?.config ?? {}
  // Kong resolves the {vault://env/...} reference before the plugin sees its config.
  for (const c of (raw.credentials ?? []) as Record<string, unknown>[]) {
    if (typeof c.secret === 'string' && c.secret.startsWith('{vault://'))
      c.secret = globexSecret(KEYS_DIR)
  }
  const rt = buildRuntime(raw)
  for (const [consumer, alg] of consumers) {
    const tokens = await Promise.all(
      Array.from({ length: N }, () => demoToken(consumer, { scope: 'catalog:read' })),
    )
    let t0 = performance.now()
    for (const t of tokens) await rt.verifier.verify(t)
    const uncached = ((performance.now() - t0) * 1000) / N
    t0 = performance.now()
    for (const t of tokens) await rt.verifier.verify(t)
    const hit = ((performance.now() - t0) * 1000) / N
    console.log(
      `| ${consumer} (${alg}) | ${uncached.toFixed(1)} | ${hit.toFixed(1)} | ${(uncached / hit).toFixed(1)}× |`,
    )
  }
}

async function main(): Promise<void> {
  await roundTrips()
  await verificationCpu()
}

main().catch((e: unknown) => {
  console.error(e)
  process.exitCode = 1
})
