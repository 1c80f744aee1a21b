/**
 * Does the path a service received belong to the path the client sent Kong (the assertion's)?
 * Kong may rewrite the path on the way: a route with `strip_path: true` removes the matched
 * prefix and a service `path` is prepended. Both sides are normalized the same way before they
 * are compared, as Kong normalizes a path before routing it.
 */

export interface PathMapping {
  /**
   * The route path(s) Kong strips before proxying (routes with `strip_path: true`): the client's
   * `/orders/1` on route `/orders` reaches the service as `/1`. Unset: Kong strips nothing.
   */
  readonly routePrefix?: string | readonly string[]
  /** The service's `path`, which Kong puts in front of what it proxies. Default `/`. */
  readonly servicePath?: string
}

const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * RFC 3986 §6.2.2: percent-encodings of unreserved characters decoded, the others upper-cased,
 * dot segments removed (§5.2.4), runs of slashes merged (nginx's merge_slashes).
 */
export function normalizePath(path: string): string {
  const decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (whole, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16))
    return UNRESERVED.test(ch) ? ch : whole.toUpperCase()
  })
  const merged = decoded.replace(/\/{2,}/g, '/')
  const out: string[] = []
  const segments = merged.split('/')
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] ?? ''
    const last = i === segments.length - 1
    if (segment === '.') {
      if (last) out.push('')
    } else if (segment === '..') {
      if (out.length > 1) out.pop()
      if (last) out.push('')
    } else {
      out.push(segment)
    }
  }
  const joined = out.join('/')
  return joined.startsWith('/') ? joined : `/${joined}`
}

function join(base: string, postfix: string): string {
  if (postfix === '') return base
  const tail = postfix.startsWith('/') ? postfix.slice(1) : postfix
  return base.endsWith('/') ? base + tail : `${base}/${tail}`
}

const withoutTrailingSlash = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, '') : p)

/**
 * Whether `received` (the path the service got, no query) is what Kong makes of `clientPath`
 * (the assertion's `path`) under this mapping.
 */
export function pathMatches(received: string, clientPath: string, mapping: PathMapping): boolean {
  const got = normalizePath(received)
  const sent = normalizePath(clientPath)
  const base = normalizePath(mapping.servicePath ?? '/')
  const prefixes =
    mapping.routePrefix === undefined
      ? undefined
      : typeof mapping.routePrefix === 'string'
        ? [mapping.routePrefix]
        : mapping.routePrefix
  if (prefixes === undefined) return got === (base === '/' ? sent : join(base, sent))
  for (const raw of prefixes) {
    const prefix = withoutTrailingSlash(normalizePath(raw))
    if (!sent.startsWith(prefix)) continue
    const postfix = prefix === '/' ? sent.slice(1) : sent.slice(prefix.length)
    if (postfix === '' || postfix === '/') {
      // The whole path was the prefix: Kong sends the service path, a trailing slash or not.
      if (withoutTrailingSlash(got) === withoutTrailingSlash(base)) return true
      continue
    }
    if (got === join(base, postfix)) return true
  }
  return false
}
