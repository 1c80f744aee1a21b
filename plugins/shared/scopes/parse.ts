import type { JWTPayload } from 'jose'

/**
 * Reads the scopes a token grants. `scope` is a space-delimited string (RFC 8693 §4.2,
 * RFC 9068 §2.2.3); `scp` is the common array form (also accepted as a string). Extra claim
 * paths may be given with dots for nested claims (`realm_access.roles`). Values that are not
 * strings are ignored: a scope is an exact token, never coerced.
 */
export const DEFAULT_SCOPE_CLAIMS: readonly string[] = ['scope', 'scp']

export function readScopes(
  claims: JWTPayload,
  paths: readonly string[] = DEFAULT_SCOPE_CLAIMS,
): Set<string> {
  const scopes = new Set<string>()
  for (const path of paths) addScopes(scopes, claimAt(claims, path))
  return scopes
}

export function claimAt(claims: JWTPayload, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(claims, path)) return claims[path]
  let value: unknown = claims
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
    if (!Object.prototype.hasOwnProperty.call(value, part)) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/**
 * Like readScopes, but a scope claim of any other shape than a space-delimited string or an
 * array of scope tokens is an error, not ignored: a checker that skips what it cannot read
 * would let `["a", "b c"]` or `{"x": "admin"}` past a ceiling and on to the upstream.
 * @returns the scopes, or the path of the first malformed claim.
 */
export function readScopesStrict(
  claims: JWTPayload,
  paths: readonly string[],
): { ok: true; scopes: Set<string> } | { ok: false; claim: string } {
  const scopes = new Set<string>()
  for (const path of paths) {
    const value = claimAt(claims, path)
    if (value === undefined) continue
    const wellFormed =
      typeof value === 'string' ||
      (Array.isArray(value) &&
        value.every((v) => typeof v === 'string' && v !== '' && !/\s/.test(v)))
    if (!wellFormed) return { ok: false, claim: path }
    addScopes(scopes, value)
  }
  return { ok: true, scopes }
}

function addScopes(into: Set<string>, value: unknown): void {
  if (typeof value === 'string') {
    for (const s of value.split(/[ \t\n\r]+/)) if (s !== '') into.add(s)
  } else if (Array.isArray(value)) {
    for (const v of value) if (typeof v === 'string' && v !== '' && !/\s/.test(v)) into.add(v)
  }
}
