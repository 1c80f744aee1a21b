import { createPublicKey, type KeyObject } from 'node:crypto'
import { errors, jwtVerify, type JWTPayload } from 'jose'
import { CATALOGUE, type ErrorCode } from '../plugins/shared/errors'
import {
  ASSERTION_ALGORITHMS,
  ASSERTION_TYP,
  DEFAULT_ASSERTION_HEADER,
  type AssertionAlgorithm,
} from '../plugins/shared/gateway-assertion'
import {
  algorithmOfKey,
  importAssertionKey,
  MIN_ASSERTION_SECRET_BYTES,
} from '../plugins/shared/gateway-assertion-keys'
import { pathMatches, type PathMapping } from './path'

/** Who called, as the gateway authenticated them: what a handler decides authorization from. */
export interface GatewayCaller {
  readonly consumer: { readonly id: string; readonly username: string | undefined }
  /** The consumer-jwt credential key that verified the token; undefined when anonymous. */
  readonly credential: string | undefined
  /** The token's `sub`, if it had one. */
  readonly subject: string | undefined
  /** The token's scopes, as the gateway read and checked them. */
  readonly scopes: readonly string[]
  /** The gateway fell back to its `anonymous` consumer (no valid token). */
  readonly anonymous: boolean
  /** The assertion's `jti`, unique per proxied request (for logs, or to refuse a repeat). */
  readonly assertionId: string
}

export interface AssertionVerifierOptions extends PathMapping {
  /** The `audience` of consumer-jwt's `assertion`: required, compared exactly. */
  readonly audience: string
  /** The `issuer` of consumer-jwt's `assertion`. Default `kong`. */
  readonly issuer?: string
  /** The one algorithm accepted (pinned; the assertion's `alg` header is never trusted). */
  readonly algorithm: AssertionAlgorithm
  /** The HS256 secret (at least 32 bytes), as the gateway holds it. */
  readonly secret?: string | Uint8Array
  /** The public key (PEM, or a KeyObject) of the gateway's EdDSA/ES256/RS256 private key. */
  readonly publicKey?: string | KeyObject
  /** Request header carrying the assertion. Default `X-Gateway-Assertion`. */
  readonly header?: string
  /** Clock skew tolerated between gateway and service, in seconds (0–60). Default 5. */
  readonly clockTolerance?: number
  /** Oldest assertion accepted (now - iat), in seconds (1–600), whatever its exp. Default 60. */
  readonly maxAge?: number
  /**
   * Pass callers the gateway let through as its `anonymous` consumer (consumer-jwt's `anonymous`
   * setting: no token, or one that failed). Default false: such a request is refused with 401
   * ERR_ASSERTION_ANONYMOUS, as it proves no login. Set it for a service that serves anonymous
   * callers itself, and check `caller.anonymous` (or use requireScope) in its handlers.
   */
  readonly allowAnonymous?: boolean
  /** Milliseconds since the epoch; tests pin it. */
  readonly now?: () => number
}

/** Why a request is refused; `code` is stable (README error table), `status` the HTTP status. */
export class GatewayAssertionError extends Error {
  readonly code: ErrorCode
  readonly detail: string | undefined

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail === undefined ? code : `${code}: ${detail}`, { cause: options?.cause })
    this.name = 'GatewayAssertionError'
    this.code = code
    this.detail = detail
  }

  get status(): number {
    return CATALOGUE[this.code].status
  }

  /** The JSON body a refusal gets: the catalogue message and the code, never the detail. */
  get body(): { readonly message: string; readonly code: ErrorCode } {
    return { message: CATALOGUE[this.code].message, code: this.code }
  }
}

/** The facts of the request the assertion must be about. */
export interface IncomingFacts {
  readonly method: string | undefined
  /** The request target as the service received it (path and query). */
  readonly url: string | undefined
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>
}

export interface AssertionVerifier {
  readonly header: string
  /** The caller, or a GatewayAssertionError; never any other rejection. */
  verify(request: IncomingFacts): Promise<GatewayCaller>
}

function misuse(option: string, why: string): TypeError {
  return new TypeError(`gateway assertion: "${option}" option ${why}`)
}

const stringOrUndefined = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : undefined

/**
 * Builds the verifier once, at start (the key is imported once). Bad options throw a TypeError
 * naming the option, as a service should fail at boot rather than on its first request.
 */
export function createAssertionVerifier(options: AssertionVerifierOptions): AssertionVerifier {
  const { audience, algorithm } = options
  if (typeof audience !== 'string' || audience === '') throw misuse('audience', 'is required')
  const issuer = options.issuer ?? 'kong'
  if (!(ASSERTION_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw misuse('algorithm', `must be one of ${ASSERTION_ALGORITHMS.join(', ')}`)
  }
  const clockTolerance = options.clockTolerance ?? 5
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0 || clockTolerance > 60) {
    throw misuse('clockTolerance', 'must be between 0 and 60 seconds')
  }
  const maxAge = options.maxAge ?? 60
  if (!Number.isFinite(maxAge) || maxAge < 1 || maxAge > 600) {
    throw misuse('maxAge', 'must be between 1 and 600 seconds')
  }
  const header = (options.header ?? DEFAULT_ASSERTION_HEADER).toLowerCase()
  if (!/^[a-z0-9-]+$/.test(header)) throw misuse('header', 'must be a header name')
  const allowAnonymous = options.allowAnonymous ?? false
  if (typeof allowAnonymous !== 'boolean') throw misuse('allowAnonymous', 'must be a boolean')

  // The secret (HS256) or the public key, as the verifier imports it.
  let material: Uint8Array | KeyObject
  if ((options.secret === undefined) === (options.publicKey === undefined)) {
    throw misuse('secret', 'or "publicKey" must be given, not both')
  }
  if (algorithm === 'HS256') {
    if (options.secret === undefined) throw misuse('secret', 'is required for HS256')
    const secret =
      typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret
    if (secret.length < MIN_ASSERTION_SECRET_BYTES) {
      throw misuse('secret', `must be at least ${MIN_ASSERTION_SECRET_BYTES} bytes`)
    }
    material = secret
  } else {
    if (options.publicKey === undefined) throw misuse('publicKey', `is required for ${algorithm}`)
    let publicKey: KeyObject
    try {
      publicKey =
        typeof options.publicKey === 'string'
          ? createPublicKey(options.publicKey)
          : options.publicKey.type === 'private'
            ? createPublicKey(options.publicKey)
            : options.publicKey
    } catch (cause) {
      throw misuse('publicKey', `is not a PEM key (${String(cause)})`)
    }
    const fit = algorithmOfKey(publicKey)
    if (fit.algorithm !== algorithm) {
      throw misuse(
        'publicKey',
        `does not fit ${algorithm} (${fit.problem ?? `an ${fit.algorithm} key`})`,
      )
    }
    material = publicKey
  }
  const key = importAssertionKey(algorithm, material, 'verify').catch((error: unknown) =>
    error instanceof Error ? error : new Error(String(error)),
  )
  const now = options.now ?? Date.now

  return {
    header,
    async verify(request: IncomingFacts): Promise<GatewayCaller> {
      const raw = request.headers[header]
      if (raw === undefined || raw === '' || (Array.isArray(raw) && raw.length === 0)) {
        throw new GatewayAssertionError('ERR_ASSERTION_MISSING', `no ${header} header`)
      }
      if (typeof raw !== 'string') {
        throw new GatewayAssertionError('ERR_ASSERTION_INVALID', `several ${header} headers`)
      }
      const k = await key
      if (k instanceof Error) {
        throw new GatewayAssertionError('ERR_INTERNAL', `key import failed: ${k.message}`, {
          cause: k,
        })
      }
      let payload: JWTPayload
      try {
        payload = (
          await jwtVerify(raw, k, {
            algorithms: [algorithm],
            issuer,
            audience,
            typ: ASSERTION_TYP,
            requiredClaims: ['iat', 'exp', 'jti'],
            maxTokenAge: maxAge,
            clockTolerance,
            currentDate: new Date(now()),
          })
        ).payload
      } catch (error) {
        // JWTExpired: exp past, or iat older than maxAge.
        const expired = error instanceof errors.JWTExpired
        throw new GatewayAssertionError(
          expired ? 'ERR_ASSERTION_EXPIRED' : 'ERR_ASSERTION_INVALID',
          error instanceof Error ? error.message : String(error),
          { cause: error },
        )
      }
      const caller = callerOf(payload)
      const url = request.url ?? '/'
      const q = url.search(/[?#]/)
      const path = q < 0 ? url : url.slice(0, q)
      if (payload['method'] !== request.method) {
        throw new GatewayAssertionError(
          'ERR_ASSERTION_MISMATCH',
          `assertion for ${String(payload['method'])}, request is ${String(request.method)}`,
        )
      }
      if (!pathMatches(path, payload['path'] as string, options)) {
        throw new GatewayAssertionError(
          'ERR_ASSERTION_MISMATCH',
          `assertion for ${String(payload['path']).slice(0, 200)}, request is ${path.slice(0, 200)}`,
        )
      }
      if (caller.anonymous && !allowAnonymous) {
        throw new GatewayAssertionError(
          'ERR_ASSERTION_ANONYMOUS',
          `the gateway let consumer ${caller.consumer.id} through as anonymous; allowAnonymous is off`,
        )
      }
      return caller
    },
  }
}

/** The caller stated by a verified payload; a payload not shaped as ours is invalid. */
function callerOf(payload: JWTPayload): GatewayCaller {
  // Any JSON value, or absent: only an object's id and username are read.
  const consumer = payload['consumer'] as
    { id?: unknown; username?: unknown } | string | number | boolean | null | undefined
  const scope = payload['scope']
  if (
    typeof consumer !== 'object' ||
    consumer === null ||
    typeof consumer.id !== 'string' ||
    (consumer.username !== undefined && typeof consumer.username !== 'string') ||
    typeof payload['method'] !== 'string' ||
    typeof payload['path'] !== 'string' ||
    typeof payload.jti !== 'string' ||
    (scope !== undefined && typeof scope !== 'string') ||
    (payload.sub !== undefined && typeof payload.sub !== 'string') ||
    (payload['credential'] !== undefined && typeof payload['credential'] !== 'string')
  ) {
    throw new GatewayAssertionError('ERR_ASSERTION_INVALID', 'claims not shaped as an assertion')
  }
  return Object.freeze({
    consumer: Object.freeze({ id: consumer.id, username: stringOrUndefined(consumer.username) }),
    credential: stringOrUndefined(payload['credential']),
    subject: payload.sub,
    scopes: Object.freeze(
      typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [],
    ),
    anonymous: payload['anonymous'] === true,
    assertionId: payload.jti,
  })
}

/** Whether the caller holds every one of `scopes` (exact names). */
export function hasScopes(caller: GatewayCaller, scopes: readonly string[]): boolean {
  return scopes.every((s) => caller.scopes.includes(s))
}

/**
 * The scopes a requireScope guard was given, checked when the guard is built: at least one (a
 * guard requiring nothing would pass every caller), each a scope token (RFC 6749 §3.3: no
 * spaces, which could never match). `guard` names the function in the TypeError.
 */
export function requiredScopes(guard: string, scopes: readonly unknown[]): readonly string[] {
  if (scopes.length === 0) {
    throw new TypeError(`${guard}() needs at least one scope (without one it would pass anyone)`)
  }
  for (const s of scopes) {
    if (typeof s !== 'string' || !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s)) {
      const shown = typeof s === 'string' ? JSON.stringify(s) : String(s)
      throw new TypeError(`${guard}(): ${shown} is not a scope token`)
    }
  }
  return Object.freeze([...(scopes as string[])])
}

/**
 * The one scope decision of both adapters: undefined when `caller` may go on, else the refusal
 * to write (401 ERR_ASSERTION_MISSING without a verified caller, 403 ERR_SCOPE_INSUFFICIENT when
 * any of `scopes` is missing).
 */
export function scopeRefusal(
  caller: GatewayCaller | undefined,
  scopes: readonly string[],
): GatewayAssertionError | undefined {
  if (caller === undefined) {
    return new GatewayAssertionError('ERR_ASSERTION_MISSING', 'no verified caller')
  }
  if (!hasScopes(caller, scopes)) {
    return new GatewayAssertionError('ERR_SCOPE_INSUFFICIENT', scopes.join(' '))
  }
  return undefined
}

/** A refusal for anything a verification threw (not a GatewayAssertionError: a 500). */
export function refusalOf(error: unknown): GatewayAssertionError {
  return error instanceof GatewayAssertionError
    ? error
    : new GatewayAssertionError('ERR_INTERNAL', String(error), { cause: error })
}
