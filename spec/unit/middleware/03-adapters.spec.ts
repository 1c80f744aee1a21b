import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expect, it } from '@jest/globals'
import Fastify from 'fastify'
import { AssertionSigner, parseAssertion } from '../../../plugins/consumer-jwt/assertion'
import {
  fastifyGatewayAssertion,
  fastifyRequireScope,
  gatewayAssertion,
  gatewayCaller,
  requireScope,
  type GatewayCaller,
  type Middleware,
} from '../../../middleware/index'

const SECRET = 'the-gateway-assertion-secret-of-32+-bytes'
const OPTIONS = { audience: 'orders', algorithm: 'HS256', secret: SECRET } as const
const WEB = { id: '0a0a0a0a-0000-4000-8000-000000000001', username: 'web-app' }
const ANON = { id: '0a0a0a0a-0000-4000-8000-0000000000aa', username: 'anonymous' }

async function assertion(method: string, path: string, scopes: string[]): Promise<string> {
  return signed({ consumer: WEB, credential: 'web', subject: 'user-42', scopes, method, path })
}

/** What consumer-jwt asserts when it fell back to its `anonymous` consumer. */
async function anonymousAssertion(method: string, path: string): Promise<string> {
  return signed({
    consumer: ANON,
    credential: undefined,
    subject: undefined,
    scopes: [],
    method,
    path,
  })
}

async function signed(facts: Parameters<AssertionSigner['sign']>[0]): Promise<string> {
  const config = parseAssertion({ assertion: { audience: 'orders', secret: SECRET } }, {})
  if (config === undefined) throw new Error('assertion off')
  return new AssertionSigner(config, { now: () => Date.now() }).sign(facts)
}

/** What a plain http / Express response received, and whether the chain went on. */
async function runChain(
  chain: Middleware[],
  req: { method: string; url: string; headers: Record<string, string>; originalUrl?: string },
): Promise<{ status: number; body: unknown; passed: boolean; caller: GatewayCaller | undefined }> {
  const out = { status: 200, body: undefined as unknown, passed: false }
  const message = { ...req } as unknown as IncomingMessage
  await new Promise<void>((resolve) => {
    const res = {
      statusCode: 200,
      setHeader: () => res,
      end: (text: string) => {
        out.status = res.statusCode
        out.body = JSON.parse(text)
        resolve()
      },
    }
    const step = (i: number): void => {
      const mw = chain[i]
      if (mw === undefined) {
        out.passed = true
        resolve()
        return
      }
      mw(message, res as unknown as ServerResponse, () => step(i + 1))
    }
    step(0)
  })
  return { ...out, caller: gatewayCaller(message) }
}

describe('middleware: plain http / Express adapter', () => {
  const gateway = gatewayAssertion(OPTIONS)

  it('passes a request with a valid assertion and puts the caller in req.gateway', async () => {
    const a = await assertion('GET', '/orders/1', ['orders:read'])
    const r = await runChain([gateway, requireScope('orders:read')], {
      method: 'GET',
      url: '/orders/1',
      headers: { 'x-gateway-assertion': a },
    })
    expect(r.passed).toBe(true)
    expect(r.caller).toMatchObject({ consumer: WEB, scopes: ['orders:read'] })
  })

  it('refuses forged X-Consumer-* headers without an assertion: 401 ERR_ASSERTION_MISSING', async () => {
    const r = await runChain([gateway], {
      method: 'GET',
      url: '/orders/1',
      headers: { 'x-consumer-id': WEB.id, 'x-consumer-username': 'web-app' },
    })
    expect(r).toMatchObject({
      passed: false,
      status: 401,
      body: { message: 'Gateway assertion missing', code: 'ERR_ASSERTION_MISSING' },
    })
  })

  it('refuses a caller without the scope with 403 ERR_SCOPE_INSUFFICIENT', async () => {
    const a = await assertion('DELETE', '/orders/1', ['orders:read'])
    const r = await runChain([gateway, requireScope('orders:read', 'orders:admin')], {
      method: 'DELETE',
      url: '/orders/1',
      headers: { 'x-gateway-assertion': a },
    })
    expect(r).toMatchObject({
      passed: false,
      status: 403,
      body: { message: 'Insufficient scope', code: 'ERR_SCOPE_INSUFFICIENT' },
    })
  })

  it('refuses with 401 when requireScope runs without the assertion middleware in front', async () => {
    const r = await runChain([requireScope('orders:read')], {
      method: 'GET',
      url: '/orders/1',
      headers: {},
    })
    expect(r).toMatchObject({ passed: false, status: 401 })
  })

  it('refuses the anonymous consumer with 401 ERR_ASSERTION_ANONYMOUS unless allowAnonymous is set', async () => {
    const anon = await anonymousAssertion('GET', '/orders/1')
    const request = { method: 'GET', url: '/orders/1', headers: { 'x-gateway-assertion': anon } }
    // The handler reads req.gateway without requireScope: by default it never runs.
    const refused = await runChain([gateway], request)
    expect(refused).toMatchObject({
      passed: false,
      status: 401,
      body: { message: 'Anonymous caller not allowed', code: 'ERR_ASSERTION_ANONYMOUS' },
      caller: undefined,
    })
    const allowing = gatewayAssertion({ ...OPTIONS, allowAnonymous: true })
    const passed = await runChain([allowing], request)
    expect(passed).toMatchObject({ passed: true, caller: { consumer: ANON, anonymous: true } })
    // Allowed in, an anonymous caller still holds no scope.
    const scoped = await runChain([allowing, requireScope('orders:read')], request)
    expect(scoped).toMatchObject({ passed: false, status: 403 })
  })

  it('refuses to build requireScope() without a scope, or with a non-token: TypeError', () => {
    expect(() => requireScope()).toThrow(TypeError)
    expect(() => requireScope()).toThrow(/requireScope\(\) needs at least one scope/)
    expect(() => requireScope('orders:read orders:admin')).toThrow(/is not a scope token/)
    expect(() => requireScope('')).toThrow(/is not a scope token/)
    expect(() => requireScope(42 as unknown as string)).toThrow(/42 is not a scope token/)
  })

  it("checks Express's originalUrl, not the url a mounted router sees", async () => {
    const a = await assertion('GET', '/api/orders/1', ['orders:read'])
    const r = await runChain([gateway], {
      method: 'GET',
      url: '/orders/1',
      originalUrl: '/api/orders/1',
      headers: { 'x-gateway-assertion': a },
    })
    expect(r.passed).toBe(true)
  })
})

describe('middleware: fastify adapter', () => {
  async function app(allowAnonymous?: boolean) {
    const f = Fastify()
    await f.register(
      fastifyGatewayAssertion(
        allowAnonymous === undefined ? OPTIONS : { ...OPTIONS, allowAnonymous },
      ),
    )
    f.get('/me', (request) => ({
      caller: (request as unknown as { gateway: GatewayCaller }).gateway,
    }))
    f.get('/orders/:id', { preHandler: fastifyRequireScope('orders:read') }, (request) => ({
      caller: (request as unknown as { gateway: GatewayCaller }).gateway,
    }))
    f.delete('/orders/:id', { preHandler: fastifyRequireScope('orders:admin') }, () => ({}))
    return f
  }

  it('passes a valid assertion and hands the caller to the route handler', async () => {
    const f = await app()
    const res = await f.inject({
      method: 'GET',
      url: '/orders/1?expand=items',
      headers: { 'x-gateway-assertion': await assertion('GET', '/orders/1', ['orders:read']) },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({
      caller: { consumer: WEB, credential: 'web', subject: 'user-42', scopes: ['orders:read'] },
    })
    await f.close()
  })

  it('refuses forged identity headers with 401, a replay on another path with 401, a missing scope with 403', async () => {
    const f = await app()
    const forged = await f.inject({
      method: 'GET',
      url: '/orders/1',
      headers: { 'x-consumer-id': WEB.id },
    })
    expect(forged.statusCode).toBe(401)
    expect(forged.json()).toEqual({
      message: 'Gateway assertion missing',
      code: 'ERR_ASSERTION_MISSING',
    })
    const replay = await f.inject({
      method: 'GET',
      url: '/orders/2',
      headers: { 'x-gateway-assertion': await assertion('GET', '/orders/1', ['orders:read']) },
    })
    expect(replay.statusCode).toBe(401)
    expect(replay.json()).toMatchObject({ code: 'ERR_ASSERTION_MISMATCH' })
    const scope = await f.inject({
      method: 'DELETE',
      url: '/orders/1',
      headers: { 'x-gateway-assertion': await assertion('DELETE', '/orders/1', ['orders:read']) },
    })
    expect(scope.statusCode).toBe(403)
    expect(scope.json()).toEqual({ message: 'Insufficient scope', code: 'ERR_SCOPE_INSUFFICIENT' })
    await f.close()
  })

  it('refuses the anonymous consumer with 401 ERR_ASSERTION_ANONYMOUS unless allowAnonymous is set', async () => {
    for (const setting of [undefined, false]) {
      const f = await app(setting)
      const res = await f.inject({
        method: 'GET',
        url: '/me',
        headers: { 'x-gateway-assertion': await anonymousAssertion('GET', '/me') },
      })
      expect(res.statusCode).toBe(401)
      expect(res.json()).toEqual({
        message: 'Anonymous caller not allowed',
        code: 'ERR_ASSERTION_ANONYMOUS',
      })
      await f.close()
    }
    const f = await app(true)
    const me = await f.inject({
      method: 'GET',
      url: '/me',
      headers: { 'x-gateway-assertion': await anonymousAssertion('GET', '/me') },
    })
    expect(me.statusCode).toBe(200)
    expect(me.json()).toMatchObject({ caller: { consumer: ANON, anonymous: true, scopes: [] } })
    const scoped = await f.inject({
      method: 'GET',
      url: '/orders/1',
      headers: { 'x-gateway-assertion': await anonymousAssertion('GET', '/orders/1') },
    })
    expect(scoped.statusCode).toBe(403)
    await f.close()
  })

  it('refuses to build fastifyRequireScope() without a scope, or with a non-token: TypeError', () => {
    expect(() => fastifyRequireScope()).toThrow(TypeError)
    expect(() => fastifyRequireScope()).toThrow(/fastifyRequireScope\(\) needs at least one scope/)
    expect(() => fastifyRequireScope('a b')).toThrow(/is not a scope token/)
  })

  it('refuses with 401 when fastifyRequireScope runs without the assertion plugin in front', async () => {
    const f = Fastify()
    f.get('/orders/:id', { preHandler: fastifyRequireScope('orders:read') }, () => ({}))
    const res = await f.inject({ method: 'GET', url: '/orders/1' })
    expect(res.statusCode).toBe(401)
    expect(res.json()).toMatchObject({ code: 'ERR_ASSERTION_MISSING' })
    await f.close()
  })
})
