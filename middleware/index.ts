/**
 * kong-jwt-toolkit/middleware: for Node services behind Kong, verifies consumer-jwt's gateway
 * assertion (its `assertion` setting) and hands the handler the caller Kong authenticated.
 * Needs neither Express nor fastify; the adapters only use their request/response shapes.
 */
export {
  createAssertionVerifier,
  GatewayAssertionError,
  hasScopes,
  scopeRefusal,
  type AssertionVerifier,
  type AssertionVerifierOptions,
  type GatewayCaller,
  type IncomingFacts,
} from './verify'
export {
  gatewayAssertion,
  gatewayCaller,
  requireScope,
  sendRefusal,
  type GatewayRequest,
  type Middleware,
  type Next,
} from './http'
export { fastifyGatewayAssertion, fastifyRequireScope } from './fastify'
export { normalizePath, pathMatches, type PathMapping } from './path'
export {
  ASSERTION_TYP,
  DEFAULT_ASSERTION_HEADER,
  type AssertionAlgorithm,
  type AssertionClaims,
} from '../plugins/shared/gateway-assertion'
