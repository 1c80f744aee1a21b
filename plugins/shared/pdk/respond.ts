import { CATALOGUE, type ChallengeParams, type ErrorCode } from '../errors'

export interface RefusalResponse {
  readonly status: number
  readonly body: { message: string; code: ErrorCode }
  readonly headers: Record<string, string>
}

/** RFC 6750 §3: auth-param values are quoted-strings; keep them to safe printable ASCII. */
function quote(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '')}"`
}

/**
 * The response a refusal gets: the catalogue status and message plus the stable code, and for
 * 401/403 an RFC 6750 §3 `WWW-Authenticate: Bearer` challenge. A challenge carries no `error`
 * attribute when no token was presented (§3.1). `error_description` is the catalogue message:
 * human-readable, and never the detail (which may echo token content).
 */
export function refusal(
  code: ErrorCode,
  realm: string,
  challenge?: ChallengeParams,
): RefusalResponse {
  const spec = CATALOGUE[code]
  const headers: Record<string, string> = {}
  if (spec.bearer !== null) {
    const params = [`realm=${quote(realm)}`]
    if (spec.bearer !== undefined) {
      params.push(`error=${quote(spec.bearer)}`, `error_description=${quote(spec.message)}`)
    }
    if (challenge?.scope !== undefined) params.push(`scope=${quote(challenge.scope)}`)
    headers['WWW-Authenticate'] = `Bearer ${params.join(', ')}`
  }
  return { status: spec.status, body: { message: spec.message, code }, headers }
}
