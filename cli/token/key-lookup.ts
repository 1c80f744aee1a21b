import type { Credential } from '../../plugins/consumer-jwt/schema'
import type { Clock } from '../../plugins/shared/clock'
import { isPluginError } from '../../plugins/shared/errors'
import { importKeySource } from '../../plugins/shared/token/keys'
import type { VerifierGroup } from './consumer-credentials'
import type { KeyLookup } from './verdicts'

/**
 * The verification key of each credential as the plugin imports it (shared/token/keys.ts), or why
 * there is none here: a secret this machine does not know, or a JWKS URL not fetched (the CLI
 * fetches only when asked, then with the plugin's own fetcher and timeouts).
 */
export function keyLookup(group: VerifierGroup, fetch: boolean, clock: Clock): KeyLookup {
  const { config } = group
  return (credential: Credential) => {
    const secretWhy = group.unavailableSecrets.get(credential.key)
    if (secretWhy !== undefined) return { unavailable: `not checked: the ${secretWhy}` }
    if (credential.keySource.kind === 'jwks_uri' && !fetch) {
      return { unavailable: `not fetched: keys at ${credential.keySource.uri} (add --fetch)` }
    }
    try {
      return importKeySource(credential.keySource, {
        timeoutMs: config.jwks_timeout_ms,
        cacheTtlMs: config.jwks_cache_ttl * 1000,
        cooldownMs: config.jwks_cooldown * 1000,
        clock,
      })
    } catch (error) {
      if (!isPluginError(error)) throw error
      return { unavailable: `not checked: ${error.detail ?? error.message}` }
    }
  }
}
