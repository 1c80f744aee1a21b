/**
 * Kong 3.9's default router (`traditional_compatible`) for HTTP routes, re-implemented from the
 * rules in Kong's kong/router/transform.lua `get_priority` and kong/router/utils.lua:
 *
 * - a route with several paths is split into one candidate per path;
 * - priority, highest first: number of match fields (methods, hosts, headers, paths, …), then
 *   "plain hosts only" (no wildcard), then regex paths, then header count, then regex_priority
 *   (regex paths only), then the prefix length (longest prefix wins);
 * - prefix paths are plain string prefixes; `~` paths are regexes anchored at the start;
 * - hosts match exactly (case-insensitive, port only if the route's host has one) or with a
 *   leading/trailing `*` wildcard;
 * - the upstream path follows path_handling v0 (strip_path, service path joining).
 */
import type { RouteEntity } from './declarative-config'

export interface RouteCandidate {
  readonly route: RouteEntity
  readonly path?: string
  readonly regex?: RegExp
  readonly priority: bigint
  readonly order: number
}

export interface RouteRequest {
  readonly method: string
  /** Host header value, possibly with a port. */
  readonly host: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>
  readonly protocol: 'http' | 'https'
}

export interface RouteMatch {
  readonly route: RouteEntity
  /** The matched path (prefix, or `~regex`), if the route has paths. */
  readonly matchedPath?: string
  /** Part of the request path after the matched prefix or regex match. */
  readonly postfix: string
  /** The matched prefix stripped from the path, for X-Forwarded-Prefix (only when stripped). */
  readonly strippedPrefix?: string
  readonly captures: {
    readonly unnamed: readonly string[]
    readonly named: Readonly<Record<string, string>>
  }
}

function isEmpty(v: readonly unknown[] | Readonly<Record<string, unknown>> | undefined): boolean {
  if (v === undefined) return true
  return Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0
}

export function routePriority(route: RouteEntity, path?: string): bigint {
  let weight = 0n
  if (!isEmpty(route.methods)) weight += 1n
  if (!isEmpty(route.hosts)) weight += 1n
  const headersCount = route.headers ? Math.min(Object.keys(route.headers).length, 255) : 0
  if (headersCount > 0) weight += 1n
  const plainHostOnly = route.hosts !== undefined && !route.hosts.some((h) => h.includes('*'))
  let uriLength = 0
  let regexUrl = false
  if (path !== undefined) {
    weight += 1n
    if (path.startsWith('~')) regexUrl = true
    else uriLength = path.length
  }
  const regexPriority = regexUrl ? BigInt(route.regex_priority) : 0n
  return (
    (weight << 61n) |
    (plainHostOnly ? 1n << 60n : 0n) |
    (BigInt(headersCount) << 52n) |
    (regexUrl ? 1n << 51n : 0n) |
    ((regexPriority & 0xffffffffn) << 19n) |
    BigInt(uriLength & 0x7ffff)
  )
}

export function buildRouter(routes: readonly RouteEntity[]): Router {
  const candidates: RouteCandidate[] = []
  routes.forEach((route, i) => {
    if (!route.protocols.includes('http') && !route.protocols.includes('https')) return
    const paths = route.paths ?? []
    if (paths.length === 0) {
      candidates.push({ route, priority: routePriority(route), order: i })
      return
    }
    for (const p of paths) {
      candidates.push({
        route,
        path: p,
        ...(p.startsWith('~') ? { regex: new RegExp(`^(?:${p.slice(1)})`) } : {}),
        priority: routePriority(route, p),
        order: i,
      })
    }
  })
  candidates.sort((a, b) =>
    a.priority === b.priority ? a.order - b.order : a.priority > b.priority ? -1 : 1,
  )
  return new Router(candidates)
}

function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase()
  const [hostOnly] = host.toLowerCase().split(':')
  const h = p.includes(':') ? host.toLowerCase() : (hostOnly ?? '')
  if (p.startsWith('*.')) return h.endsWith(p.slice(1))
  if (p.endsWith('.*')) return h.startsWith(p.slice(0, -1))
  return h === p
}

export class Router {
  constructor(readonly candidates: readonly RouteCandidate[]) {}

  match(req: RouteRequest): RouteMatch | undefined {
    for (const c of this.candidates) {
      const { route } = c
      if (!route.protocols.includes(req.protocol)) continue
      if (route.methods && !route.methods.includes(req.method.toUpperCase())) continue
      if (route.hosts && !route.hosts.some((h) => hostMatches(h, req.host))) continue
      if (route.headers && !headersMatch(route.headers, req.headers)) continue
      if (c.path === undefined) {
        return { route, postfix: req.path, captures: { unnamed: [], named: {} } }
      }
      if (c.regex) {
        const m = c.regex.exec(req.path)
        if (!m) continue
        const whole = m[0]
        // A group that did not take part in the match is undefined, whatever lib.d.ts says.
        const unnamed: readonly (string | undefined)[] = m.slice(1)
        const named: Readonly<Record<string, string | undefined>> = m.groups ?? {}
        return {
          route,
          matchedPath: c.path,
          postfix: req.path.slice(whole.length),
          ...(route.strip_path ? { strippedPrefix: whole } : {}),
          captures: {
            unnamed: unnamed.map((x) => x ?? ''),
            named: Object.fromEntries(Object.entries(named).map(([k, v]) => [k, v ?? ''])),
          },
        }
      }
      if (req.path.startsWith(c.path)) {
        return {
          route,
          matchedPath: c.path,
          postfix: req.path.slice(c.path.length),
          ...(route.strip_path ? { strippedPrefix: c.path } : {}),
          captures: { unnamed: [], named: {} },
        }
      }
    }
    return undefined
  }
}

function headersMatch(
  want: Readonly<Record<string, readonly string[]>>,
  got: Readonly<Record<string, string | readonly string[] | undefined>>,
): boolean {
  for (const [name, values] of Object.entries(want)) {
    const v = got[name]
    const have = v === undefined ? [] : typeof v === 'string' ? [v] : v
    if (!have.some((x) => values.some((w) => w.toLowerCase() === x.toLowerCase()))) return false
  }
  return true
}

/** Upstream path for path_handling v0 (kong/router/utils.lua get_upstream_uri_v0). */
export function upstreamPath(
  route: RouteEntity,
  postfix: string,
  reqPath: string,
  servicePath: string | undefined,
): string {
  const base = servicePath ?? '/'
  const strip = route.strip_path
  if (base.endsWith('/')) {
    if (strip) {
      if (postfix === '') {
        if (base === '/') return '/'
        if (reqPath.endsWith('/')) return base
        return base.slice(0, -1)
      }
      if (postfix.startsWith('/')) return base.slice(0, -1) + postfix
      return base + postfix
    }
    return base + reqPath.slice(1)
  }
  if (strip) {
    if (postfix === '') {
      if (reqPath.length > 1 && reqPath.endsWith('/')) return base + '/'
      return base
    }
    if (postfix.startsWith('/')) return base + postfix
    return base + '/' + postfix
  }
  if (reqPath === '/') return base
  return base + reqPath
}
