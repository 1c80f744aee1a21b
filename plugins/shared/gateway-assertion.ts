/**
 * The contract between consumer-jwt's `assertion` setting (which signs) and the service
 * middleware in middleware/ (which verifies): one compact JWS per proxied request, telling the
 * service who the gateway authenticated and for which request.
 */

/** The JOSE `typ` of an assertion, so no other token signed with the same key passes for one. */
export const ASSERTION_TYP = 'gateway-assertion+jwt'

export const DEFAULT_ASSERTION_HEADER = 'X-Gateway-Assertion'

/** Signature algorithms an assertion may use (one shared secret, or one of three key types). */
export const ASSERTION_ALGORITHMS = ['HS256', 'EdDSA', 'ES256', 'RS256'] as const
export type AssertionAlgorithm = (typeof ASSERTION_ALGORITHMS)[number]

/** The claims of an assertion (registered claims as RFC 7519 names them). */
export interface AssertionClaims {
  readonly iss: string
  readonly aud: string
  readonly iat: number
  readonly exp: number
  readonly jti: string
  /** The verified token's `sub`, when it had one. */
  readonly sub?: string
  /** The Kong consumer the gateway authenticated. */
  readonly consumer: { readonly id: string; readonly username?: string }
  /** The credential `key` that verified the token; absent for the anonymous consumer. */
  readonly credential?: string
  /** The token's scopes, as the gateway read and checked them, space-delimited (RFC 6749 §3.3). */
  readonly scope?: string
  /** Present (true) when the gateway fell back to its `anonymous` consumer. */
  readonly anonymous?: true
  /** The request method, as the client sent it to Kong. */
  readonly method: string
  /** The request path as the client sent it to Kong (no query), before any strip_path. */
  readonly path: string
}

/**
 * Method and path of nginx's `$request`, the raw request line (`GET /orders/1?x=y HTTP/1.1`):
 * the target may be in absolute form (`http://host/path`), the query is dropped. Undefined for
 * anything that is not a request line.
 */
export function parseRequestLine(
  line: string | undefined,
): { readonly method: string; readonly path: string } | undefined {
  if (line === undefined) return undefined
  const first = line.indexOf(' ')
  if (first <= 0) return undefined
  const method = line.slice(0, first)
  if (!/^[A-Za-z!#$%&'*+.^_`|~0-9-]+$/.test(method)) return undefined
  let target = line.slice(first + 1)
  const last = target.lastIndexOf(' ')
  // HTTP/0.9 has no protocol part; nginx also keeps a target with spaces in it as sent.
  if (last >= 0 && /^HTTP\/\d+(\.\d+)?$/.test(target.slice(last + 1))) {
    target = target.slice(0, last)
  }
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target)
  if (absolute !== null) {
    target = target.slice(absolute[0].length)
    if (!target.startsWith('/')) target = `/${target}`
  }
  const query = target.search(/[?#]/)
  const path = query < 0 ? target : target.slice(0, query)
  if (path === '') return undefined
  return { method, path }
}
