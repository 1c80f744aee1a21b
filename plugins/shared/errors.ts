/**
 * The one error catalogue of the toolkit. Every refusal any plugin gives carries one of these
 * codes; the code is stable, listed in the README (a unit test keeps the two in step), and is
 * what code should switch on, never the message text.
 *
 * `bearer` is the RFC 6750 §3.1 `error` attribute of the `WWW-Authenticate: Bearer` challenge:
 * `undefined` means a challenge without an error attribute (no token was presented), `null`
 * means no challenge at all (the failure is not about the caller's credentials).
 */
export interface ErrorSpec {
  readonly status: number
  readonly bearer: 'invalid_request' | 'invalid_token' | 'insufficient_scope' | undefined | null
  readonly message: string
}

export const CATALOGUE = {
  ERR_TOKEN_MISSING: { status: 401, bearer: undefined, message: 'Unauthorized' },
  ERR_TOKEN_MULTIPLE: {
    status: 401,
    bearer: 'invalid_request',
    message: 'Multiple tokens provided',
  },
  ERR_REQUEST_INVALID: { status: 400, bearer: 'invalid_request', message: 'Invalid request' },
  ERR_TOKEN_MALFORMED: { status: 401, bearer: 'invalid_token', message: 'Malformed token' },
  ERR_CREDENTIAL_UNKNOWN: { status: 401, bearer: 'invalid_token', message: 'Unknown credential' },
  ERR_CONSUMER_NOT_FOUND: {
    status: 401,
    bearer: 'invalid_token',
    message: 'No consumer for this credential',
  },
  ERR_ALGORITHM_NOT_ALLOWED: {
    status: 401,
    bearer: 'invalid_token',
    message: 'Algorithm not allowed',
  },
  ERR_SIGNATURE_INVALID: { status: 401, bearer: 'invalid_token', message: 'Invalid signature' },
  ERR_TOKEN_EXPIRED: { status: 401, bearer: 'invalid_token', message: 'Token expired' },
  ERR_TOKEN_NOT_YET_VALID: { status: 401, bearer: 'invalid_token', message: 'Token not yet valid' },
  ERR_TOKEN_LIFETIME_EXCEEDED: {
    status: 401,
    bearer: 'invalid_token',
    message: 'Token lifetime too long',
  },
  ERR_ISSUER_INVALID: { status: 401, bearer: 'invalid_token', message: 'Invalid issuer' },
  ERR_AUDIENCE_INVALID: { status: 401, bearer: 'invalid_token', message: 'Invalid audience' },
  ERR_CLAIM_MISSING: { status: 401, bearer: 'invalid_token', message: 'Missing required claim' },
  ERR_CLAIM_INVALID: { status: 401, bearer: 'invalid_token', message: 'Invalid claim' },
  ERR_TYP_INVALID: { status: 401, bearer: 'invalid_token', message: 'Invalid token type' },
  ERR_SCOPE_CEILING_EXCEEDED: {
    status: 401,
    bearer: 'invalid_token',
    message: 'Token carries scopes its consumer may not hold',
  },
  ERR_KEY_SOURCE_UNAVAILABLE: {
    status: 503,
    bearer: null,
    message: 'Key source unavailable',
  },
  ERR_SCOPE_CONTEXT_MISSING: { status: 401, bearer: undefined, message: 'Unauthorized' },
  ERR_SCOPE_INSUFFICIENT: {
    status: 403,
    bearer: 'insufficient_scope',
    message: 'Insufficient scope',
  },
  ERR_TOKEN_REVOKED: { status: 401, bearer: 'invalid_token', message: 'Token revoked' },
  ERR_REVOCATION_UNAVAILABLE: {
    status: 503,
    bearer: null,
    message: 'Revocation check unavailable',
  },
  // The service middleware (middleware/): the request did not come through the gateway's
  // checks. No challenge: no token the client could send to the service fixes it.
  ERR_ASSERTION_MISSING: { status: 401, bearer: null, message: 'Gateway assertion missing' },
  ERR_ASSERTION_INVALID: { status: 401, bearer: null, message: 'Invalid gateway assertion' },
  ERR_ASSERTION_EXPIRED: { status: 401, bearer: null, message: 'Gateway assertion expired' },
  ERR_ASSERTION_MISMATCH: {
    status: 401,
    bearer: null,
    message: 'Gateway assertion is for another request',
  },
  ERR_ASSERTION_ANONYMOUS: {
    status: 401,
    bearer: null,
    message: 'Anonymous caller not allowed',
  },
  ERR_CONFIG_INVALID: { status: 500, bearer: null, message: 'Internal error' },
  ERR_INTERNAL: { status: 500, bearer: null, message: 'Internal error' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof CATALOGUE

export const ERROR_CODES = Object.keys(CATALOGUE) as ErrorCode[]

/** Extra attributes for the challenge, e.g. the `scope` an insufficient_scope refusal needs. */
export interface ChallengeParams {
  readonly scope?: string
}

/**
 * A refusal. `detail` and `cause` are for Kong's log only and never reach the client; the client
 * sees the catalogue message and the code.
 */
export class PluginError extends Error {
  readonly code: ErrorCode
  readonly detail: string | undefined
  readonly challenge: ChallengeParams | undefined

  constructor(
    code: ErrorCode,
    detail?: string,
    options?: { cause?: unknown; challenge?: ChallengeParams },
  ) {
    super(detail === undefined ? code : `${code}: ${detail}`, { cause: options?.cause })
    this.name = 'PluginError'
    this.code = code
    this.detail = detail
    this.challenge = options?.challenge
  }

  get status(): number {
    return CATALOGUE[this.code].status
  }
}

/** Narrow by code rather than by `instanceof`, so duplicate module copies still match. */
export function isPluginError(value: unknown): value is PluginError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { name?: unknown }).name === 'PluginError' &&
    typeof (value as { code?: unknown }).code === 'string' &&
    (value as { code: string }).code in CATALOGUE
  )
}
