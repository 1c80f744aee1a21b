import { errors } from 'jose'
import { isPluginError, PluginError, type ErrorCode } from '../errors'

/**
 * Translates what jose throws while verifying a token into our catalogue, in one exhaustive
 * switch over jose's stable error codes. Anything that is not a jose error is left alone for
 * the phase boundary (it becomes ERR_INTERNAL).
 */
export function fromJoseError(error: unknown): unknown {
  if (isPluginError(error) || !(error instanceof errors.JOSEError)) return error
  const code = error.code
  let ours: ErrorCode
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      ours = 'ERR_TOKEN_EXPIRED'
      break
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      // jose raises this code only as a JWTClaimValidationFailed, which names the claim and why.
      if (!(error instanceof errors.JWTClaimValidationFailed)) {
        ours = 'ERR_CLAIM_INVALID'
        break
      }
      const { claim, reason } = error
      if (reason === 'missing') ours = 'ERR_CLAIM_MISSING'
      // A time claim of the wrong type (`"nbf": "1800000000"`) is a bad claim, not a token
      // used too early.
      else if (reason === 'invalid') ours = 'ERR_CLAIM_INVALID'
      else if (claim === 'nbf') ours = 'ERR_TOKEN_NOT_YET_VALID'
      else if (claim === 'iss') ours = 'ERR_ISSUER_INVALID'
      else if (claim === 'aud') ours = 'ERR_AUDIENCE_INVALID'
      else if (claim === 'typ') ours = 'ERR_TYP_INVALID'
      else ours = 'ERR_CLAIM_INVALID'
      return new PluginError(ours, `${claim} ${reason}: ${error.message}`, { cause: error })
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      ours = 'ERR_SIGNATURE_INVALID'
      break
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      ours = 'ERR_ALGORITHM_NOT_ALLOWED'
      break
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JWE_INVALID':
    case 'ERR_JWE_DECRYPTION_FAILED':
      ours = 'ERR_TOKEN_MALFORMED'
      break
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      ours = 'ERR_CREDENTIAL_UNKNOWN'
      break
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      ours = 'ERR_KEY_SOURCE_UNAVAILABLE'
      break
    case 'ERR_JWK_INVALID':
    case 'ERR_JOSE_GENERIC':
      ours = 'ERR_INTERNAL'
      break
    default:
      ours = 'ERR_INTERNAL'
  }
  return new PluginError(ours, error.message, { cause: error })
}
