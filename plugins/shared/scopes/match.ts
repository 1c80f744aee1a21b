/**
 * Matching granted scopes against required ones. Pure string work: a scope is an exact token
 * (RFC 6749 §3.3), so `admin` never matches `superadmin` and case matters. The only pattern is
 * an opt-in trailing `*` on a REQUIRED scope; a granted scope is never treated as a pattern, so
 * a token carrying `orders:*` does not gain `orders:read`.
 */

/** `all`: every required scope must be granted; `any`: at least one of them. */
export type MatchMode = 'any' | 'all'

export const MATCH_MODES: readonly MatchMode[] = ['all', 'any']

export interface MatchOptions {
  readonly match: MatchMode
  /** When true, a required scope ending in `*` matches any granted scope with that prefix. */
  readonly wildcardSuffix: boolean
}

export interface MatchResult {
  readonly satisfied: boolean
  /** The required scopes (as configured) that no granted scope satisfies. */
  readonly missing: readonly string[]
}

/** Whether a required wildcard scope such as `orders:*` has a usable prefix. */
export function isWildcard(required: string): boolean {
  return required.length > 1 && required.endsWith('*')
}

/**
 * Whether one required scope is granted. With `wildcardSuffix`, `orders:*` matches a granted
 * scope that starts with `orders:` and has at least one more character, and a granted scope
 * equal to `orders:*` itself.
 */
export function grants(
  granted: ReadonlySet<string>,
  required: string,
  wildcardSuffix: boolean,
): boolean {
  if (granted.has(required)) return true
  if (!wildcardSuffix || !isWildcard(required)) return false
  const prefix = required.slice(0, -1)
  for (const scope of granted) {
    if (scope.length > prefix.length && scope.startsWith(prefix)) return true
  }
  return false
}

/**
 * Matches a token's scopes against a rule's. An empty `required` list asks for nothing and is
 * always satisfied.
 */
export function matchScopes(
  granted: ReadonlySet<string>,
  required: readonly string[],
  options: MatchOptions,
): MatchResult {
  const missing = required.filter((scope) => !grants(granted, scope, options.wildcardSuffix))
  const satisfied =
    required.length === 0 ||
    (options.match === 'all' ? missing.length === 0 : missing.length < required.length)
  return { satisfied, missing }
}
