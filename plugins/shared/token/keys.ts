import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { Clock } from '../clock'
import { PluginError } from '../errors'
import { remoteJwks } from './jwks'

export type KeySource =
  | { readonly kind: 'secret'; readonly secret: Uint8Array }
  | { readonly kind: 'pem'; readonly pem: string }
  | { readonly kind: 'jwks'; readonly jwks: { readonly keys: readonly Record<string, unknown>[] } }
  | { readonly kind: 'jwks_uri'; readonly uri: string }

export interface RemoteSettings {
  readonly timeoutMs: number
  readonly cacheTtlMs: number
  readonly cooldownMs: number
  readonly clock: Clock
  readonly fetch?: typeof fetch
}

/** What jose's jwtVerify takes as its key argument. */
export type VerificationKey = KeyObject | JWTVerifyGetKey

/**
 * Imports a credential's key material once, at instance start for inline material and on
 * first use for a JWKS URL, never per request. A PEM that does not parse is a config error.
 */
export function importKeySource(source: KeySource, remote: RemoteSettings): VerificationKey {
  switch (source.kind) {
    case 'secret':
      // A KeyObject, not raw bytes: jose imports raw bytes again on every verification,
      // while it converts a KeyObject once and keeps the result.
      return createSecretKey(source.secret)
    case 'pem':
      try {
        return createPublicKey(source.pem)
      } catch (cause) {
        throw new PluginError('ERR_CONFIG_INVALID', 'public_key: not a valid PEM public key', {
          cause,
        })
      }
    case 'jwks':
      return createLocalJWKSet(source.jwks as unknown as JSONWebKeySet)
    case 'jwks_uri':
      return remoteJwks({ uri: source.uri, ...remote }).getKey
  }
}
