/**
 * `npm run demo`: kong.yml on the Kong emulator with the real plugin servers, demo tokens for
 * its consumers, and a few requests with their outcomes. A newcomer without Docker or Kong
 * sees allowed, expired, forged and forbidden requests, and (with Redis) a revocation.
 * The emulator is a test and demo tool, not a gateway.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import {
  demoToken,
  globexSecret,
  KONG_YML,
  localizeKongYml,
  localRedis,
  pointAtUpstream,
  startDemoIdp,
  type DemoConsumer,
} from './demo-kit'
import { startEchoUpstream } from './echo-upstream'
import { start } from './emulator'

const ROOT = path.dirname(KONG_YML)
const CLI = path.join(ROOT, 'dist', 'cli', 'index.js')

interface Step {
  readonly title: string
  readonly method?: string
  readonly path: string
  readonly token?: () => Promise<string>
  readonly before?: () => Promise<void>
}

async function main(): Promise<void> {
  const servers = path.join(ROOT, 'dist', 'servers')
  if (!existsSync(servers))
    throw new Error('dist/servers is missing: run `npm run build` first (npm run demo does)')
  const pluginDirs = readdirSync(servers).map((n) => path.join(servers, n))

  const idp = await startDemoIdp()
  const echo = await startEchoUpstream()
  const db = await localRedis()
  const config = pointAtUpstream(
    localizeKongYml(readFileSync(KONG_YML, 'utf8'), { jwksUrl: idp.jwksUrl, redisUrl: db.url }),
    echo.url,
  )
  const kong = await start({
    config,
    pluginDirs,
    env: { ...process.env, PARTNER_GLOBEX_SECRET: globexSecret() },
  })

  const now = Math.floor(Date.now() / 1000)
  const tok =
    (
      c: DemoConsumer,
      claims: Record<string, unknown> = {},
      o: Parameters<typeof demoToken>[2] = {},
    ) =>
    () =>
      demoToken(c, claims, o)
  let revoked = ''
  let note: string | undefined
  const steps: Step[] = [
    { title: 'no token', path: '/orders/42' },
    {
      title: 'web-app reads an order',
      path: '/orders/42',
      token: tok('web-app', { scope: 'orders:read' }),
    },
    {
      title: 'web-app deletes an order (orders:admin)',
      method: 'DELETE',
      path: '/orders/42',
      token: tok('web-app', { scope: 'orders:admin' }),
    },
    {
      title: 'mobile-app with an expired token',
      path: '/orders/42',
      token: tok('mobile-app', { scope: 'orders:read' }, { now: now - 3600 }),
    },
    {
      title: 'a token for web-app signed with the mobile key',
      path: '/orders/42',
      token: tok('web-app', {}, { signAs: 'mobile-app' }),
    },
    {
      title: 'partner-acme reads the catalog (keys from its JWKS)',
      path: '/catalog/items',
      token: tok('partner-acme', { scope: 'catalog:read' }),
    },
    {
      title: 'partner-acme tries to create an order',
      method: 'POST',
      path: '/orders',
      token: tok('partner-acme', { scope: 'orders:read' }),
    },
    {
      title: 'partner-globex (HS256, secret from the env vault) reads the catalog',
      path: '/catalog/items',
      token: tok('partner-globex', { scope: 'catalog:read' }),
    },
    {
      title: 'partner-globex claims orders:admin, above its ceiling',
      path: '/catalog/items',
      token: tok('partner-globex', { scope: 'catalog:read orders:admin' }),
    },
    { title: 'a public route, no token (key-auth anonymous)', path: '/status' },
    {
      title: "web-app, while consumer-jwt's plugin server is dead (kill -9): the acl guard",
      path: '/orders/42',
      token: tok('web-app', { scope: 'orders:read' }),
      before: async () => {
        const server = kong.servers.get('consumer-jwt')
        server?.kill('SIGKILL')
        await new Promise((res) => setTimeout(res, 100))
        note = 'Kong skips a dead plugin server and proxies (fail-open); acl finds no consumer'
      },
    },
    {
      title: 'web-app again, once Kong has respawned the plugin server',
      path: '/orders/42',
      token: tok('web-app', { scope: 'orders:read' }),
      before: async () => {
        await kong.servers.get('consumer-jwt')?.waitReady()
        await new Promise((res) => setTimeout(res, 1500))
        note = undefined
      },
    },
  ]
  if (db.url !== undefined && existsSync(CLI)) {
    const token = await demoToken('web-app', { scope: 'orders:read', jti: `demo-${now}` })
    steps.push(
      {
        title: 'web-app with a fresh token (jti demo-…)',
        path: '/orders/42',
        token: () => Promise.resolve(token),
      },
      {
        title: 'same token after `kong-jwt-toolkit revoke jti`',
        path: '/orders/42',
        token: () => Promise.resolve(token),
        before: async () => {
          const r = spawnSync(
            process.execPath,
            [
              CLI,
              'revoke',
              'jti',
              `demo-${now}`,
              '--exp',
              String(now + 300),
              '--redis-url',
              db.url ?? '',
            ],
            { encoding: 'utf8' },
          )
          revoked = (r.stdout || r.stderr).trim()
          await new Promise((res) => setTimeout(res, 200))
        },
      },
    )
  }

  console.log(`Kong emulator on ${kong.proxyUrl} with kong.yml; ${db.note}.\n`)
  for (const step of steps) {
    await step.before?.()
    const headers: Record<string, string> = step.token
      ? { Authorization: `Bearer ${await step.token()}` }
      : {}
    const res = await fetch(`${kong.proxyUrl}${step.path}`, {
      method: step.method ?? 'GET',
      headers,
    })
    const body = await res.text()
    const seen = echo.byRequestId(res.headers.get('x-kong-request-id') ?? '')
    let outcome: string
    if (seen !== undefined) {
      outcome = `upstream saw X-Consumer-Username: ${String(seen.headers['x-consumer-username'])}, X-Authenticated-Subject: ${String(seen.headers['x-authenticated-subject'])}`
    } else {
      const parsed = JSON.parse(body || '{}') as { code?: string; message?: string }
      // Our refusals carry a code; Kong's own (acl, the router) only a message.
      const code = parsed.code ?? `"${parsed.message ?? ''}" (from Kong)`
      const challenge = res.headers.get('www-authenticate')
      outcome = `${code}${challenge ? `  WWW-Authenticate: ${challenge}` : ''}`
    }
    console.log(
      `${String(res.status).padEnd(4)} ${(step.method ?? 'GET').padEnd(6)} ${step.path.padEnd(15)} ${step.title}`,
    )
    console.log(`     ${outcome}`)
    if (note !== undefined) console.log(`     (${note})`)
    else if (revoked && step.before) console.log(`     (CLI: ${revoked})`)
  }

  await kong.stop()
  await echo.stop()
  await idp.stop()
  db.stop()
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
