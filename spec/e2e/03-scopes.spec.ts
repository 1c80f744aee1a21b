import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { demoToken, type DemoConsumer } from '../../emulator/demo-kit'
import type { KongTarget } from './helpers/kong-target'
import { startToolkitTarget, type ToolkitTarget } from './helpers/toolkit-target'

// The scope of each kong.yml route, checked by its consumer-jwt (orders: GET/HEAD orders:read, POST/PUT/PATCH orders:write,
// DELETE orders:admin; catalog: reads catalog:read, writes catalog:write) for each consumer.
let target: ToolkitTarget
let kong: KongTarget

beforeAll(async () => {
  target = await startToolkitTarget()
  kong = target.kong
})

afterAll(async () => {
  await target?.stop()
})

async function call(
  consumer: DemoConsumer,
  scope: string,
  method: string,
  path: string,
): Promise<Response> {
  const token = await demoToken(consumer, { scope })
  return kong.proxy(path, { method, headers: { Authorization: `Bearer ${token}` } })
}

describe('consumer-jwt scopes: (e2e: kong.yml, one route per scope and its methods)', () => {
  it.each([
    ['web-app', 'orders:read orders:write orders:admin', 'GET', '/orders/1'],
    ['web-app', 'orders:read orders:write orders:admin', 'DELETE', '/orders/1'],
    ['mobile-app', 'orders:read orders:write', 'POST', '/orders'],
    ['mobile-app', 'orders:read', 'HEAD', '/orders/1'],
    ['partner-acme', 'catalog:read orders:read', 'GET', '/orders/1'],
    ['partner-acme', 'catalog:read', 'GET', '/catalog/items'],
    ['partner-globex', 'catalog:read', 'GET', '/catalog/items'],
  ] as [DemoConsumer, string, string, string][])(
    'allows %s holding [%s] to %s %s',
    async (consumer, scope, method, path) => {
      const res = await call(consumer, scope, method, path)
      expect(res.status).toBe(200)
      expect(kong.upstreamRequestFor(res)?.headers['x-consumer-username']).toBe(consumer)
    },
  )

  it.each([
    ['partner-acme', 'catalog:read orders:read', 'POST', '/orders', 'orders:write'],
    ['partner-acme', 'catalog:read orders:read', 'DELETE', '/orders/1', 'orders:admin'],
    ['partner-globex', 'catalog:read', 'GET', '/orders/1', 'orders:read'],
    ['partner-globex', 'catalog:read', 'PUT', '/catalog/items/1', 'catalog:write'],
    ['mobile-app', 'orders:read orders:write', 'DELETE', '/orders/1', 'orders:admin'],
    ['web-app', 'orders:read', 'PATCH', '/orders/1', 'orders:write'],
  ] as [DemoConsumer, string, string, string, string][])(
    'refuses %s holding [%s] to %s %s with 403 insufficient_scope naming %s',
    async (consumer, scope, method, path, needed) => {
      const res = await call(consumer, scope, method, path)
      expect(res.status).toBe(403)
      expect(await res.json()).toEqual({
        message: 'Insufficient scope',
        code: 'ERR_SCOPE_INSUFFICIENT',
      })
      expect(res.headers.get('www-authenticate')).toContain(`error="insufficient_scope"`)
      expect(res.headers.get('www-authenticate')).toContain(`scope="${needed}"`)
      expect(kong.upstreamRequestFor(res)).toBeUndefined()
    },
  )

  it('never matches a scope by substring: orders:readonly is refused by the ceiling before scope-acl sees it', async () => {
    const res = await call('web-app', 'orders:readonly', 'GET', '/orders/1')
    expect(res.status).toBe(401)
    expect(((await res.json()) as { code: string }).code).toBe('ERR_SCOPE_CEILING_EXCEEDED')
  })

  it('refuses a method no route lists (Kong 404, deny by default), also to first-party apps', async () => {
    const res = await call(
      'web-app',
      'orders:read orders:write orders:admin',
      'OPTIONS',
      '/orders/1',
    )
    expect(res.status).toBe(404)
    expect(kong.upstreamRequestFor(res)).toBeUndefined()
  })

  it('answers 401, not 403, when no token was verified', async () => {
    const res = await kong.proxy('/orders/1', { method: 'DELETE' })
    expect(res.status).toBe(401)
    expect(((await res.json()) as { code: string }).code).toBe('ERR_TOKEN_MISSING')
  })
})
