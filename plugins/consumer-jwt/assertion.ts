import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'
import { nowSeconds, type Clock } from '../shared/clock'
import { PluginError } from '../shared/errors'
import {
  ASSERTION_ALGORITHMS,
  ASSERTION_TYP,
  DEFAULT_ASSERTION_HEADER,
  parseRequestLine,
  type AssertionAlgorithm,
  type AssertionClaims,
} from '../shared/gateway-assertion'
import {
  algorithmOfKey as algorithmOfAssertionKey,
  importAssertionKey,
  type AssertionCryptoKey,
} from '../shared/gateway-assertion-keys'
import type { HeaderPatch, KongConsumer, Pdk } from '../shared/pdk/port'
import { isUnset, recordOf, type KongField, type RecordField } from '../shared/schema/kong-fields'
import { invalid, readRecord, type Raw } from '../shared/schema/read'
import { readSecret } from '../shared/schema/secret'
import { RESERVED_HEADER } from '../shared/reserved-headers'

/**
 * consumer-jwt's `assertion` setting: a short-lived signed statement, sent upstream with the
 * identity headers, that this request passed the gateway's checks (see middleware/ for the
 * service side and plugins/shared/gateway-assertion.ts for the claims).
 */

export const DEFAULT_ASSERTION_LIFETIME = 30
export const MAX_ASSERTION_LIFETIME = 300
const DEFAULT_ISSUER = 'kong'

/**
 * The record's fields carry no defaults (Kong fills a record even when unset; an assertion is
 * on exactly when something was written in it) and the parser applies the documented ones.
 */
const assertionFields = {
  audience: {
    type: 'string',
    description:
      'Required. The aud of every assertion: the service (or group of services) it is for. The middleware refuses any other audience.',
  },
  issuer: {
    type: 'string',
    description: 'The iss of every assertion, pinned by the middleware. Default: kong.',
  },
  secret: {
    type: 'string',
    referenceable: true,
    encrypted: true,
    description:
      'Shared secret (HS256, at least 32 bytes) the services also hold. Prefer a vault reference such as {vault://env/assertion-secret} or secret_env.',
  },
  secret_env: {
    type: 'string',
    description:
      'Name of an environment variable of the plugin server holding the HS256 secret (declare it with nginx_main_env in kong.conf).',
  },
  private_key: {
    type: 'string',
    referenceable: true,
    encrypted: true,
    description:
      'PEM private key (Ed25519, EC P-256 or RSA of 2048 bits or more) for EdDSA, ES256 or RS256; services verify with its public key.',
  },
  algorithm: {
    type: 'string',
    one_of: ASSERTION_ALGORITHMS,
    description:
      'Signature algorithm. Default: HS256 for a secret, the key type (EdDSA, ES256, RS256) for a private key; when set it must fit the key.',
  },
  key_id: {
    type: 'string',
    description: 'kid header of every assertion, for services that hold several keys.',
  },
  lifetime: {
    type: 'integer',
    between: [1, MAX_ASSERTION_LIFETIME],
    description: `Seconds an assertion stays valid (exp - iat). Default: ${DEFAULT_ASSERTION_LIFETIME}.`,
  },
  header: {
    type: 'string',
    match: '^[%w%-]+$',
    description: `Upstream request header carrying the assertion (a client's copy is always removed). Default: ${DEFAULT_ASSERTION_HEADER}.`,
  },
} as const satisfies Record<string, KongField>

export const assertionField = {
  type: 'record',
  fields: recordOf(assertionFields),
  description:
    'A signed assertion sent upstream with the identity headers, so a service can tell a request that passed this plugin from forged X-Consumer-* headers (verify it with kong-jwt-toolkit/middleware). Off unless set. One more call per allowed request (the request line).',
} as const satisfies RecordField

export type AssertionKey =
  | { readonly kind: 'secret'; readonly secret: Uint8Array }
  | { readonly kind: 'private_key'; readonly pkcs8: string }

export interface AssertionConfig {
  readonly audience: string
  readonly issuer: string
  readonly algorithm: AssertionAlgorithm
  readonly key: AssertionKey
  readonly key_id: string | undefined
  readonly lifetime: number
  readonly header: string
}

/** The algorithm a private key signs with, checked against an explicit setting. */
function algorithmOfKey(key: KeyObject, given: AssertionAlgorithm | undefined): AssertionAlgorithm {
  const fit = algorithmOfAssertionKey(key)
  if (fit.algorithm === undefined) throw invalid('assertion.private_key', fit.problem)
  if (given !== undefined && given !== fit.algorithm) {
    throw invalid('assertion.algorithm', `${given} does not fit the private key (${fit.algorithm})`)
  }
  return fit.algorithm
}

/**
 * The `assertion` setting, or undefined when nothing was written in it. Checks everything a
 * request would otherwise find out: the key parses and fits the algorithm, the secret is long
 * enough, the header collides with no other. Throws ERR_CONFIG_INVALID naming the field.
 */
export function parseAssertion(config: Raw, env: NodeJS.ProcessEnv): AssertionConfig | undefined {
  const value = config['assertion']
  if (isUnset(value)) return undefined
  const r = readRecord(value, assertionFields, 'assertion')

  const audience = r.read('audience')
  if (audience === undefined || audience === '') {
    throw r.invalid('audience', 'is required: the service (or services) the assertion is for')
  }
  const issuer = r.read('issuer') ?? DEFAULT_ISSUER
  if (issuer === '') throw r.invalid('issuer', 'must not be empty')
  const algorithm = r.read('algorithm')
  const lifetime = r.read('lifetime') ?? DEFAULT_ASSERTION_LIFETIME

  const header =
    r.read('header', { pattern: 'a header name (letters, digits, -)' }) ?? DEFAULT_ASSERTION_HEADER
  if (RESERVED_HEADER.test(header)) {
    throw r.invalid('header', `${header} is reserved (identity, credentials, proxy or framing)`)
  }
  const mappings = Array.isArray(config['claims_to_headers']) ? config['claims_to_headers'] : []
  for (const m of mappings as unknown[]) {
    const other = (m as { header?: unknown } | null)?.header
    if (typeof other === 'string' && other.toLowerCase() === header.toLowerCase()) {
      throw r.invalid('header', `${header} is also a claims_to_headers header`)
    }
  }

  const secret = r.read('secret')
  const secretEnv = r.read('secret_env')
  const privateKey = r.read('private_key')
  const given = [
    ['secret', secret],
    ['secret_env', secretEnv],
    ['private_key', privateKey],
  ].filter(([, v]) => v !== undefined)
  if (given.length !== 1) {
    throw r.invalid(
      'secret',
      `exactly one of secret, secret_env, private_key must be set (got ${given.length === 0 ? 'none' : given.map(([n]) => n).join(', ')})`,
    )
  }

  let key: AssertionKey
  let alg: AssertionAlgorithm
  if (privateKey !== undefined) {
    if (privateKey.startsWith('{vault://')) {
      throw r.invalid('private_key', 'is an unresolved vault reference (is the vault configured?)')
    }
    let keyObject: KeyObject
    try {
      keyObject = createPrivateKey(privateKey)
    } catch {
      throw r.invalid('private_key', 'is not a PEM private key')
    }
    alg = algorithmOfKey(keyObject, algorithm)
    key = {
      kind: 'private_key',
      pkcs8: keyObject.export({ type: 'pkcs8', format: 'pem' }).toString(),
    }
  } else {
    if (algorithm !== undefined && algorithm !== 'HS256') {
      throw r.invalid('algorithm', `${algorithm} needs a private_key; a secret signs HS256`)
    }
    const bytes = readSecret(r, secret, secretEnv, env)
    key = { kind: 'secret', secret: bytes }
    alg = 'HS256'
  }

  const keyId = r.read('key_id')
  return Object.freeze({
    audience,
    issuer,
    algorithm: alg,
    key,
    key_id: keyId === '' ? undefined : keyId,
    lifetime,
    header,
  })
}

/** What an assertion states about the request, besides the settings' iss/aud/lifetime. */
export interface AssertionFacts {
  readonly consumer: KongConsumer
  /** The credential key; undefined for the anonymous consumer. */
  readonly credential: string | undefined
  readonly subject: string | undefined
  readonly scopes: Iterable<string>
  readonly method: string
  readonly path: string
}

type SigningKey = AssertionCryptoKey

/** The Web Crypto key, imported once (jose would import a raw secret on every signature). */
async function importSigningKey(config: AssertionConfig): Promise<SigningKey> {
  const key = config.key.kind === 'secret' ? config.key.secret : createPrivateKey(config.key.pkcs8)
  return importAssertionKey(config.algorithm, key, 'sign')
}

/**
 * Signs assertions for one plugin instance: the key is imported once, at construction. `sign`
 * never throws anything but a PluginError (ERR_INTERNAL), which the phase boundary answers with
 * a 500: a request whose assertion could not be signed is never proxied without one.
 */
export class AssertionSigner {
  readonly #key: Promise<SigningKey | Error>

  constructor(
    readonly config: AssertionConfig,
    private readonly clock: Clock,
  ) {
    this.#key = importSigningKey(config).catch((error: unknown) =>
      error instanceof Error ? error : new Error(String(error)),
    )
  }

  get header(): string {
    return this.config.header
  }

  /** The method and path of this request: one call (nginx's `$request`). */
  static async readRequest(pdk: Pdk): Promise<{ method: string; path: string }> {
    const line = await pdk.nginx.getVar('request')
    const parsed = parseRequestLine(line)
    if (parsed === undefined) {
      // An unset variable (undefined) reads as `undefined`, which JSON.stringify would not give.
      const shown = line === undefined ? 'undefined' : JSON.stringify(line).slice(0, 100)
      throw new PluginError('ERR_INTERNAL', `assertion: cannot read the request line (${shown})`)
    }
    return parsed
  }

  async sign(facts: AssertionFacts): Promise<string> {
    try {
      const key = await this.#key
      if (key instanceof Error) throw key
      const iat = nowSeconds(this.clock)
      const scope = [...facts.scopes].join(' ')
      const username = facts.consumer.username
      const claims: AssertionClaims = {
        iss: this.config.issuer,
        aud: this.config.audience,
        iat,
        exp: iat + this.config.lifetime,
        jti: randomUUID(),
        ...(facts.subject !== undefined ? { sub: facts.subject } : {}),
        consumer: {
          id: facts.consumer.id,
          ...(typeof username === 'string' ? { username } : {}),
        },
        ...(facts.credential !== undefined ? { credential: facts.credential } : {}),
        ...(scope !== '' ? { scope } : {}),
        ...(facts.credential === undefined ? { anonymous: true as const } : {}),
        method: facts.method,
        path: facts.path,
      }
      return await new SignJWT({ ...claims })
        .setProtectedHeader({
          alg: this.config.algorithm,
          typ: ASSERTION_TYP,
          ...(this.config.key_id !== undefined ? { kid: this.config.key_id } : {}),
        })
        .sign(key)
    } catch (error) {
      throw new PluginError(
        'ERR_INTERNAL',
        `assertion: signing failed: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      )
    }
  }

  /** A patch removing any copy of the assertion header the client sent. */
  cleared(): HeaderPatch {
    return { [this.config.header]: [] }
  }
}
