/**
 * An example service behind Kong, on plain `http`: every request must carry consumer-jwt's
 * gateway assertion; GET needs orders:read, DELETE orders:admin; the answer names the caller.
 *
 *   npm run build   # the dev build; the release build leaves examples out
 *   ASSERTION_SECRET=... ASSERTION_AUDIENCE=orders PORT=3000 node dist/middleware/example/orders-service.js
 *
 * ROUTE_PREFIX: the route path Kong strips (strip_path: true), e.g. /orders.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { gatewayAssertion, gatewayCaller, requireScope, type Middleware } from '../http'
import type { AssertionVerifierOptions } from '../verify'

export interface OrdersService {
  readonly url: string
  /** Requests that reached a handler (passed the middleware and the scope check). */
  readonly handled: { method: string; url: string; consumer: string }[]
  stop(): Promise<void>
}

/** Runs the middleware chain `chain` then `last`, Express-style, on a plain http request. */
function run(
  chain: readonly Middleware[],
  req: http.IncomingMessage,
  res: http.ServerResponse,
  last: () => void,
): void {
  const step = (i: number): void => {
    const mw = chain[i]
    if (mw === undefined) {
      last()
      return
    }
    mw(req, res, (error) => {
      if (error !== undefined) {
        res.statusCode = 500
        res.end()
        return
      }
      step(i + 1)
    })
  }
  step(0)
}

export async function startOrdersService(
  options: AssertionVerifierOptions,
  port = 0,
  host = '127.0.0.1',
): Promise<OrdersService> {
  const gateway = gatewayAssertion(options)
  const byMethod: Record<string, Middleware> = {
    GET: requireScope('orders:read'),
    HEAD: requireScope('orders:read'),
    DELETE: requireScope('orders:admin'),
  }
  const handled: OrdersService['handled'] = []
  const server = http.createServer((req, res) => {
    const scope = byMethod[req.method ?? '']
    if (scope === undefined) {
      res.statusCode = 405
      res.end()
      return
    }
    run([gateway, scope], req, res, () => {
      const caller = gatewayCaller(req)
      handled.push({
        method: req.method ?? '',
        url: req.url ?? '',
        consumer: caller?.consumer.username ?? caller?.consumer.id ?? '',
      })
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({ order: req.url, caller }))
    })
  })
  await new Promise<void>((resolve) => server.listen(port, host, resolve))
  const { port: bound } = server.address() as AddressInfo
  return {
    url: `http://${host}:${bound}`,
    handled,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

if (require.main === module) {
  const secret = process.env['ASSERTION_SECRET']
  const publicKey = process.env['ASSERTION_PUBLIC_KEY']
  const prefix = process.env['ROUTE_PREFIX']
  void startOrdersService(
    {
      audience: process.env['ASSERTION_AUDIENCE'] ?? 'orders',
      algorithm: (process.env['ASSERTION_ALGORITHM'] ??
        (publicKey !== undefined ? 'EdDSA' : 'HS256')) as AssertionVerifierOptions['algorithm'],
      ...(secret !== undefined ? { secret } : {}),
      ...(publicKey !== undefined ? { publicKey } : {}),
      ...(prefix !== undefined ? { routePrefix: prefix } : {}),
    },
    Number(process.env['PORT'] ?? 3000),
  ).then(
    (s) => console.log(`orders service on ${s.url}`),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error)
      process.exit(1)
    },
  )
}
