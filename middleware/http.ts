import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  createAssertionVerifier,
  refusalOf,
  requiredScopes,
  scopeRefusal,
  type GatewayAssertionError,
  type AssertionVerifier,
  type AssertionVerifierOptions,
  type GatewayCaller,
} from './verify'

/** A request the middleware has passed: `gateway` holds the caller. */
export interface GatewayRequest extends IncomingMessage {
  gateway?: GatewayCaller
  /** Express keeps the URL as received here when a router is mounted on a prefix. */
  originalUrl?: string
}

export type Next = (error?: unknown) => void
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void

/** Writes a refusal: the status and `{"message", "code"}` as JSON. */
export function sendRefusal(res: ServerResponse, error: GatewayAssertionError): void {
  const body = JSON.stringify(error.body)
  res.statusCode = error.status
  res.setHeader('Content-Type', 'application/json; charset=utf-8')
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.end(body)
}

/** The caller of a request the middleware passed, or undefined. */
export function gatewayCaller(req: IncomingMessage): GatewayCaller | undefined {
  return (req as GatewayRequest).gateway
}

/**
 * Express-style middleware `(req, res, next)`, also usable with plain `http`: passes a request
 * whose gateway assertion verifies and is about this very request (method, path), with the
 * caller in `req.gateway`; refuses anything else with 401 and a JSON body.
 *
 * ```ts
 * const gateway = gatewayAssertion({ audience: 'orders', algorithm: 'HS256', secret })
 * app.use(gateway)                                   // Express
 * http.createServer((req, res) => gateway(req, res, () => handle(req, res)))  // plain http
 * ```
 */
export function gatewayAssertion(
  options: AssertionVerifierOptions | AssertionVerifier,
): Middleware {
  const verifier = 'verify' in options ? options : createAssertionVerifier(options)
  return (req, res, next) => {
    const r = req as GatewayRequest
    verifier
      .verify({ method: req.method, url: r.originalUrl ?? req.url, headers: req.headers })
      .then(
        (caller) => {
          r.gateway = caller
          next()
        },
        (error: unknown) => sendRefusal(res, refusalOf(error)),
      )
      // A throwing `next` is the application's error, not a refusal: hand it to the framework.
      .catch((error: unknown) => next(error))
  }
}

/**
 * Refuses with 403 ERR_SCOPE_INSUFFICIENT a caller lacking any of `scopes`; put it after
 * `gatewayAssertion` (without it in front, every request is refused with 401). Throws a
 * TypeError when given no scope, or something that is not a scope token.
 */
export function requireScope(...scopes: readonly string[]): Middleware {
  const required = requiredScopes('requireScope', scopes)
  return (req, res, next) => {
    const refusal = scopeRefusal(gatewayCaller(req), required)
    if (refusal !== undefined) {
      sendRefusal(res, refusal)
      return
    }
    next()
  }
}
