/**
 * The revocation lookup's circuit breaker, measured end to end: kong.yml's fast path through
 * the Kong emulator and the real plugin servers, against a private redis-server that is frozen
 * with SIGSTOP mid-traffic (the connection stays open, nothing is answered), then thawed.
 * Decision times are reported as percentiles per window since the freeze, and as ratios to
 * `timeout_ms` and to the same requests with Redis answering.
 */
import { performance } from 'node:perf_hooks'
import { stringify } from 'yaml'
import { parseKongYaml } from '../cli/kong/declarative-config'
import {
  localizeKongYml,
  pluginsOf,
  pointAtUpstream,
  startPrivateRedis,
} from '../emulator/demo-kit'
import { start } from '../emulator/emulator'

export interface FrozenRedisSetup {
  /** kong.yml as written (its Redis is replaced by a private one). */
  readonly kongYml: string
  readonly jwksUrl: string
  readonly upstreamUrl: string
  readonly env: NodeJS.ProcessEnv
  readonly dirs: readonly string[]
  /** An allowed request on the fast path (200 while Redis answers). */
  readonly request: { readonly path: string; readonly init: RequestInit }
  readonly concurrency: number
  /** How long the freeze lasts while traffic runs. */
  readonly frozenMs?: number
}

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil(sorted.length * p) - 1)] ?? Number.NaN
}

/** Runs the scenario and returns the report's lines (markdown). */
export async function frozenRedisFigure(setup: FrozenRedisSetup): Promise<string[]> {
  const redis = await startPrivateRedis()
  const doc = parseKongYaml(
    localizeKongYml(setup.kongYml, { jwksUrl: setup.jwksUrl, redisUrl: redis.url }),
  ) as Record<string, unknown>
  let timeoutMs = 250
  for (const plugin of pluginsOf(doc)) {
    const revocation = plugin.config?.['revocation']
    if (plugin.name !== 'consumer-jwt' || typeof revocation !== 'object' || revocation === null)
      continue
    // The cache off: every request asks Redis, as requests with fresh tokens would.
    ;(revocation as Record<string, unknown>)['cache_ttl_ms'] = 0
    const t = (revocation as Record<string, unknown>)['timeout_ms']
    if (typeof t === 'number') timeoutMs = t
  }
  const kong = await start({
    config: pointAtUpstream(stringify(doc), setup.upstreamUrl),
    pluginDirs: setup.dirs,
    env: setup.env,
  })
  const frozenMs = setup.frozenMs ?? 3000
  const send = async (): Promise<{ status: number; ms: number }> => {
    const t0 = performance.now()
    const res = await fetch(`${kong.proxyUrl}${setup.request.path}`, setup.request.init)
    await res.arrayBuffer()
    return { status: res.status, ms: performance.now() - t0 }
  }
  /** `concurrency` workers sending back to back until `until()`; each decision with its start. */
  const traffic = async (until: () => boolean, since: number) => {
    const out: { status: number; ms: number; at: number }[] = []
    const worker = async (): Promise<void> => {
      while (!until()) {
        const at = performance.now() - since
        out.push({ ...(await send()), at })
      }
    }
    await Promise.all(Array.from({ length: setup.concurrency }, worker))
    return out
  }
  try {
    for (let i = 0; i < 300; i++) await send()
    const healthyStart = performance.now()
    const healthy = await traffic(() => performance.now() - healthyStart > 1000, healthyStart)
    if (healthy.some((d) => d.status !== 200)) throw new Error('bench: Redis answering, not 200')

    redis.pause()
    const frozenAt = performance.now()
    const frozen = await traffic(() => performance.now() - frozenAt > frozenMs, frozenAt)
    redis.resume()
    const thawedAt = performance.now()
    let backMs = Number.NaN
    while (performance.now() - thawedAt < 10_000) {
      if ((await send()).status === 200) {
        backMs = performance.now() - thawedAt
        break
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    const wrong = frozen.filter((d) => d.status !== 503).length
    if (wrong > 0) throw new Error(`bench: ${wrong} decisions during the freeze were not 503`)

    const healthyP99 = percentile(
      healthy.map((d) => d.ms),
      0.99,
    )
    const row = (label: string, ds: readonly { ms: number }[]): string => {
      const ms = ds.map((d) => d.ms)
      const p99 = percentile(ms, 0.99)
      return `| ${label} | ${ms.length} | ${percentile(ms, 0.5).toFixed(1)} | ${p99.toFixed(1)} | ${(p99 / timeoutMs).toFixed(2)}× | ${(p99 / healthyP99).toFixed(1)}× |`
    }
    return [
      `\n## Frozen Redis (SIGSTOP) on kong.yml's fast path: revocation timeout_ms ${timeoutMs}, on_unavailable fail_closed, cache off, ${setup.concurrency} at a time\n`,
      '| window | requests | p50 ms | p99 ms | p99 / timeout_ms | p99 / p99 with Redis answering |',
      '|---|---|---|---|---|---|',
      row('Redis answering (200)', healthy),
      row(
        'frozen, first second (503)',
        frozen.filter((d) => d.at < 1000),
      ),
      row(
        `frozen, 1 s to ${frozenMs / 1000} s (503)`,
        frozen.filter((d) => d.at >= 1000),
      ),
      `\nafter SIGCONT, the first 200 came ${backMs.toFixed(0)} ms later (the circuit closes on the first answer to a background probe)`,
    ]
  } finally {
    await kong.stop()
    redis.stop()
  }
}
