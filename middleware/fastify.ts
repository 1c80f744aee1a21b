/**
 * The fastify adapter. It needs no fastify at run time: the shapes below are the few members of
 * fastify's request, reply and instance it uses.
 */
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

export interface FastifyRequestLike {
  readonly method: string
  readonly url: string
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>
  gateway?: GatewayCaller | null
}

export interface FastifyReplyLike {
  code(status: number): FastifyReplyLike
  header(name: string, value: string): FastifyReplyLike
  send(payload: unknown): FastifyReplyLike
}

export type FastifyHook = (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>

export interface FastifyInstanceLike {
  decorateRequest(name: string, value: null): unknown
  addHook(name: 'onRequest', hook: FastifyHook): unknown
}

export type FastifyPluginLike = ((
  instance: FastifyInstanceLike,
  options: unknown,
  done: (error?: Error) => void,
) => void) & { readonly [key: symbol]: unknown }

function refuse(reply: FastifyReplyLike, error: GatewayAssertionError): FastifyReplyLike {
  return reply
    .code(error.status)
    .header('content-type', 'application/json; charset=utf-8')
    .send(error.body)
}

/**
 * A fastify plugin adding an onRequest hook: the caller lands in `request.gateway`, anything
 * else gets 401 and a JSON body. Registered without encapsulation (as fastify-plugin does), so
 * it covers the routes of the instance it is registered on.
 *
 * ```ts
 * await app.register(fastifyGatewayAssertion({ audience: 'orders', algorithm: 'HS256', secret }))
 * app.get('/orders/:id', { preHandler: fastifyRequireScope('orders:read') }, handler)
 * ```
 */
export function fastifyGatewayAssertion(
  options: AssertionVerifierOptions | AssertionVerifier,
): FastifyPluginLike {
  const verifier = 'verify' in options ? options : createAssertionVerifier(options)
  const plugin = (
    instance: FastifyInstanceLike,
    _options: unknown,
    done: (error?: Error) => void,
  ): void => {
    instance.decorateRequest('gateway', null)
    instance.addHook('onRequest', async (request, reply) => {
      try {
        request.gateway = await verifier.verify({
          method: request.method,
          url: request.url,
          headers: request.headers,
        })
      } catch (error) {
        return refuse(reply, refusalOf(error))
      }
      return undefined
    })
    done()
  }
  return Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'kong-jwt-toolkit-gateway-assertion',
  })
}

/**
 * A preHandler refusing with 403 ERR_SCOPE_INSUFFICIENT a caller lacking any of `scopes` (401
 * without fastifyGatewayAssertion in front). Throws a TypeError when given no scope, or
 * something that is not a scope token.
 */
export function fastifyRequireScope(...scopes: readonly string[]): FastifyHook {
  const required = requiredScopes('fastifyRequireScope', scopes)
  return (request, reply) => {
    const refusal = scopeRefusal(request.gateway ?? undefined, required)
    return Promise.resolve(refusal === undefined ? undefined : refuse(reply, refusal))
  }
}
