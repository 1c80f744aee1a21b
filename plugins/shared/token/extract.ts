import { PluginError } from '../errors'
import type { MultiMap } from '../pdk/port'

export interface TokenSources {
  /** Lower-cased header names. */
  readonly headerNames: readonly string[]
  readonly cookieNames: readonly string[]
  readonly queryNames: readonly string[]
}

/** Where the token was found, so hide_credentials can remove exactly that. */
export type TokenOrigin =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'query'; readonly name: string }

export interface ExtractedToken {
  readonly token: string
  readonly origins: readonly TokenOrigin[]
}

const BEARER = /^\s*bearer\s+(\S+)\s*$/i

/**
 * Cookie pairs of every Cookie header line (RFC 6265 §5.4: `name=value; name=value`). A comma
 * separates pairs too: RFC 6265 cookie values cannot hold one, and some upstream parsers split
 * on it, so a token hidden behind a comma must still be seen (and counted).
 */
export function parseCookies(lines: readonly string[]): [string, string][] {
  const pairs: [string, string][] = []
  for (const line of lines) {
    for (const part of line.split(/[;,]/)) {
      const eq = part.indexOf('=')
      if (eq <= 0) continue
      let value = part.slice(eq + 1).trim()
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))
        value = value.slice(1, -1)
      pairs.push([part.slice(0, eq).trim(), value])
    }
  }
  return pairs
}

/**
 * Finds the one token of a request, as Kong's own auth plugins do: every configured header,
 * cookie and query parameter is searched, every value counts. No token: ERR_TOKEN_MISSING.
 * Two different tokens: ERR_TOKEN_MULTIPLE (the same token in two places is one token).
 * `Authorization` must use the Bearer scheme (another scheme is another plugin's credential);
 * other headers may carry `Bearer <token>` or the bare token.
 */
export function extractToken(
  headers: MultiMap,
  query: MultiMap | undefined,
  sources: TokenSources,
): ExtractedToken {
  const found = new Map<string, TokenOrigin[]>()
  const add = (token: string, origin: TokenOrigin): void => {
    const list = found.get(token)
    if (list === undefined) found.set(token, [origin])
    else list.push(origin)
  }

  for (const name of sources.headerNames) {
    for (const value of headers[name] ?? []) {
      const bearer = BEARER.exec(value)
      if (bearer?.[1] !== undefined) add(bearer[1], { kind: 'header', name })
      else if (name !== 'authorization' && value.trim() !== '' && !/\s/.test(value.trim())) {
        add(value.trim(), { kind: 'header', name })
      }
    }
  }
  if (sources.cookieNames.length > 0) {
    for (const [name, value] of parseCookies(headers.cookie ?? [])) {
      if (value !== '' && sources.cookieNames.includes(name)) add(value, { kind: 'cookie', name })
    }
  }
  if (query !== undefined) {
    for (const name of sources.queryNames) {
      for (const value of query[name] ?? []) if (value !== '') add(value, { kind: 'query', name })
    }
  }

  if (found.size === 0)
    throw new PluginError(
      'ERR_TOKEN_MISSING',
      'no token in the configured headers, cookies or query parameters',
    )
  if (found.size > 1) {
    const where = [...found.values()].flat().map((o) => `${o.kind} ${o.name}`)
    throw new PluginError(
      'ERR_TOKEN_MULTIPLE',
      `${found.size} different tokens (${where.join(', ')})`,
    )
  }
  const [[token, origins]] = [...found.entries()] as [[string, TokenOrigin[]]]
  return { token, origins }
}

/** The Cookie header without the named cookies, or undefined when nothing is left. */
export function cookieHeaderWithout(
  lines: readonly string[],
  names: ReadonlySet<string>,
): string | undefined {
  const kept = parseCookies(lines).filter(([n]) => !names.has(n))
  return kept.length === 0 ? undefined : kept.map(([n, v]) => `${n}=${v}`).join('; ')
}

/** The raw query string without the named parameters. */
export function queryWithout(query: MultiMap, names: ReadonlySet<string>): string {
  const params = new URLSearchParams()
  for (const [name, values] of Object.entries(query)) {
    if (names.has(name)) continue
    if (values.length === 0) params.append(name, '')
    for (const v of values) params.append(name, v)
  }
  return params.toString()
}
