import type { PluginError } from '../errors'

/** What names a field in a refusal: a record reader (schema/read.ts). */
interface Names {
  invalid(name: string, why: string): PluginError
}

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

/**
 * The bytes of an HMAC secret written as `secret` or held by the environment variable
 * `secret_env` names (of the plugin server: nginx passes only what `nginx_main_env` declares).
 * At least 32 bytes (RFC 7518 §3.2: as long as the hash output), never an unresolved vault
 * reference. `decode` turns the text into bytes (UTF-8 unless the setting says base64).
 * @throws PluginError ERR_CONFIG_INVALID naming `secret` or `secret_env` of `r`.
 */
export function readSecret(
  r: Names,
  secret: string | undefined,
  secretEnv: string | undefined,
  env: NodeJS.ProcessEnv,
  decode: (text: string) => Uint8Array = utf8,
): Uint8Array {
  let value = secret
  if (secretEnv !== undefined) {
    value = env[secretEnv]
    if (value === undefined || value === '') {
      throw r.invalid('secret_env', `environment variable ${secretEnv} is not set`)
    }
  }
  if (value === undefined || value === '') throw r.invalid('secret', 'must not be empty')
  if (value.startsWith('{vault://')) {
    throw r.invalid('secret', 'is an unresolved vault reference (is the vault configured in Kong?)')
  }
  const bytes = decode(value)
  if (bytes.length < 32) throw r.invalid('secret', 'must be at least 32 bytes (RFC 7518 §3.2)')
  return bytes
}
