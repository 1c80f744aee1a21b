import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose'
import { CliError, EXIT } from '../common'

/** A key that signs: a private key, or an HMAC secret. */
export type SigningKey =
  | {
      readonly kind: 'private'
      readonly key: KeyObject
      readonly kid?: string
      readonly alg?: string
    }
  | {
      readonly kind: 'secret'
      readonly secret: Uint8Array
      readonly kid?: string
      readonly alg?: string
    }

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

function fromJwk(jwk: Record<string, unknown>, path: string): SigningKey {
  const kid = typeof jwk.kid === 'string' ? jwk.kid : undefined
  const alg = typeof jwk.alg === 'string' ? jwk.alg : undefined
  if (jwk.kty === 'oct') {
    if (typeof jwk.k !== 'string')
      throw new CliError(`--key ${path}: an oct JWK without k`, EXIT.USAGE)
    return { kind: 'secret', secret: new Uint8Array(Buffer.from(jwk.k, 'base64url')), kid, alg }
  }
  if (jwk.d === undefined)
    throw new CliError(
      `--key ${path}: a public JWK; a token is signed with the private key (with "d")`,
      EXIT.USAGE,
    )
  try {
    return {
      kind: 'private',
      key: createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }),
      kid,
      alg,
    }
  } catch (error) {
    throw new CliError(
      `--key ${path}: not a usable private JWK (${(error as Error).message})`,
      EXIT.USAGE,
    )
  }
}

/**
 * Reads `--key`: a PEM private key (PKCS#8, PKCS#1 or SEC1), a private JWK or a JWK set holding
 * one, an oct JWK, or else the file's text as an HMAC secret (decoded as `secretIsBase64` says).
 */
export function readSigningKey(path: string, secretIsBase64 = false): SigningKey {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(error)
    throw new CliError(`--key ${path}: cannot read it (${why})`, EXIT.USAGE)
  }
  const trimmed = text.trim()
  if (trimmed.startsWith('-----BEGIN')) {
    if (/-----BEGIN (RSA )?PUBLIC KEY-----|-----BEGIN CERTIFICATE-----/.test(trimmed))
      throw new CliError(
        `--key ${path}: a public key; a token is signed with the private key`,
        EXIT.USAGE,
      )
    try {
      return { kind: 'private', key: createPrivateKey(trimmed) }
    } catch (error) {
      throw new CliError(
        `--key ${path}: not a readable PEM private key (${(error as Error).message})`,
        EXIT.USAGE,
      )
    }
  }
  if (trimmed.startsWith('{')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(trimmed)
    } catch {
      throw new CliError(`--key ${path}: starts like JSON but is not valid JSON`, EXIT.USAGE)
    }
    if (isRecord(parsed) && Array.isArray(parsed.keys)) {
      const privates = parsed.keys.filter(
        (k) => isRecord(k) && (k.d !== undefined || k.kty === 'oct'),
      )
      if (privates.length !== 1)
        throw new CliError(
          `--key ${path}: a JWK set with ${privates.length} private keys; give a file with exactly one`,
          EXIT.USAGE,
        )
      return fromJwk(privates[0] as Record<string, unknown>, path)
    }
    if (isRecord(parsed) && typeof parsed.kty === 'string') return fromJwk(parsed, path)
    throw new CliError(`--key ${path}: JSON, but neither a JWK nor a JWK set`, EXIT.USAGE)
  }
  if (trimmed === '') throw new CliError(`--key ${path}: empty`, EXIT.USAGE)
  const secret = secretIsBase64
    ? new Uint8Array(Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64'))
    : new TextEncoder().encode(trimmed)
  return { kind: 'secret', secret }
}

/** The JWS algorithms a key can sign with, most common first. */
export function algorithmsFor(key: SigningKey): string[] {
  if (key.kind === 'secret') return ['HS256', 'HS384', 'HS512']
  const k = key.key
  switch (k.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512']
    case 'ec': {
      const curve = k.asymmetricKeyDetails?.namedCurve
      const alg = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' }[curve ?? '']
      return alg === undefined ? [] : [alg]
    }
    case 'ed25519':
      return ['EdDSA']
    default:
      return []
  }
}

/** The RFC 7638 thumbprint of the public half of a private key (to find it in a JWK set). */
export async function publicThumbprint(key: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(createPublicKey(key)))
}

/** The thumbprint of a public JWK, or undefined when it is not one jose can hash. */
export async function jwkThumbprint(jwk: JWK): Promise<string | undefined> {
  try {
    return await calculateJwkThumbprint(jwk)
  } catch {
    return undefined
  }
}
