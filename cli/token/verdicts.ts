import { errors, UnsecuredJWT, type JWTClaimVerificationOptions, type JWTPayload } from 'jose'
import {
  checkAlgorithm,
  checkIssuedAt,
  checkLifetime,
  checkScopeCeiling,
  decodeToken,
  selectCredential,
  verifyOptions,
  verifySignature,
} from '../../plugins/consumer-jwt/core'
import type { Config, Credential } from '../../plugins/consumer-jwt/schema'
import { CATALOGUE, isPluginError, type ErrorCode } from '../../plugins/shared/errors'
import { fromJoseError } from '../../plugins/shared/token/jose-errors'
import type { VerificationKey } from '../../plugins/shared/token/keys'

/**
 * What consumer-jwt would say about a token, check by check, each with the catalogue code the
 * plugin answers when it fails. Every check is the plugin's own code (plugins/consumer-jwt/core.ts,
 * the options it gives jose, and its jose-error mapping), run one at a time so that one failure
 * does not hide the others. The plugin stops at the first failure, in this order.
 */

export type Status = 'pass' | 'fail' | 'skip'

export interface Verdict {
  readonly check: string
  readonly status: Status
  readonly detail: string
  /** The code the plugin answers when this check fails. */
  readonly code?: ErrorCode
}

/** The key to check the signature with, or why there is none here. */
export type KeyLookup = (
  credential: Credential,
) => VerificationKey | { readonly unavailable: string }

export interface Assessment {
  readonly verdicts: readonly Verdict[]
  readonly credential: Credential | undefined
  /** The plugin's answer: the first failed check, or undefined when none failed. */
  readonly refusal: Verdict | undefined
}

function failure(check: string, error: unknown): Verdict {
  const e = fromJoseError(error)
  if (!isPluginError(e)) throw e
  return { check, status: 'fail', detail: e.detail ?? CATALOGUE[e.code].message, code: e.code }
}

function attempt(check: string, pass: string, fn: () => void): Verdict {
  try {
    fn()
    return { check, status: 'pass', detail: pass }
  } catch (error) {
    return failure(check, error)
  }
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

/** What jose throws for a claim: which claim, and why (`missing`, `invalid`, `check_failed`). */
type ClaimFailure = errors.JWTClaimValidationFailed | errors.JWTExpired

/**
 * jose's own claim validation (what jwtVerify runs after the signature) over the token's payload,
 * with only some of the options the plugin gives it: the first claim jose finds wrong, if any.
 */
function joseClaimFailure(
  token: string,
  typ: unknown,
  options: JWTClaimVerificationOptions,
): ClaimFailure | undefined {
  const payload = token.split('.')[1] ?? ''
  const unsecured = `${b64({ alg: 'none', ...(typeof typ === 'string' ? { typ } : {}) })}.${payload}.`
  try {
    UnsecuredJWT.decode(unsecured, options)
  } catch (error) {
    if (error instanceof errors.JWTClaimValidationFailed || error instanceof errors.JWTExpired)
      return error
    throw error
  }
  return undefined
}

const iso = (s: unknown): string =>
  typeof s === 'number' && Number.isFinite(s) ? new Date(s * 1000).toISOString() : String(s)

/** Every check consumer-jwt makes, with `config`, at `nowMs`. */
export async function assess(
  token: string,
  config: Config,
  nowMs: number,
  keyFor: KeyLookup,
): Promise<Assessment> {
  const verdicts: Verdict[] = []
  const done = (credential?: Credential): Assessment => ({
    verdicts,
    credential,
    refusal: verdicts.find((v) => v.status === 'fail'),
  })

  let header
  let claims: JWTPayload
  try {
    ;({ header, claims } = decodeToken(token))
  } catch (error) {
    verdicts.push(failure('token', error))
    return done()
  }
  verdicts.push({
    check: 'token',
    status: 'pass',
    detail: 'a compact JWS with a JSON header and payload',
  })

  let credential: Credential | undefined
  const keyClaim = config.key_claim_name
  try {
    credential = selectCredential(config, header, claims)
    verdicts.push({
      check: 'credential',
      status: 'pass',
      detail: `${keyClaim}=${credential.key} selects the credential of consumer ${credential.consumer}`,
    })
  } catch (error) {
    verdicts.push(failure('credential', error))
  }

  let algOk = false
  if (credential !== undefined) {
    const c = credential
    const v = attempt(
      'algorithm',
      `${String(header.alg)} is allowed (${c.algorithms.join(', ')})`,
      () => checkAlgorithm(c, header.alg),
    )
    algOk = v.status === 'pass'
    verdicts.push(v)
  } else {
    verdicts.push({ check: 'algorithm', status: 'skip', detail: 'no credential to compare with' })
  }

  if (credential === undefined || !algOk) {
    verdicts.push({
      check: 'signature',
      status: 'skip',
      detail:
        credential === undefined ? 'no credential' : 'not tried: the algorithm is not allowed',
    })
  } else {
    const key = keyFor(credential)
    if ('unavailable' in key) {
      verdicts.push({ check: 'signature', status: 'skip', detail: key.unavailable })
    } else {
      try {
        await verifySignature(token, key, credential.algorithms)
        verdicts.push({
          check: 'signature',
          status: 'pass',
          detail: `verified (${credential.keySource.kind.replace('_', ' ')})`,
        })
      } catch (error) {
        verdicts.push(failure('signature', error))
      }
    }
  }

  // jose's claim checks with the options the plugin gives it, in jose's order: typ, presence
  // (required claims, and iss/aud when they are checked), iss, aud, then the times.
  const o = verifyOptions(config, credential ?? NO_CREDENTIAL, nowMs)
  const expected = (claim: string): string => {
    if (claim === 'iss' && o.issuer !== undefined) return `, expected ${String(o.issuer)}`
    if (claim === 'aud' && o.audience !== undefined)
      return `, expected one of ${([] as string[]).concat(o.audience).join(', ')}`
    if (claim === 'typ' && o.typ !== undefined) return `, expected ${o.typ}`
    if (claim === 'exp' || claim === 'nbf')
      return ` (${claim} ${iso(claims[claim])}, now ${new Date(nowMs).toISOString()}, leeway ${config.leeway} s)`
    return ''
  }
  const claimRow = (
    check: string,
    pass: string,
    options: JWTClaimVerificationOptions,
    owns: (e: ClaimFailure) => boolean,
    typ?: unknown,
  ): void => {
    const e = joseClaimFailure(token, typ, options)
    if (e !== undefined && owns(e)) {
      // jose's message names the claim; the values at stake make it actionable.
      const f = failure(check, e)
      const seen = e.claim === 'typ' ? header.typ : claims[e.claim]
      const value =
        e.reason === 'missing' || e.claim === 'exp' || e.claim === 'nbf'
          ? ''
          : `; the token has ${e.claim} ${JSON.stringify(seen)}`
      verdicts.push({ ...f, detail: `${f.detail}${value}${expected(e.claim)}` })
    } else if (e !== undefined && e.reason === 'missing' && options.requiredClaims === undefined)
      verdicts.push({ check, status: 'skip', detail: `no ${e.claim} (see required claims)` })
    else verdicts.push({ check, status: 'pass', detail: pass })
  }
  if (o.typ !== undefined) {
    claimRow('typ', `typ is ${o.typ}`, { typ: o.typ }, (e) => e.claim === 'typ', header.typ)
  }
  const presence = [
    ...(o.requiredClaims ?? []),
    ...(credential !== undefined && o.issuer !== undefined ? ['iss'] : []),
    ...(credential !== undefined && o.audience !== undefined ? ['aud'] : []),
  ]
  if (presence.length > 0) {
    claimRow(
      'required claims',
      `present: ${[...new Set(presence)].join(', ')}`,
      { requiredClaims: presence },
      (e) => e.reason === 'missing',
    )
  }
  if (credential === undefined) {
    verdicts.push({ check: 'issuer', status: 'skip', detail: 'no credential' })
    verdicts.push({ check: 'audience', status: 'skip', detail: 'no credential' })
  } else {
    if (o.issuer !== undefined) {
      claimRow(
        'issuer',
        `iss is ${String(o.issuer)}`,
        { issuer: o.issuer },
        (e) => e.claim === 'iss' && e.reason !== 'missing',
      )
    }
    if (o.audience !== undefined) {
      const list = ([] as string[]).concat(o.audience)
      claimRow(
        'audience',
        `aud holds one of ${list.join(', ')}`,
        { audience: list },
        (e) => e.claim === 'aud' && e.reason !== 'missing',
      )
    }
  }
  claimRow(
    'exp/nbf',
    `valid at ${new Date(nowMs).toISOString()} with ${config.leeway} s leeway${typeof claims.exp === 'number' ? ` (exp ${iso(claims.exp)})` : ''}`,
    { currentDate: o.currentDate, clockTolerance: o.clockTolerance },
    (e) => ['exp', 'nbf', 'iat'].includes(e.claim),
  )
  verdicts.push(
    attempt(
      'iat',
      typeof claims.iat === 'number' ? `issued ${iso(claims.iat)}, not in the future` : 'no iat',
      () => checkIssuedAt(config, claims, Math.floor(nowMs / 1000)),
    ),
  )
  if (config.maximum_lifetime > 0) {
    const life =
      typeof claims.exp === 'number' && typeof claims.iat === 'number'
        ? claims.exp - claims.iat
        : undefined
    verdicts.push(
      attempt(
        'lifetime',
        `exp - iat = ${String(life)} s, within ${config.maximum_lifetime} s`,
        () => checkLifetime(config, claims),
      ),
    )
  }
  if (credential === undefined) {
    verdicts.push({ check: 'scope ceiling', status: 'skip', detail: 'no credential' })
  } else {
    const c = credential
    verdicts.push(
      attempt(
        'scope ceiling',
        c.scopeCeiling === undefined
          ? 'no ceiling for this consumer'
          : `within ${[...c.scopeCeiling].join(' ')}`,
        () => checkScopeCeiling(claims, c, config.scope_claims),
      ),
    )
  }
  return done(credential)
}

/** Stands for "no credential" where only the plugin-wide options are wanted. */
const NO_CREDENTIAL: Credential = {
  id: '',
  key: '',
  consumer: '',
  issuer: undefined,
  algorithms: [],
  keySource: { kind: 'jwks', jwks: { keys: [] } },
  audiences: undefined,
  scopeCeiling: undefined,
}
