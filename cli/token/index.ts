import type { Command } from 'commander'
import type { CliIO } from '../common'
import { inspect, type InspectOpts } from './inspect'
import { mint, type MintOpts } from './mint'

/**
 * `kong-jwt-toolkit token …`: dev tokens for the consumers of a kong.yml, and what consumer-jwt
 * would say about a token. Both read the credentials with the plugin's own config parser and
 * check tokens with its own verification steps (see verdicts.ts).
 */

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

export function registerToken(program: Command, io: CliIO): void {
  const token = program
    .command('token')
    .description('Mint dev tokens for kong.yml consumers, and inspect tokens against consumer-jwt')

  token
    .command('mint')
    .description(
      'Sign a dev token for a consumer of kong.yml (checked against its consumer-jwt credential), or from a key alone',
    )
    .option('--config <kong.yml>', 'the declarative config holding the consumer-jwt credentials')
    .option('--consumer <name>', 'with --config: the consumer (username or id) the token is for')
    .option('--credential <key>', 'with --config: which credential, when the consumer has several')
    .option(
      '--route <name>',
      'with --config: which consumer-jwt, when they verify the credential differently',
    )
    .option(
      '--key <file>',
      "signing key: a PEM private key, a private JWK (or JWK set), or a text file holding an HS secret; default with --config: the credential's HS secret (secret, secret_env or {vault://env/…})",
    )
    .option(
      '--alg <alg>',
      "signature algorithm (default: the credential's first one the key can sign)",
    )
    .option('--iss <iss>', 'without --config: the issuer')
    .option('--sub <sub>', 'subject (default with --config: dev:<consumer>)')
    .option(
      '--aud <aud>',
      "audience, repeatable (default: the credential's first audience)",
      collect,
    )
    .option(
      '--scope <scopes...>',
      "scopes, space-separated or repeated (default with --config: the consumer's whole scope_ceiling)",
    )
    .option('--ttl <duration>', 'lifetime, e.g. 90s, 5m, 1h (default 5m, at most maximum_lifetime)')
    .option(
      '--claim <name=value>',
      'extra claim, repeatable; a JSON value is taken as JSON',
      collect,
      [],
    )
    .option(
      '--kid <kid>',
      'key id header (default: the kid of the key file or of the matching key in the credential JWKS)',
    )
    .option('--fetch', "with --config: fetch the credential's jwks_uri to check the signature")
    .option('--force', 'mint even when consumer-jwt would refuse the token (to test refusals)')
    .addHelpText(
      'after',
      `
The token goes to stdout, a summary to stderr. With --config, the token gets the credential's
key claim and issuer, its first audience, a sub, a jti, iat and exp, and is checked with
consumer-jwt's own verification before it is printed: scopes above the consumer's
scope_ceiling, a --ttl above maximum_lifetime, an alg the credential does not allow or a key
that does not match are refused unless --force.

Examples:
  kong-jwt-toolkit token mint --config kong.yml --consumer web-app --key web-app.private.pem --scope orders:read
  PARTNER_GLOBEX_SECRET=… kong-jwt-toolkit token mint --config kong.yml --consumer partner-globex
  kong-jwt-toolkit token mint --key private.pem --iss https://issuer.example --aud api --ttl 1h`,
    )
    .action(async (opts: MintOpts) => {
      await mint(opts, io)
    })

  token
    .command('inspect')
    .description(
      'Decode a token (not verified); with --config, show each check consumer-jwt makes and the error code it would answer',
    )
    .argument('<token>', 'the JWT (a leading "Bearer " is ignored)')
    .option('--config <kong.yml>', 'check the token against the consumer-jwt plugins of this file')
    .option(
      '--fetch',
      "fetch a credential's jwks_uri to check the signature (otherwise: not fetched)",
    )
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Checks, in consumer-jwt's order: the credential its key claim selects, the algorithm, the
signature (inline public keys, JWKS and secrets resolvable here; a jwks_uri only with --fetch),
typ, required claims, issuer, audience, exp/nbf with leeway, iat, the lifetime cap, the scope
ceiling. Exit code 1 when a check fails, 2 when the token cannot be decoded.`,
    )
    .action(async function (this: Command, jwt: string, opts: InspectOpts) {
      this.setOptionValue('__exitCode', await inspect(jwt, opts, io))
    })
}
