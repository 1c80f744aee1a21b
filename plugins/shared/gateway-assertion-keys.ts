/**
 * The keys of the gateway assertion, for both sides: which algorithm a key signs with, and the
 * one-time import of a key into Web Crypto. consumer-jwt signs with them (private key or
 * secret), the middleware verifies (public key or the same secret); keeping the rules here means
 * the two sides cannot drift apart on which keys they accept.
 */
import { webcrypto, type KeyObject } from 'node:crypto'
import { importPKCS8, importSPKI } from 'jose'
import type { AssertionAlgorithm } from './gateway-assertion'

/** HS256 secrets shorter than the hash output are refused (RFC 7518 §3.2). */
export const MIN_ASSERTION_SECRET_BYTES = 32

/** RSA keys below this modulus length are refused (RFC 7518 §3.3). */
export const MIN_ASSERTION_RSA_BITS = 2048

/** The algorithms of a key pair (HS256 takes a secret). */
export type AssertionKeyAlgorithm = Exclude<AssertionAlgorithm, 'HS256'>

/** The algorithm a key signs with, or why it signs none of ours. */
export type AssertionKeyFit =
  | { readonly algorithm: AssertionKeyAlgorithm; readonly problem?: undefined }
  | { readonly algorithm?: undefined; readonly problem: string }

/**
 * The algorithm an asymmetric key (private or public: a key pair signs and verifies with the
 * same one) is for: Ed25519 → EdDSA, EC P-256 → ES256, RSA of 2048 bits or more → RS256.
 * Anything else gets a `problem`, a sentence the caller prefixes with the setting's name.
 */
export function algorithmOfKey(key: KeyObject): AssertionKeyFit {
  const type = key.asymmetricKeyType
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (type === 'ed25519') return { algorithm: 'EdDSA' }
  if (type === 'ec' && curve === 'prime256v1') return { algorithm: 'ES256' }
  if (type === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_ASSERTION_RSA_BITS) {
      return { problem: `an RSA key must have ${MIN_ASSERTION_RSA_BITS} bits or more` }
    }
    return { algorithm: 'RS256' }
  }
  const on = type === 'ec' ? ` on ${curve ?? 'an unknown curve'}` : ''
  return {
    problem: `a ${type ?? 'unknown'} key${on} signs none of EdDSA (Ed25519), ES256 (P-256), RS256`,
  }
}

/** A key as jose signs and verifies with it. */
export type AssertionCryptoKey = Awaited<ReturnType<typeof importSPKI>>

/**
 * Imports an assertion key once (jose would import a raw secret on every call): the HS256
 * secret for `use`, or a key of a pair, private to sign and public to verify. The key is
 * expected to fit `algorithm` already (see algorithmOfKey); a key of the wrong kind for `use`
 * rejects with a TypeError.
 */
export async function importAssertionKey(
  algorithm: AssertionAlgorithm,
  key: Uint8Array | KeyObject,
  use: 'sign' | 'verify',
): Promise<AssertionCryptoKey> {
  if (key instanceof Uint8Array) {
    if (algorithm !== 'HS256') throw new TypeError(`a secret signs HS256, not ${algorithm}`)
    return await webcrypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, [
      use,
    ])
  }
  if (algorithm === 'HS256') throw new TypeError('HS256 takes a secret, not a key of a pair')
  if (use === 'sign') {
    if (key.type !== 'private') throw new TypeError('signing needs the private key')
    return importPKCS8(key.export({ type: 'pkcs8', format: 'pem' }).toString(), algorithm)
  }
  if (key.type !== 'public') throw new TypeError('verifying takes the public key')
  return importSPKI(key.export({ type: 'spki', format: 'pem' }).toString(), algorithm)
}
