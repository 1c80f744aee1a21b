import { randomUUID } from 'node:crypto'
import { SignJWT, type JWTPayload } from 'jose'
import type { Config, Credential } from '../../plugins/consumer-jwt/schema'
import { CliError, EXIT, type CliIO } from '../common'
import { parseDuration } from '../revoke'
import { credentialOf, loadConsumerJwt, type VerifierGroup } from './consumer-credentials'
import { places } from './inspect'
import { keyLookup } from './key-lookup'
import {
  algorithmsFor,
  jwkThumbprint,
  publicThumbprint,
  readSigningKey,
  type SigningKey,
} from './signing-keys'
import { assess } from './verdicts'

export interface MintOpts {
  config?: string
  consumer?: string
  credential?: string
  route?: string
  key?: string
  alg?: string
  iss?: string
  sub?: string
  aud?: string[]
  scope?: string[]
  ttl?: string
  claim?: string[]
  kid?: string
  force?: boolean
  fetch?: boolean
}

const DEFAULT_TTL_SECONDS = 300

/** `k=v` → [k, v]; v is read as JSON when it is JSON (numbers, arrays, objects), else as text. */
export function parseClaim(text: string): [string, unknown] {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new CliError(`--claim ${text}: use name=value`, EXIT.USAGE)
  const raw = text.slice(eq + 1)
  let value: unknown = raw
  try {
    value = JSON.parse(raw)
  } catch {
    // plain text
  }
  return [text.slice(0, eq), value]
}

const scopesOf = (opt: string[] | undefined): string[] | undefined =>
  opt === undefined ? undefined : opt.flatMap((s) => s.split(/\s+/)).filter((s) => s !== '')

/** Sets `path` (dotted for nested claims, as scope_claims may be) in `payload`. */
function setClaim(payload: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.')
  let at = payload
  for (const p of parts.slice(0, -1)) {
    const next = at[p]
    at = (typeof next === 'object' && next !== null ? next : (at[p] = {})) as Record<
      string,
      unknown
    >
  }
  at[parts[parts.length - 1] as string] = value
}

/** jti, iat and exp (`ttl` seconds after `nowSec`), then the --claim values, which win. */
function addTimesAndClaims(
  payload: Record<string, unknown>,
  nowSec: number,
  ttl: number,
  claims: readonly string[] = [],
): void {
  payload.jti = randomUUID()
  payload.iat = nowSec
  payload.exp = nowSec + ttl
  for (const c of claims) {
    const [name, value] = parseClaim(c)
    setClaim(payload, name, value)
  }
}

function describeKey(key: SigningKey): string {
  if (key.kind === 'secret') return 'an HMAC secret'
  const k = key.key
  const curve = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[
    k.asymmetricKeyDetails?.namedCurve ?? ''
  ]
  const type = k.asymmetricKeyType
  if (type === 'ec') return `an EC ${curve ?? k.asymmetricKeyDetails?.namedCurve ?? ''} key`
  if (type === 'ed25519') return 'an Ed25519 key'
  if (type === 'rsa' || type === 'rsa-pss') return `an ${type.toUpperCase()} key`
  return `a ${type ?? 'unknown'} key`
}

/** The alg to sign with: --alg, else the first one both the key and `allowed` admit. */
function chooseAlg(
  key: SigningKey,
  requested: string | undefined,
  allowed: readonly string[],
): string {
  const can = algorithmsFor(key)
  if (requested !== undefined) {
    if (!can.includes(requested))
      throw new CliError(
        `--alg ${requested}: ${describeKey(key)} cannot sign it (it signs ${can.join(', ') || 'nothing usable'})`,
        EXIT.USAGE,
      )
    return requested
  }
  const preferred = key.alg !== undefined && allowed.includes(key.alg) ? key.alg : undefined
  const alg = preferred ?? allowed.find((a) => can.includes(a))
  if (alg === undefined)
    throw new CliError(
      `${describeKey(key)} cannot sign any of ${allowed.join(', ')}${allowed.length === 0 ? '' : ' (the credential algorithms)'}`,
      EXIT.USAGE,
    )
  return alg
}

/** The kid of the credential's inline JWK set that matches the private key, if any. */
async function kidInJwks(credential: Credential, key: SigningKey): Promise<string | undefined> {
  if (credential.keySource.kind !== 'jwks' || key.kind !== 'private') return undefined
  const mine = await publicThumbprint(key.key)
  for (const jwk of credential.keySource.jwks.keys) {
    if (typeof jwk.kid === 'string' && (await jwkThumbprint(jwk)) === mine) return jwk.kid
  }
  return undefined
}

/** The key the credential itself holds when it can sign: its HS secret. */
function credentialKey(credential: Credential, group: VerifierGroup): SigningKey {
  const source = credential.keySource
  if (source.kind === 'secret') {
    const why = group.unavailableSecrets.get(credential.key)
    if (why !== undefined)
      throw new CliError(
        `credential ${credential.key} (consumer ${credential.consumer}): the ${why}; or give the secret with --key <file>`,
        EXIT.USAGE,
      )
    return { kind: 'secret', secret: source.secret }
  }
  throw new CliError(
    `credential ${credential.key} (consumer ${credential.consumer}) verifies ${credential.algorithms.join(', ')} with public keys (${source.kind.replace('_', ' ')}): give the private key with --key <private.pem|jwk.json>`,
    EXIT.USAGE,
  )
}

function ttlSeconds(opts: MintOpts): number | undefined {
  if (opts.ttl === undefined) return undefined
  const ttl = parseDuration(opts.ttl, '--ttl')
  if (ttl <= 0) throw new CliError('--ttl: must be longer than 0 s', EXIT.USAGE)
  return ttl
}

async function sign(
  payload: JWTPayload,
  header: Record<string, unknown> & { alg: string },
  key: SigningKey,
): Promise<string> {
  try {
    return await new SignJWT(payload)
      .setProtectedHeader(header)
      .sign(key.kind === 'secret' ? key.secret : key.key)
  } catch (error) {
    throw new CliError(`cannot sign with ${header.alg}: ${(error as Error).message}`, EXIT.USAGE)
  }
}

const iso = (s: number): string => new Date(s * 1000).toISOString()

/** `token mint --config kong.yml --consumer <name>`: a token the consumer's credential accepts. */
async function mintForConsumer(opts: MintOpts, io: CliIO): Promise<void> {
  if (opts.consumer === undefined)
    throw new CliError('--config needs --consumer <name>: whose token to mint', EXIT.USAGE)
  if (opts.iss !== undefined)
    throw new CliError(
      '--iss comes from the credential in --config; leave it out (or use --claim iss=… --force)',
      EXIT.USAGE,
    )
  const settings = loadConsumerJwt(opts.config as string, io.env)
  const { credential, group } = credentialOf(settings, opts.consumer, {
    credentialKey: opts.credential,
    place: opts.route,
  })
  const config: Config = group.config
  const force = opts.force === true
  const problems: string[] = []

  // A secret file is read as the credential reads its secret (secret_is_base64).
  const key =
    opts.key !== undefined
      ? readSigningKey(opts.key, group.base64Secrets.has(credential.key))
      : credentialKey(credential, group)
  const alg = chooseAlg(key, opts.alg, credential.algorithms)
  if (!(credential.algorithms as readonly string[]).includes(alg))
    problems.push(
      `--alg ${alg} is not one of the credential's algorithms (${credential.algorithms.join(', ')})`,
    )

  const nowSec = Math.floor(io.now() / 1000)
  let ttl = ttlSeconds(opts)
  const cap = config.maximum_lifetime
  if (ttl === undefined) ttl = cap > 0 ? Math.min(DEFAULT_TTL_SECONDS, cap) : DEFAULT_TTL_SECONDS
  else if (cap > 0 && ttl > cap)
    problems.push(`--ttl ${ttl} s is longer than maximum_lifetime (${cap} s)`)

  const ceiling = credential.scopeCeiling
  const scopes = scopesOf(opts.scope) ?? (ceiling === undefined ? [] : [...ceiling])
  const above = ceiling === undefined ? [] : scopes.filter((s) => !ceiling.has(s))
  if (above.length > 0)
    problems.push(
      `consumer ${credential.consumer} may not hold ${above.join(' ')} (scope_ceiling: ${[...(ceiling ?? [])].join(' ')})`,
    )

  if (problems.length > 0 && !force)
    throw new CliError(
      `${problems.join('; ')}. The plugin would refuse this token; --force mints it anyway`,
      EXIT.USAGE,
    )

  const payload: Record<string, unknown> = {}
  const header: Record<string, unknown> & { alg: string } = { alg, typ: config.typ ?? 'JWT' }
  const keyClaim = config.key_claim_name
  if (keyClaim !== 'kid') payload[keyClaim] = credential.key
  if (credential.issuer !== undefined) payload.iss ??= credential.issuer
  payload.sub = opts.sub ?? `dev:${credential.consumer}`
  const aud = opts.aud ?? credential.audiences?.slice(0, 1)
  if (aud !== undefined && aud.length > 0) payload.aud = aud.length === 1 ? aud[0] : aud
  if (scopes.length > 0) setClaim(payload, config.scope_claims[0] ?? 'scope', scopes.join(' '))
  addTimesAndClaims(payload, nowSec, ttl, opts.claim)
  // With kid as the key claim, the kid names the credential; otherwise the signing key.
  if (keyClaim === 'kid' && opts.kid !== undefined && opts.kid !== credential.key)
    throw new CliError(
      `--kid ${opts.kid}: the key claim is kid, so the kid must be ${credential.key}`,
      EXIT.USAGE,
    )
  const kid =
    keyClaim === 'kid'
      ? credential.key
      : (opts.kid ?? key.kid ?? (await kidInJwks(credential, key)))
  if (kid !== undefined) header.kid = kid

  const token = await sign(payload, header, key)

  // The token as the plugin will see it: every check, with the credential's own keys.
  const result = await assess(
    token,
    config,
    io.now(),
    keyLookup(group, opts.fetch === true, { now: io.now }),
  )
  const failed = result.verdicts.filter((v) => v.status === 'fail')
  if (failed.length > 0) {
    const list = failed.map((v) => `${v.check}: ${v.detail} [${v.code ?? '?'}]`).join('; ')
    const hint = failed.some((v) => v.check === 'signature')
      ? ' (is --key the private key of this credential?)'
      : ''
    if (!force)
      throw new CliError(
        `consumer-jwt would refuse this token: ${list}${hint}; --force prints it anyway`,
        EXIT.USAGE,
      )
    io.err(`warning: consumer-jwt will refuse this token: ${list}`)
  }
  for (const v of result.verdicts.filter((r) => r.status === 'skip'))
    io.err(`note: ${v.check} ${v.detail}`)

  io.err(
    `minted for consumer ${credential.consumer} (credential ${credential.key}, consumer-jwt on ${places(group.where)}): ${alg}${kid === undefined ? '' : `, kid ${kid}`}, ${scopes.length === 0 ? 'no scope' : `scope "${scopes.join(' ')}"`}, expires ${iso(payload.exp as number)} (${ttl} s)`,
  )
  io.out(token)
}

/** `token mint --key <file> --iss <iss>`: a token without kong.yml. */
async function mintStandalone(opts: MintOpts, io: CliIO): Promise<void> {
  for (const [flag, v] of [
    ['--consumer', opts.consumer],
    ['--credential', opts.credential],
    ['--route', opts.route],
    ['--fetch', opts.fetch],
  ] as const) {
    if (v !== undefined) throw new CliError(`${flag} needs --config`, EXIT.USAGE)
  }
  if (opts.key === undefined || opts.iss === undefined)
    throw new CliError(
      'give --config and --consumer, or --key <file> and --iss <issuer>',
      EXIT.USAGE,
    )
  const key = readSigningKey(opts.key)
  const alg = chooseAlg(key, opts.alg, algorithmsFor(key))
  const nowSec = Math.floor(io.now() / 1000)
  const ttl = ttlSeconds(opts) ?? DEFAULT_TTL_SECONDS
  const payload: Record<string, unknown> = { iss: opts.iss }
  if (opts.sub !== undefined) payload.sub = opts.sub
  if (opts.aud !== undefined) payload.aud = opts.aud.length === 1 ? opts.aud[0] : opts.aud
  const scopes = scopesOf(opts.scope)
  if (scopes !== undefined && scopes.length > 0) payload.scope = scopes.join(' ')
  addTimesAndClaims(payload, nowSec, ttl, opts.claim)
  const kid = opts.kid ?? key.kid
  const token = await sign(payload, { alg, typ: 'JWT', ...(kid !== undefined ? { kid } : {}) }, key)
  io.err(
    `minted for iss ${opts.iss}: ${alg}${kid === undefined ? '' : `, kid ${kid}`}, expires ${iso(nowSec + ttl)} (${ttl} s); not checked against any kong.yml`,
  )
  io.out(token)
}

export async function mint(opts: MintOpts, io: CliIO): Promise<void> {
  if (opts.config !== undefined) await mintForConsumer(opts, io)
  else await mintStandalone(opts, io)
}
