import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { SignJWT } from 'jose'
import { stringify } from 'yaml'
import { startOrdersService, type OrdersService } from '../../middleware/example/orders-service'
import { ASSERTION_TYP } from '../../plugins/shared/gateway-assertion'
import { HS_SECRET, mint, secretKey } from '../helpers/tokens'
import { REPO_ROOT, startKongTarget, type KongTarget } from './helpers/kong-target'

// consumer-jwt's `assertion` end to end: through Kong, a request reaches the example orders
// service (middleware/example), which verifies the assertion with the middleware; straight to
// the service, forged identity headers are refused. The routes strip their /shop and /open
// prefixes; /open falls back to an anonymous consumer, which the service refuses.
const ASSERTION_SECRET = 'e2e-gateway-assertion-secret-of-32+-bytes'

let kong: KongTarget
let orders: OrdersService

function config(serviceUrl: string): string {
  return stringify({
    _format_version: '3.0',
    consumers: [
      { username: 'web-app', custom_id: 'web-1' },
      { username: 'anonymous', custom_id: 'anonymous-1' },
    ],
    services: [
      {
        name: 'orders',
        url: serviceUrl,
        routes: [
          {
            name: 'shop-orders',
            paths: ['/shop'],
            strip_path: true,
            plugins: [
              {
                name: 'consumer-jwt',
                config: {
                  credentials: [
                    { key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET },
                  ],
                  share_token: false,
                  assertion: { audience: 'orders', secret: ASSERTION_SECRET },
                },
              },
            ],
          },
          {
            // The same service where consumer-jwt falls back to an anonymous consumer.
            name: 'open-orders',
            paths: ['/open'],
            strip_path: true,
            plugins: [
              {
                name: 'consumer-jwt',
                config: {
                  credentials: [
                    { key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET },
                  ],
                  share_token: false,
                  anonymous: 'anonymous',
                  assertion: { audience: 'orders', secret: ASSERTION_SECRET },
                },
              },
            ],
          },
        ],
      },
    ],
  })
}

beforeAll(async () => {
  orders = await startOrdersService({
    audience: 'orders',
    algorithm: 'HS256',
    secret: ASSERTION_SECRET,
    routePrefix: ['/shop', '/open'],
  })
  kong = await startKongTarget({ config: config(orders.url), useEchoUpstream: false })
})

afterAll(async () => {
  await kong?.stop()
  await orders?.stop()
})

const token = (scope: string) =>
  mint({ iss: 'web', sub: 'user-42', scope }, { key: secretKey(), ttl: 300 })

describe('gateway assertion: (e2e: consumer-jwt signs, the service middleware verifies)', () => {
  it('lets a request through Kong reach the handler, which sees the caller Kong authenticated', async () => {
    const res = await kong.proxy('/shop/orders/1?expand=items', {
      headers: { Authorization: `Bearer ${await token('orders:read')}` },
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({
      order: '/orders/1?expand=items',
      caller: {
        consumer: { username: 'web-app' },
        credential: 'web',
        subject: 'user-42',
        scopes: ['orders:read'],
        anonymous: false,
      },
    })
    expect(orders.handled.at(-1)).toEqual({
      method: 'GET',
      url: '/orders/1?expand=items',
      consumer: 'web-app',
    })
  })

  it("replaces an assertion the client sent with the gateway's own", async () => {
    // A genuine assertion for another caller (leaked or captured), for this very request: were
    // it passed on instead of the gateway's own, the service would see `admin`.
    const now = Math.floor(Date.now() / 1000)
    const smuggled = await new SignJWT({
      iss: 'kong',
      aud: 'orders',
      iat: now,
      exp: now + 30,
      jti: 'smuggled-1',
      consumer: { id: 'admin-id', username: 'admin' },
      credential: 'admin-key',
      scope: 'orders:read orders:admin',
      method: 'GET',
      path: '/shop/orders/2',
    })
      .setProtectedHeader({ alg: 'HS256', typ: ASSERTION_TYP })
      .sign(new TextEncoder().encode(ASSERTION_SECRET))
    const before = orders.handled.length
    const res = await kong.proxy('/shop/orders/2', {
      headers: {
        Authorization: `Bearer ${await token('orders:read')}`,
        'X-Gateway-Assertion': smuggled,
      },
    })
    expect(res.status).toBe(200)
    const { caller } = (await res.json()) as { caller: Record<string, unknown> }
    expect(caller).toMatchObject({
      consumer: { username: 'web-app' },
      credential: 'web',
      scopes: ['orders:read'],
      anonymous: false,
    })
    expect(caller['assertionId']).not.toBe('smuggled-1')
    expect(orders.handled).toHaveLength(before + 1)
    expect(orders.handled.at(-1)).toEqual({ method: 'GET', url: '/orders/2', consumer: 'web-app' })
  })

  it("refuses the gateway's anonymous fallback (a garbage token) by default: 401 ERR_ASSERTION_ANONYMOUS", async () => {
    const before = orders.handled.length
    const res = await kong.proxy('/open/orders/1', {
      headers: { Authorization: 'Bearer not.a.token' },
    })
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({
      message: 'Anonymous caller not allowed',
      code: 'ERR_ASSERTION_ANONYMOUS',
    })
    expect(orders.handled).toHaveLength(before)
  })

  it('lets the service refuse a scope the gateway did not check: 403 ERR_SCOPE_INSUFFICIENT', async () => {
    const before = orders.handled.length
    const res = await kong.proxy('/shop/orders/1', {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${await token('orders:read')}` },
    })
    expect(res.status).toBe(403)
    expect(await res.json()).toEqual({
      message: 'Insufficient scope',
      code: 'ERR_SCOPE_INSUFFICIENT',
    })
    expect(orders.handled).toHaveLength(before)
  })

  it('refuses a request straight to the service with forged X-Consumer-* headers: 401 ERR_ASSERTION_MISSING', async () => {
    const before = orders.handled.length
    const res = await fetch(`${orders.url}/orders/1`, {
      headers: {
        'X-Consumer-ID': '0a0a0a0a-0000-4000-8000-000000000001',
        'X-Consumer-Username': 'web-app',
        'X-Credential-Identifier': 'web',
      },
    })
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({
      message: 'Gateway assertion missing',
      code: 'ERR_ASSERTION_MISSING',
    })
    expect(orders.handled).toHaveLength(before)
  })

  it('refuses an assertion forged without the secret, straight to the service: 401 ERR_ASSERTION_INVALID', async () => {
    const now = Math.floor(Date.now() / 1000)
    const forged = await new SignJWT({
      iss: 'kong',
      aud: 'orders',
      iat: now,
      exp: now + 30,
      jti: 'x',
      consumer: { id: 'admin' },
      scope: 'orders:admin',
      method: 'DELETE',
      path: '/shop/orders/1',
    })
      .setProtectedHeader({ alg: 'HS256', typ: ASSERTION_TYP })
      .sign(new TextEncoder().encode('a-guess-at-the-secret-of-32+-bytes-long'))
    const res = await fetch(`${orders.url}/orders/1`, {
      method: 'DELETE',
      headers: { 'X-Gateway-Assertion': forged },
    })
    expect(res.status).toBe(401)
    expect(((await res.json()) as { code: string }).code).toBe('ERR_ASSERTION_INVALID')
  })

  it('is importable as kong-jwt-toolkit/middleware from the build, without loading fastify or express', () => {
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `const m = require('kong-jwt-toolkit/middleware');
         const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/](fastify|express)[\\\\/]/.test(f));
         console.log(JSON.stringify({ names: Object.keys(m).sort(), loaded }))`,
      ],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    )
    const { names, loaded } = JSON.parse(out) as { names: string[]; loaded: string[] }
    expect(names).toEqual(
      expect.arrayContaining([
        'createAssertionVerifier',
        'fastifyGatewayAssertion',
        'fastifyRequireScope',
        'gatewayAssertion',
        'requireScope',
      ]),
    )
    expect(loaded).toEqual([])
    // TypeScript services get the types through the same export.
    expect(existsSync(join(REPO_ROOT, 'dist', 'middleware', 'index.d.ts'))).toBe(true)
  })
})
