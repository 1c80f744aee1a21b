/**
 * `npm run bench` (after bench/run.ts), or `npm run bench:middleware` alone: what the service
 * middleware (middleware/) costs a Node service. One service process (a child), driven over
 * loopback HTTP with keep-alive, answers a trivial JSON handler unprotected, then behind
 * gatewayAssertion + requireScope with an HS256 and an EdDSA assertion. Reported as requests/s
 * and the service's CPU µs per request, each as a ratio to the unprotected handler of the same
 * run (these machines are noisy: two interleaved rounds, the best of each kept); plus verify()
 * alone, in process, as µs per verification.
 *
 * Environment: BENCH_MW_N (requests per scenario, default 4000; each scenario also stops after
 * 15 s), BENCH_CONCURRENCY (default 16).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { AssertionSigner, parseAssertion } from '../plugins/consumer-jwt/assertion'
import { gatewayAssertion, requireScope, type Middleware } from '../middleware/http'
import { createAssertionVerifier, type AssertionVerifierOptions } from '../middleware/verify'

const N = Number(process.env['BENCH_MW_N'] ?? 4000)
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 16)
const SCENARIO_CAP_MS = 15_000
const ROUNDS = 2
const SECRET = 'bench-gateway-assertion-secret-of-32+-bytes'
const PATH = '/orders/1'

type Scenario = 'unprotected' | 'HS256' | 'EdDSA'

interface ServiceSetup {
  readonly scenario: Scenario
  readonly publicKeyPem?: string
}

/** The options the service verifies with, per scenario. */
function verifierOptions(setup: ServiceSetup): AssertionVerifierOptions {
  return setup.scenario === 'EdDSA'
    ? { audience: 'orders', algorithm: 'EdDSA', publicKey: setup.publicKeyPem ?? '', maxAge: 600 }
    : { audience: 'orders', algorithm: 'HS256', secret: SECRET, maxAge: 600 }
}

// ---------------------------------------------------------------------------------------------
// The service (child process)
// ---------------------------------------------------------------------------------------------

function serve(setup: ServiceSetup): void {
  const chain: Middleware[] =
    setup.scenario === 'unprotected'
      ? []
      : [gatewayAssertion(verifierOptions(setup)), requireScope('orders:read')]
  const body = JSON.stringify({ id: 1, status: 'shipped' })
  const handler = (res: http.ServerResponse): void => {
    res.setHeader('Content-Type', 'application/json')
    res.end(body)
  }
  const server = http.createServer((req, res) => {
    const step = (i: number): void => {
      const mw = chain[i]
      if (mw === undefined) {
        handler(res)
        return
      }
      mw(req, res, () => step(i + 1))
    }
    step(0)
  })
  server.keepAliveTimeout = 30_000
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port })
  })
  process.on('message', (m: unknown) => {
    if (m === 'cpu') {
      const u = process.cpuUsage()
      process.send?.({ cpuUs: u.user + u.system })
    }
    if (m === 'stop') server.close(() => process.exit(0))
  })
}

// ---------------------------------------------------------------------------------------------
// The driver (parent)
// ---------------------------------------------------------------------------------------------

function next<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && key in m) {
        child.off('message', on)
        resolve((m as Record<string, T>)[key] as T)
      }
    }
    child.on('message', on)
  })
}

async function load(
  port: number,
  headers: Record<string, string>,
  count: number,
): Promise<{ done: number; ms: number; failures: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: PATH, headers, agent }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', reject)
      req.end()
    })
  let issued = 0
  let done = 0
  let failures = 0
  const started = performance.now()
  const worker = async (): Promise<void> => {
    while (issued < count && performance.now() - started < SCENARIO_CAP_MS) {
      issued++
      if ((await one()) !== 200) failures++
      done++
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  agent.destroy()
  return { done, ms: performance.now() - started, failures }
}

interface Row {
  readonly name: string
  readonly rps: number
  readonly cpuUsPerReq: number
}

async function measure(
  name: string,
  setup: ServiceSetup,
  headers: Record<string, string>,
): Promise<Row> {
  const child = fork(__filename, ['--serve', JSON.stringify(setup)], { stdio: 'inherit' })
  try {
    const port = await next<number>(child, 'port')
    const warm = await load(port, headers, Math.min(500, N))
    if (warm.failures > 0) throw new Error(`${name}: ${warm.failures} requests refused`)
    child.send('cpu')
    const cpuBefore = await next<number>(child, 'cpuUs')
    const run = await load(port, headers, N)
    child.send('cpu')
    const cpuAfter = await next<number>(child, 'cpuUs')
    if (run.failures > 0) throw new Error(`${name}: ${run.failures} requests refused`)
    return { name, rps: (run.done * 1000) / run.ms, cpuUsPerReq: (cpuAfter - cpuBefore) / run.done }
  } finally {
    child.send('stop')
  }
}

async function verifyAlone(setup: ServiceSetup, assertion: string): Promise<number> {
  const verifier = createAssertionVerifier(verifierOptions(setup))
  const facts = { method: 'GET', url: PATH, headers: { 'x-gateway-assertion': assertion } }
  for (let i = 0; i < 500; i++) await verifier.verify(facts)
  const count = Math.min(N * 2, 10_000)
  const started = performance.now()
  for (let i = 0; i < count; i++) await verifier.verify(facts)
  return ((performance.now() - started) * 1000) / count
}

async function sign(settings: Record<string, unknown>): Promise<string> {
  const config = parseAssertion(
    { assertion: { audience: 'orders', lifetime: 300, ...settings } },
    {},
  )
  if (config === undefined) throw new Error('assertion off')
  return new AssertionSigner(config, { now: () => Date.now() }).sign({
    consumer: { id: '0a0a0a0a-0000-4000-8000-000000000001', username: 'web-app' },
    credential: 'web',
    subject: 'user-42',
    scopes: ['orders:read', 'orders:write'],
    method: 'GET',
    path: PATH,
  })
}

const fmt = (n: number, digits = 0): string => n.toFixed(digits)

async function main(): Promise<void> {
  const started = performance.now()
  const ed = generateKeyPairSync('ed25519')
  const edPrivate = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const edPublic = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const hsAssertion = await sign({ secret: SECRET })
  const edAssertion = await sign({ private_key: edPrivate })
  const hs: ServiceSetup = { scenario: 'HS256' }
  const eddsa: ServiceSetup = { scenario: 'EdDSA', publicKeyPem: edPublic }

  const scenarios: [string, ServiceSetup, Record<string, string>][] = [
    ['unprotected handler', { scenario: 'unprotected' }, {}],
    ['gatewayAssertion + requireScope, HS256', hs, { 'x-gateway-assertion': hsAssertion }],
    ['gatewayAssertion + requireScope, EdDSA', eddsa, { 'x-gateway-assertion': edAssertion }],
  ]
  // Interleaved rounds, the best of each kept: the order of the scenarios then matters less.
  const best = new Map<string, Row>()
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, setup, headers] of scenarios) {
      const r = await measure(name, setup, headers)
      const prev = best.get(name)
      best.set(name, {
        name,
        rps: Math.max(r.rps, prev?.rps ?? 0),
        cpuUsPerReq: Math.min(r.cpuUsPerReq, prev?.cpuUsPerReq ?? Infinity),
      })
    }
  }
  const rows = scenarios.map(([name]) => best.get(name) as Row)
  const base = rows[0] as Row
  const hsAlone = await verifyAlone(hs, hsAssertion)
  const edAlone = await verifyAlone(eddsa, edAssertion)

  console.log(
    `\nService middleware (middleware/): one Node service process, ${N} keep-alive requests per scenario (best of ${ROUNDS} rounds), concurrency ${CONCURRENCY}\n`,
  )
  console.log(
    '| scenario | requests/s (vs unprotected) | service CPU µs/request (vs unprotected) |',
  )
  console.log('|---|---|---|')
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${fmt(r.rps)} (${fmt(r.rps / base.rps, 2)}×) | ${fmt(r.cpuUsPerReq)} (${fmt(r.cpuUsPerReq / base.cpuUsPerReq, 2)}×) |`,
    )
  }
  console.log(
    `\nverify() alone, in process: HS256 ${fmt(hsAlone, 1)} µs (${fmt(1e6 / hsAlone)}/s), EdDSA ${fmt(edAlone, 1)} µs (${fmt(1e6 / edAlone)}/s)`,
  )
  console.log(`(${fmt((performance.now() - started) / 1000, 1)} s)`)
}

if (process.argv[2] === '--serve') {
  serve(JSON.parse(process.argv[3] ?? '{}') as ServiceSetup)
} else {
  main().catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}
