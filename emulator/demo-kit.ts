/**
 * The demo consumers of kong.yml and what it takes to run kong.yml on one machine: tokens
 * signed with the DEMO keys (spec/fixtures/keys), partner-acme's JWKS endpoint on loopback,
 * the partner-globex secret for Kong's env vault, and kong.yml pointed at local servers.
 * Used by `npm run demo` and the e2e scenarios. Test and demo code: the keys protect nothing.
 */
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { SignJWT } from 'jose'
import { stringify } from 'yaml'
import { parseKongYaml } from '../cli/kong/declarative-config'

/** The repository root, from the source tree (emulator/) or the build (dist/emulator/). */
function repoRoot(): string {
  let dir = __dirname
  while (!existsSync(path.join(dir, 'kong.yml')) && path.dirname(dir) !== dir)
    dir = path.dirname(dir)
  return dir
}

export const KEYS_DIR = path.join(repoRoot(), 'spec', 'fixtures', 'keys')
export const KONG_YML = path.join(repoRoot(), 'kong.yml')
export const AUDIENCE = 'https://api.example.com'

export type DemoConsumer = 'web-app' | 'mobile-app' | 'partner-acme' | 'partner-globex'

interface Signer {
  readonly iss: string
  readonly alg: string
  readonly kid: string | undefined
  readonly key: KeyObject | Uint8Array
}

const ISSUERS: Record<DemoConsumer, string> = {
  'web-app': 'https://login.example.com/web',
  'mobile-app': 'https://login.example.com/mobile',
  'partner-acme': 'https://idp.acme.example',
  'partner-globex': 'globex',
}

export function globexSecret(dir = KEYS_DIR): string {
  return readFileSync(path.join(dir, 'partner-globex.secret'), 'utf8').trim()
}

function signer(consumer: DemoConsumer, dir: string): Signer {
  if (consumer === 'partner-globex') {
    return {
      iss: ISSUERS[consumer],
      alg: 'HS256',
      kid: undefined,
      key: new TextEncoder().encode(globexSecret(dir)),
    }
  }
  const meta = JSON.parse(readFileSync(path.join(dir, `${consumer}.json`), 'utf8')) as {
    alg: string
    kid: string
  }
  const key = createPrivateKey(readFileSync(path.join(dir, `${consumer}.private.pem`), 'utf8'))
  return { iss: ISSUERS[consumer], alg: meta.alg, kid: meta.kid, key }
}

export interface TokenOptions {
  /** Seconds since the epoch taken as "now" (default: the clock). */
  readonly now?: number
  /** exp - iat in seconds (default 300; kong.yml caps it at 600). */
  readonly ttl?: number
  /** Sign with another consumer's key while claiming to be this one (a forgery). */
  readonly signAs?: DemoConsumer
  readonly dir?: string
}

/**
 * A token as the consumer's identity provider would issue it: its issuer, the API audience,
 * `sub`, a unique `jti`, `iat`, `exp`, plus `claims` (a claim set to null is left out).
 */
export async function demoToken(
  consumer: DemoConsumer,
  claims: Record<string, unknown> = {},
  options: TokenOptions = {},
): Promise<string> {
  const dir = options.dir ?? KEYS_DIR
  const s = signer(consumer, dir)
  const key = options.signAs === undefined ? s.key : signer(options.signAs, dir).key
  const alg = options.signAs === undefined ? s.alg : signer(options.signAs, dir).alg
  const now = options.now ?? Math.floor(Date.now() / 1000)
  const claimed: Record<string, unknown> = {
    iss: s.iss,
    aud: AUDIENCE,
    sub: `${consumer}-user`,
    jti: randomUUID(),
    iat: now,
    exp: now + (options.ttl ?? 300),
    ...claims,
  }
  const payload = Object.fromEntries(Object.entries(claimed).filter(([, v]) => v !== null))
  return new SignJWT(payload)
    .setProtectedHeader({ alg, typ: 'JWT', ...(s.kid !== undefined ? { kid: s.kid } : {}) })
    .sign(key)
}

export interface DemoIdp {
  readonly jwksUrl: string
  /** Requests the JWKS endpoint has served. */
  readonly hits: () => number
  stop(): Promise<void>
}

/** partner-acme's JWKS endpoint, on loopback. */
export async function startDemoIdp(dir = KEYS_DIR): Promise<DemoIdp> {
  const body = readFileSync(path.join(dir, 'partner-acme.jwks.json'))
  let hits = 0
  const server = http.createServer((req, res) => {
    hits++
    if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end()
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export interface LocalizeOptions {
  readonly jwksUrl: string
  /**
   * Redis for revocation (consumer-jwt's `revocation`, jwt-revocation); without one, revocation
   * is switched off (consumer-jwt) or the plugin left out (jwt-revocation).
   */
  readonly redisUrl: string | undefined
  /** The revocation key_prefix, e.g. to keep test keys apart on a shared Redis. */
  readonly redisKeyPrefix?: string
}

interface PluginDecl {
  name: string
  config?: Record<string, unknown>
}

/** Every plugin declaration of a kong.yml document, at any scope (global, service, route, consumer). */
export function pluginsOf(doc: unknown): PluginDecl[] {
  const out: PluginDecl[] = []
  const visit = (entity: unknown): void => {
    if (!isObj(entity)) return
    const plugins = entity['plugins']
    if (Array.isArray(plugins))
      for (const p of plugins) if (isObj(p)) out.push(p as unknown as PluginDecl)
    for (const key of ['services', 'routes', 'consumers']) {
      const list = entity[key]
      if (Array.isArray(list)) list.forEach(visit)
    }
  }
  visit(doc)
  return out
}

/**
 * kong.yml as written, pointed at local servers: partner-acme's JWKS URL and Redis, in every
 * consumer-jwt and jwt-revocation declaration. Upstream targets are left to the Kong target
 * (the e2e helper points them at its echo upstream).
 */
export function localizeKongYml(text: string, o: LocalizeOptions): string {
  const doc = parseKongYaml(text) as Doc
  const drop = (list: unknown): unknown =>
    Array.isArray(list)
      ? list.filter(
          (p) => !(isObj(p) && p['name'] === 'jwt-revocation' && o.redisUrl === undefined),
        )
      : list
  const prune = (entity: unknown): void => {
    if (!isObj(entity)) return
    if ('plugins' in entity) entity['plugins'] = drop(entity['plugins'])
    for (const key of ['services', 'routes', 'consumers']) {
      const list = entity[key]
      if (Array.isArray(list)) list.forEach(prune)
    }
  }
  prune(doc)
  const pointRedis = (settings: Record<string, unknown>): void => {
    const redis = isObj(settings['redis']) ? settings['redis'] : {}
    settings['redis'] = { ...redis, url: o.redisUrl }
    if (o.redisKeyPrefix !== undefined) settings['key_prefix'] = o.redisKeyPrefix
  }
  for (const plugin of pluginsOf(doc)) {
    const config = plugin.config ?? {}
    if (plugin.name === 'consumer-jwt') {
      for (const c of (config['credentials'] ?? []) as Record<string, unknown>[]) {
        if (typeof c['jwks_uri'] === 'string') c['jwks_uri'] = o.jwksUrl
      }
      const revocation = config['revocation']
      if (isObj(revocation)) {
        if (o.redisUrl === undefined) delete config['revocation']
        else pointRedis(revocation)
      }
    }
    if (plugin.name === 'jwt-revocation' && o.redisUrl !== undefined) pointRedis(config)
  }
  return stringify(doc)
}

type Doc = Record<string, unknown>

function isObj(v: unknown): v is Doc {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Rewrites services (url or host/port) and upstream targets of a kong.yml to `upstreamUrl`. */
export function pointAtUpstream(config: string, upstreamUrl: string): string {
  const doc: unknown = parseKongYaml(config)
  if (!isObj(doc)) throw new Error('kong.yml must be a map')
  const u = new URL(upstreamUrl)
  const host = u.hostname
  const port = Number(u.port || 80)
  const upstreamNames = new Set<string>()
  for (const up of Array.isArray(doc['upstreams']) ? doc['upstreams'] : []) {
    if (!isObj(up)) continue
    if (typeof up['name'] === 'string') upstreamNames.add(up['name'])
    up['targets'] = [{ target: `${host}:${port}`, weight: 100 }]
  }
  for (const svc of Array.isArray(doc['services']) ? doc['services'] : []) {
    if (!isObj(svc)) continue
    if (typeof svc['url'] === 'string') {
      const s = new URL(svc['url'])
      svc['url'] =
        `http://${host}:${port}${s.pathname === '/' && !svc['url'].endsWith('/') ? '' : s.pathname}`
    } else if (typeof svc['host'] === 'string' && !upstreamNames.has(svc['host'])) {
      svc['host'] = host
      svc['port'] = port
      svc['protocol'] = 'http'
    }
  }
  return stringify(doc)
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** A private redis-server: no persistence, its own temp dir, on a free loopback port. */
export interface PrivateRedis {
  readonly url: string
  readonly port: number
  /** SIGSTOP: the connections stay open and nothing is answered (a frozen Redis). */
  readonly pause: () => void
  /** SIGCONT after pause. */
  readonly resume: () => void
  /** Kills it (resumed first, if paused) and removes its dir. */
  readonly stop: () => void
}

/** Starts a private redis-server and waits until it accepts connections (at most 5 s). */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'kjt-redis-'))
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  )
  const stop = (): void => {
    child.kill('SIGCONT')
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) {
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        pause: () => child.kill('SIGSTOP'),
        resume: () => child.kill('SIGCONT'),
        stop,
      }
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  stop()
  throw new Error(`the private redis-server on port ${port} did not answer within 5 s`)
}

/**
 * REDIS_URL, else a private redis-server if one is installed (startPrivateRedis), else none;
 * `note` says which, for a report. Used by `npm run demo` and `npm run bench`.
 */
export async function localRedis(): Promise<{
  url: string | undefined
  stop: () => void
  note: string
}> {
  const fromEnv = process.env['REDIS_URL']
  if (fromEnv) return { url: fromEnv, stop: () => undefined, note: `Redis at ${fromEnv}` }
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    return {
      url: undefined,
      stop: () => undefined,
      note: 'no Redis (install redis-server or set REDIS_URL): jwt-revocation left out',
    }
  }
  const redis = await startPrivateRedis()
  return { url: redis.url, stop: redis.stop, note: `a private redis-server on port ${redis.port}` }
}
