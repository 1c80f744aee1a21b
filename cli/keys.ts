import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  type JWK,
} from 'jose'
import { stringify } from 'yaml'
import { CliError, EXIT, type CliIO } from './common'

/**
 * `kong-jwt-toolkit keys generate`: a new signing key for a consumer-jwt credential, with the
 * credential to paste into kong.yml. HS* secrets are random bytes as long as the hash output
 * (RFC 7518 §3.2), written base64url (`secret_is_base64: true`); key pairs are exported as PEM
 * (PKCS#8 private, SPKI public) and JWK (a private JWK, and the public JWK set to serve).
 */

const TYPES = {
  hs256: { alg: 'HS256', bytes: 32 },
  hs384: { alg: 'HS384', bytes: 48 },
  hs512: { alg: 'HS512', bytes: 64 },
  rs256: { alg: 'RS256' },
  ps256: { alg: 'PS256' },
  es256: { alg: 'ES256' },
  es384: { alg: 'ES384' },
  eddsa: { alg: 'EdDSA' },
} as const satisfies Record<string, { alg: string; bytes?: number }>
type KeyType = keyof typeof TYPES

const FORMATS = ['pem', 'jwk', 'jwks', 'all'] as const
type Format = (typeof FORMATS)[number]

interface GenerateOpts {
  type: KeyType
  kid?: string
  outDir?: string
  format: Format
  consumer?: string
  issuer?: string
  force?: boolean
}

/** One output: a file under --out-dir, or a titled block on stdout. */
interface Piece {
  readonly file: string
  readonly title: string
  readonly text: string
  readonly secret: boolean
}

/** A file name from a kid: only characters safe in a path. */
const fileBase = (kid: string): string => kid.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_')

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`

/** The consumer-jwt credential, as YAML to paste under `config.credentials`. */
function credentialSnippet(o: GenerateOpts, alg: string, key: Record<string, unknown>): string {
  const issuer = o.issuer ?? '<issuer>'
  return stringify([
    { key: issuer, issuer, consumer: o.consumer ?? '<consumer>', algorithms: [alg], ...key },
  ])
}

function writePieces(dir: string, pieces: readonly Piece[], force: boolean): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const clashes = pieces.map((p) => join(dir, p.file)).filter((f) => existsSync(f))
  if (clashes.length > 0 && !force) {
    throw new CliError(
      `${clashes.join(', ')} already exist${clashes.length === 1 ? 's' : ''}; choose another --kid or --out-dir, or --force to replace`,
      EXIT.USAGE,
    )
  }
  for (const p of pieces) {
    const path = join(dir, p.file)
    // Replace rather than rewrite: an existing file would keep its old (maybe wider) mode.
    if (existsSync(path)) unlinkSync(path)
    writeFileSync(path, p.text, { mode: p.secret ? 0o600 : 0o644, flag: 'wx' })
  }
}

async function generate(o: GenerateOpts, io: CliIO): Promise<void> {
  const spec = TYPES[o.type]
  const alg = spec.alg
  const pieces: Piece[] = []
  let snippet: string
  let kid: string
  let note: string | undefined

  if ('bytes' in spec) {
    if (o.format === 'pem' || o.format === 'jwks')
      throw new CliError(
        `--format ${o.format}: ${o.format === 'pem' ? 'an HS* secret has no PEM form' : 'an HS* secret is never published in a JWK set'}; use jwk or all`,
        EXIT.USAGE,
      )
    const secret = randomBytes(spec.bytes).toString('base64url')
    const oct: JWK = { kty: 'oct', k: secret }
    kid = o.kid ?? (await calculateJwkThumbprint(oct))
    const base = fileBase(kid)
    pieces.push({
      file: `${base}.secret`,
      title: `${alg} secret, ${spec.bytes} random bytes, base64url`,
      text: `${secret}\n`,
      secret: true,
    })
    pieces.push({
      file: `${base}.jwk.json`,
      title: 'The same secret as a JWK (kty oct)',
      text: json({ ...oct, kid, alg, use: 'sig' }),
      secret: true,
    })
    const vaultName = `${o.consumer ?? 'consumer'}-jwt-secret`
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
    const variable = vaultName.toUpperCase().replace(/-/g, '_')
    snippet = credentialSnippet(o, alg, {
      secret: `{vault://env/${vaultName}}`,
      secret_is_base64: true,
    })
    note =
      o.outDir === undefined
        ? `Kong's env vault reads the secret from ${variable}: export ${variable}=${secret}`
        : `Kong's env vault reads the secret from ${variable}: export ${variable}="$(cat ${join(o.outDir, `${base}.secret`)})"`
  } else {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
    const publicJwk = await exportJWK(publicKey)
    kid = o.kid ?? (await calculateJwkThumbprint(publicJwk))
    const base = fileBase(kid)
    const tag = { kid, alg, use: 'sig' }
    const spki = await exportSPKI(publicKey)
    const jwks = { keys: [{ ...publicJwk, ...tag }] }
    if (o.format === 'pem' || o.format === 'all') {
      pieces.push({
        file: `${base}.private.pem`,
        title: 'Private key, PKCS#8 PEM: signs tokens, keep it secret',
        text: await exportPKCS8(privateKey),
        secret: true,
      })
      pieces.push({
        file: `${base}.public.pem`,
        title: 'Public key, SPKI PEM',
        text: spki,
        secret: false,
      })
    }
    if (o.format === 'jwk' || o.format === 'all') {
      pieces.push({
        file: `${base}.private.jwk.json`,
        title: 'Private JWK: signs tokens, keep it secret',
        text: json({ ...(await exportJWK(privateKey)), ...tag }),
        secret: true,
      })
      pieces.push({
        file: `${base}.public.jwk.json`,
        title: 'Public JWK',
        text: json({ ...publicJwk, ...tag }),
        secret: false,
      })
    }
    if (o.format === 'jwks' || o.format === 'all') {
      pieces.push({
        file: `${base}.jwks.json`,
        title: 'Public JWK set: serve it at your jwks_uri, or inline it as the credential jwks',
        text: json(jwks),
        secret: false,
      })
    }
    // A PEM credential has no kid; a JWK set carries it, which lets keys rotate side by side.
    snippet = credentialSnippet(
      o,
      alg,
      o.format === 'pem' ? { public_key: spki } : { jwks: JSON.stringify(jwks) },
    )
  }

  if (o.outDir !== undefined) {
    writePieces(o.outDir, pieces, o.force === true)
    for (const p of pieces)
      io.out(`# wrote ${join(o.outDir, p.file)}${p.secret ? ' (mode 0600: private)' : ''}`)
  } else {
    for (const p of pieces) io.out(`# ${p.title}\n${p.text.trimEnd()}\n`)
  }
  io.out(`# kid: ${kid}${o.kid === undefined ? ' (RFC 7638 thumbprint)' : ''}`)
  io.out(
    `# consumer-jwt: add this credential to config.credentials in kong.yml${o.issuer === undefined || o.consumer === undefined ? ' (replace <issuer> and <consumer>; --issuer and --consumer fill them in)' : ''}`,
  )
  io.out(snippet.trimEnd())
  if (note !== undefined) io.out(`# ${note}`)
}

export function registerKeys(program: Command, io: CliIO): void {
  const keys = program.command('keys').description('Signing keys for consumer-jwt credentials')

  keys
    .command('generate')
    .description(
      'Generate an HS* secret or a key pair, and print the consumer-jwt credential to paste into kong.yml',
    )
    .addOption(
      new Option('--type <type>', 'key type: the JWS algorithm it signs with')
        .choices(Object.keys(TYPES))
        .makeOptionMandatory(),
    )
    .option('--kid <kid>', 'key id (default: the RFC 7638 thumbprint of the key)')
    .option(
      '--out-dir <dir>',
      'write the keys as files there (private ones with mode 0600) instead of printing them',
    )
    .addOption(
      new Option(
        '--format <format>',
        'pem: PKCS#8 + SPKI; jwk: private + public JWK; jwks: the public JWK set; all: every one',
      )
        .choices(FORMATS)
        .default('all'),
    )
    .option('--consumer <name>', 'the Kong consumer, filled into the credential')
    .option(
      '--issuer <iss>',
      "the tokens' issuer (iss), filled into the credential as key and issuer",
    )
    .option('--force', 'replace existing files in --out-dir')
    .addHelpText(
      'after',
      `
HS* secrets are as long as the hash (32, 48 or 64 random bytes, RFC 7518 §3.2), written
base64url; the credential says secret_is_base64: true and reads the secret through Kong's env
vault. Without --out-dir everything, private keys included, goes to stdout; with --out-dir only
file names and public material are printed.

Examples:
  kong-jwt-toolkit keys generate --type es256 --consumer web-app --issuer https://login.example.com/web
  kong-jwt-toolkit keys generate --type rs256 --kid acme-2027-01 --out-dir ./keys
  kong-jwt-toolkit keys generate --type hs256 --consumer partner-globex --issuer globex --format jwk`,
    )
    .action(async (opts: GenerateOpts) => {
      if (opts.kid !== undefined && opts.kid.trim() === '')
        throw new CliError('--kid: must not be empty', EXIT.USAGE)
      await generate(opts, io)
    })
}
