import {
  compactVerify,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyOptions,
  type ProtectedHeaderParameters,
} from 'jose'
import { nowSeconds, type Clock } from '../shared/clock'
import { PluginError } from '../shared/errors'
import type { HeaderPatch, KongConsumer, KongCredential } from '../shared/pdk/port'
import { claimAt, readScopes, readScopesStrict } from '../shared/scopes/parse'
import type { TokenOrigin } from '../shared/token/extract'
import { fromJoseError } from '../shared/token/jose-errors'
import { findDuplicateKey } from '../shared/token/json-duplicates'
import type { VerificationKey } from '../shared/token/keys'
import type { Config, Credential } from './schema'

export interface Verified {
  readonly token: string
  readonly credential: Credential
  readonly header: ProtectedHeaderParameters
  readonly claims: JWTPayload
}

export interface VerifierDeps {
  readonly clock: Clock
  /** The imported key of a credential (imported once; see shared/token/keys.ts). */
  readonly keyFor: (credential: Credential) => VerificationKey
}

/** A bounded LRU of verified tokens; an entry never outlives its token's exp. */
class TokenCache {
  readonly #entries = new Map<string, { verified: Verified; expiresAtMs: number }>()
  constructor(readonly max: number) {}

  get(token: string, nowMs: number): Verified | undefined {
    const entry = this.#entries.get(token)
    if (entry === undefined) return undefined
    this.#entries.delete(token)
    if (entry.expiresAtMs <= nowMs) return undefined
    this.#entries.set(token, entry)
    return entry.verified
  }

  set(token: string, verified: Verified, expiresAtMs: number): void {
    if (this.max === 0) return
    this.#entries.delete(token)
    this.#entries.set(token, { verified, expiresAtMs })
    while (this.#entries.size > this.max) {
      const oldest = this.#entries.keys().next().value
      if (oldest === undefined) break
      this.#entries.delete(oldest)
    }
  }

  get size(): number {
    return this.#entries.size
  }
}

/**
 * Verifies tokens against the credential their key claim selects. The algorithm is pinned
 * by the credential, never taken on the token's word; `none` never passes; HS* credentials
 * hold only secrets and the others only public keys (schema.ts), so a public key is never
 * used as an HMAC secret. Verified tokens are cached until their exp.
 */
export class TokenVerifier {
  readonly #cache: TokenCache
  constructor(
    readonly config: Config,
    readonly deps: VerifierDeps,
  ) {
    this.#cache = new TokenCache(config.token_cache_size)
  }

  get cacheSize(): number {
    return this.#cache.size
  }

  async verify(token: string): Promise<Verified> {
    const nowMs = this.deps.clock.now()
    const cached = this.#cache.get(token, nowMs)
    if (cached !== undefined) return cached

    const { header, claims } = decodeToken(token)
    const credential = selectCredential(this.config, header, claims)
    checkAlgorithm(credential, header.alg)
    const payload = await verifyWithKey(
      token,
      this.deps.keyFor(credential),
      verifyOptions(this.config, credential, nowMs),
    )

    checkIssuedAt(this.config, payload, nowSeconds(this.deps.clock))
    checkLifetime(this.config, payload)
    checkScopeCeiling(payload, credential, this.config.scope_claims)

    const verified: Verified = { token, credential, header, claims: payload }
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY
    this.#cache.set(token, verified, exp)
    return verified
  }
}

/**
 * Longest token looked at, in characters. nginx refuses a header line over 8 kB before any
 * plugin runs (`large_client_header_buffers 4 8k`), so no token that fits a request gets near
 * it; the cap keeps a token from elsewhere (a cookie, the query) from costing unbounded
 * decoding and hashing before it is refused.
 */
export const MAX_TOKEN_LENGTH = 8192

const BASE64URL = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/
const canonical = (segment: string): boolean =>
  Buffer.from(segment, 'base64url').toString('base64url') === segment

/*
 * The checks of TokenVerifier.verify, in its order, each callable alone (the CLI's
 * `token inspect` reports every one of them with the code the plugin would answer).
 */

/** The header and claims of a compact JWS, not verified. */
export function decodeToken(token: string): {
  header: ProtectedHeaderParameters
  claims: JWTPayload
} {
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new PluginError(
      'ERR_TOKEN_MALFORMED',
      `token of ${token.length} characters, more than ${MAX_TOKEN_LENGTH}`,
    )
  }
  const parts = token.split('.')
  if (parts.length !== 3) {
    throw new PluginError('ERR_TOKEN_MALFORMED', 'not a compact JWS (three dot-separated parts)')
  }
  // base64url without padding and in its one canonical form (RFC 7515 §2): a lenient decoder
  // would let `sig=`, `sig+` or other spellings of the same signature verify, so one token
  // would have many strings (cache and deny-list keys).
  if (!BASE64URL.test(token) || !canonical(parts[2] ?? '')) {
    throw new PluginError('ERR_TOKEN_MALFORMED', 'not base64url (RFC 7515 §2)')
  }
  let decoded: { header: ProtectedHeaderParameters; claims: JWTPayload }
  try {
    decoded = { header: decodeProtectedHeader(token), claims: decodeJwt(token) }
  } catch (cause) {
    throw new PluginError(
      'ERR_TOKEN_MALFORMED',
      cause instanceof Error ? cause.message : 'undecodable',
      { cause },
    )
  }
  for (const [part, what] of [
    [parts[0], 'header'],
    [parts[1], 'claims'],
  ] as const) {
    const duplicate = findDuplicateKey(Buffer.from(part ?? '', 'base64url').toString('utf8'))
    if (duplicate !== undefined) {
      throw new PluginError(
        'ERR_TOKEN_MALFORMED',
        `the ${what} holds ${duplicate.slice(0, 50)} twice`,
      )
    }
  }
  return decoded
}

/** The credential the token's key claim (payload first, then header) names. */
export function selectCredential(
  config: Config,
  header: ProtectedHeaderParameters,
  claims: JWTPayload,
): Credential {
  const name = config.key_claim_name
  const value = claims[name] ?? (header as Record<string, unknown>)[name]
  if (typeof value !== 'string' || value === '') {
    throw new PluginError('ERR_CREDENTIAL_UNKNOWN', `no ${name} in the token payload or header`)
  }
  const credential = config.credentials.get(value)
  if (credential === undefined) {
    throw new PluginError(
      'ERR_CREDENTIAL_UNKNOWN',
      `no credential for ${name}=${value.slice(0, 200)}`,
    )
  }
  return credential
}

/** The token's alg must be one the credential pins. */
export function checkAlgorithm(credential: Credential, alg: unknown): void {
  if (typeof alg !== 'string' || !(credential.algorithms as readonly string[]).includes(alg)) {
    throw new PluginError(
      'ERR_ALGORITHM_NOT_ALLOWED',
      `alg ${String(alg)} is not one of ${credential.algorithms.join(', ')} for credential ${credential.key}`,
    )
  }
}

/** What jose checks besides the signature: times with leeway, required claims, iss, aud, typ. */
export function verifyOptions(
  config: Config,
  credential: Credential,
  nowMs: number,
): JWTVerifyOptions {
  return {
    algorithms: [...credential.algorithms],
    currentDate: new Date(nowMs),
    clockTolerance: config.leeway,
    requiredClaims: [...config.required_claims],
    ...(credential.issuer !== undefined ? { issuer: credential.issuer } : {}),
    ...(credential.audiences !== undefined && credential.audiences.length > 0
      ? { audience: [...credential.audiences] }
      : {}),
    ...(config.typ !== undefined ? { typ: config.typ } : {}),
  }
}

/**
 * iat must not be in the future: a token issued in the future would stretch the lifetime cap
 * past its intent and stay out of reach of every "revoked before" cutoff.
 */
export function checkIssuedAt(config: Config, claims: JWTPayload, nowSec: number): void {
  const { iat } = claims
  if (typeof iat === 'number' && iat > nowSec + config.leeway) {
    throw new PluginError('ERR_TOKEN_NOT_YET_VALID', `iat ${iat} is in the future`)
  }
}

/** exp - iat must stay within maximum_lifetime, when set. */
export function checkLifetime(config: Config, claims: JWTPayload): void {
  const { exp, iat } = claims
  const max = config.maximum_lifetime
  if (max === 0) return
  if (typeof exp !== 'number' || typeof iat !== 'number') {
    throw new PluginError(
      'ERR_CLAIM_MISSING',
      'exp and iat are required when maximum_lifetime is set',
    )
  }
  if (exp - iat > max) {
    throw new PluginError(
      'ERR_TOKEN_LIFETIME_EXCEEDED',
      `exp - iat = ${exp - iat} s exceeds ${max} s`,
    )
  }
}

/** The signature alone (no claim checks), with the same key handling as verification. */
export async function verifySignature(
  token: string,
  key: VerificationKey,
  algorithms: readonly string[],
): Promise<void> {
  await withEachKey(key, (k) => compactVerify(token, k, { algorithms: [...algorithms] }))
}

async function verifyWithKey(
  token: string,
  key: VerificationKey,
  options: JWTVerifyOptions,
): Promise<JWTPayload> {
  return (await withEachKey(key, (k) => jwtVerify(token, k, options))).payload
}

type JoseKey = Parameters<typeof jwtVerify>[1]

/** Runs `verify` with the key; errors become catalogue errors (shared/token/jose-errors.ts). */
async function withEachKey<T>(
  key: VerificationKey,
  verify: (key: JoseKey) => Promise<T>,
): Promise<T> {
  try {
    return await verify(key)
  } catch (error) {
    if (error instanceof errors.JWKSMultipleMatchingKeys && Symbol.asyncIterator in error) {
      // Several keys fit the token's alg/kid (e.g. a set without kids): try each.
      let last: unknown = error
      for await (const candidate of error as unknown as AsyncIterable<JoseKey>) {
        try {
          return await verify(candidate)
        } catch (e) {
          last = e
          if (!(e instanceof errors.JWSSignatureVerificationFailed)) break
        }
      }
      throw fromJoseError(last)
    }
    throw fromJoseError(error)
  }
}

/**
 * Every scope claim must be well formed (a space-delimited string or an array of scope tokens),
 * ceiling or not: the claims reach scope-acl and, through claims_to_headers, the upstream.
 */
export function checkScopeCeiling(
  claims: JWTPayload,
  credential: Credential,
  scopeClaims: readonly string[],
): void {
  const read = readScopesStrict(claims, scopeClaims)
  if (!read.ok) {
    throw new PluginError(
      'ERR_CLAIM_INVALID',
      `${read.claim}: not a space-delimited string or an array of scope tokens`,
    )
  }
  if (credential.scopeCeiling === undefined) return
  const above = [...read.scopes].filter((s) => !credential.scopeCeiling?.has(s))
  if (above.length > 0) {
    throw new PluginError(
      'ERR_SCOPE_CEILING_EXCEEDED',
      `consumer ${credential.consumer} may not hold ${above.join(' ')}`,
    )
  }
}

/** The credential handed to kong.client.authenticate, shaped like Kong's jwt_secrets rows. */
export function kongCredential(credential: Credential, consumer: KongConsumer): KongCredential {
  return {
    id: credential.id,
    consumer_id: consumer.id,
    key: credential.key,
    consumer: { id: consumer.id },
  }
}

const CLEAR: readonly string[] = []

/** A patch removing every claims_to_headers header, or undefined when none is configured. */
export function claimHeadersCleared(config: Config): HeaderPatch | undefined {
  if (config.claims_to_headers.length === 0) return undefined
  return Object.fromEntries(config.claims_to_headers.map(({ header }) => [header, CLEAR]))
}

/**
 * Header values must not carry control characters (they would break the request). Each run of
 * them becomes one space, so words a TAB or a newline separated stay apart upstream.
 */
function headerValue(value: unknown): string | undefined {
  let text: string
  if (typeof value === 'string') text = value
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value)
  else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) text = value.join(' ')
  else if (value !== undefined && value !== null) text = JSON.stringify(value)
  else return undefined
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim()
  return clean === '' ? undefined : clean
}

/**
 * A claim as a header value. A scope claim goes up as the scopes the ceiling and the scope rules
 * read from it, joined by single spaces (RFC 6749 §3.3), whatever white space separated them in
 * the token: the service must see the scopes the gateway checked, not a variant of them.
 */
function claimHeader(config: Config, claims: JWTPayload, claim: string): string | undefined {
  if (config.scope_claims.includes(claim)) {
    const scopes = [...readScopes(claims, [claim])]
    return scopes.length === 0 ? undefined : headerValue(scopes.join(' '))
  }
  return headerValue(claimAt(claims, claim))
}

/**
 * Everything the upstream must see after a successful authentication, as one
 * set_headers patch (one round trip): Kong's consumer headers like its own auth plugins set
 * them, the configured claim headers (a client's copy is always replaced or removed), and
 * with hide_credentials the token's header or cookie removed.
 */
export function upstreamHeaders(
  config: Config,
  consumer: KongConsumer,
  credential: Credential | undefined,
  claims: JWTPayload | undefined,
  hide:
    | { readonly origins: readonly TokenOrigin[]; readonly cookieHeader: string | undefined }
    | undefined,
): HeaderPatch {
  const patch: Record<string, string | readonly string[]> = {
    'X-Consumer-ID': consumer.id,
    'X-Consumer-Custom-ID': typeof consumer.custom_id === 'string' ? consumer.custom_id : CLEAR,
    'X-Consumer-Username': typeof consumer.username === 'string' ? consumer.username : CLEAR,
    'X-Credential-Identifier': credential !== undefined ? credential.key : CLEAR,
    'X-Anonymous-Consumer': credential !== undefined ? CLEAR : 'true',
  }
  for (const { claim, header } of config.claims_to_headers) {
    patch[header] = (claims === undefined ? undefined : claimHeader(config, claims, claim)) ?? CLEAR
  }
  if (hide !== undefined) {
    for (const origin of hide.origins) {
      if (origin.kind === 'header') patch[origin.name] = CLEAR
      if (origin.kind === 'cookie') patch.Cookie = hide.cookieHeader ?? CLEAR
    }
  }
  return patch
}
