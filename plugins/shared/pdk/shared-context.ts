import {
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from 'jose'
import { PluginError } from '../errors'
import type { Pdk } from './port'

/**
 * The contract between our plugins, and with Kong's bundled jwt plugin: the raw, already
 * verified token in `kong.ctx.shared.authenticated_jwt_token`, exactly where Kong's jwt plugin
 * puts it. consumer-jwt writes it in the same call that shares the claims, so scope-acl and
 * jwt-revocation work behind either plugin and read it with one round trip. Only an
 * authentication plugin that verified the token writes this key; readers decode it without
 * verifying again.
 */
export const VERIFIED_TOKEN_KEY = 'authenticated_jwt_token'

export interface VerifiedToken {
  readonly raw: string
  readonly header: ProtectedHeaderParameters
  readonly claims: JWTPayload
}

export async function writeVerifiedToken(pdk: Pdk, raw: string): Promise<void> {
  await pdk.ctx.set(VERIFIED_TOKEN_KEY, raw)
}

/** Decodes a token a verifier has shared; throws ERR_INTERNAL when something else wrote junk there. */
export function decodeVerifiedToken(raw: unknown): VerifiedToken | undefined {
  if (raw === undefined || raw === null) return undefined
  if (typeof raw !== 'string') {
    throw new PluginError(
      'ERR_INTERNAL',
      `${VERIFIED_TOKEN_KEY} in kong.ctx.shared is a ${typeof raw}, not a JWT`,
    )
  }
  try {
    return { raw, header: decodeProtectedHeader(raw), claims: decodeJwt(raw) }
  } catch (cause) {
    throw new PluginError(
      'ERR_INTERNAL',
      `${VERIFIED_TOKEN_KEY} in kong.ctx.shared is not a decodable JWT`,
      { cause },
    )
  }
}

/** One round trip: the verified token shared by consumer-jwt or Kong's jwt plugin, if any. */
export async function readVerifiedToken(pdk: Pdk): Promise<VerifiedToken | undefined> {
  return decodeVerifiedToken(await pdk.ctx.get(VERIFIED_TOKEN_KEY))
}
