/**
 * Bundled (Lua) plugins the emulator reproduces because the recordings use them.
 *
 * key-auth (priority 1250): enough of Kong 3.9's kong/plugins/key-auth/handler.lua to replay
 * recording 06 — key from header or query (key_names), 401 `No API key found in request` with
 * `WWW-Authenticate: Key`, 401 `Unauthorized` for an unknown key, and on success the consumer is
 * authenticated and X-Consumer-* / X-Credential-Identifier are set upstream. `anonymous` (logical
 * OR) is from reading 3.9.3's handler.lua, not recorded. `key_in_body` and `realm` are NOT
 * emulated.
 *
 * jwt (priority 1450): Kong 3.9.3's kong/plugins/jwt/{handler,jwt_parser}.lua, FROM READING THE
 * SOURCE, NOT RECORDED (no recording has the jwt plugin). See `jwt` below and emulator/README.md.
 *
 * acl (priority 950): Kong 3.9.3's kong/plugins/acl/{handler,groups}.lua, FROM READING THE
 * SOURCE, NOT RECORDED. See `acl` below and emulator/README.md.
 */
import crypto from 'node:crypto'
import type {
  AclEntity,
  ConsumerEntity,
  DeclarativeConfig,
  JwtSecret,
  KeyAuthCredential,
} from '../cli/kong/declarative-config'
import { isPlainObject, LuaError } from './lua-values'
import { consumerView, kongErrorBody } from './pdk'
import type { HeaderList, Phase, RequestContext } from './request-context'
import type { SchemaField } from '../cli/kong/schema'
import {
  ACL_FIELDS,
  BUNDLED_PRIORITIES,
  JWT_FIELDS,
  KEY_AUTH_FIELDS,
} from '../cli/kong/bundled-plugins'

function bundledPriority(name: string): number {
  const priority = BUNDLED_PRIORITIES[name]
  if (priority === undefined) throw new Error(`no priority known for bundled plugin ${name}`)
  return priority
}

export type BuiltinHandler = (
  ctx: RequestContext,
  conf: Readonly<Record<string, unknown>>,
  config: DeclarativeConfig,
) => void | Promise<void>

export interface BuiltinPlugin {
  readonly name: string
  readonly priority: number
  readonly fields: readonly SchemaField[]
  readonly handlers: Partial<Record<Phase, BuiltinHandler>>
}

function errorExit(
  ctx: RequestContext,
  status: number,
  message: string,
  extra: Record<string, string>,
): void {
  const rendered = kongErrorBody(message, ctx.id, ctx.headers.get('accept'))
  const headers = ctx.responseHeaders.clone()
  headers.set('Content-Type', [rendered.contentType])
  for (const [k, v] of Object.entries(extra)) headers.set(k, [v])
  ctx.exit = { status, headers, body: rendered.body, source: 'error' }
}

/** Lua truthiness: everything but nil and false. */
function luaTruthy(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false
}

/** kong.service.request.set_header / clear_header for the X-Consumer-* family. */
function setOrClear(ctx: RequestContext, name: string, value: string | undefined): void {
  if (value === undefined) ctx.headers.delete(name)
  else ctx.headers.set(name, [value])
}

type KeyAuthRefusal = { readonly status: 401; readonly message: string }

/** key-auth handler.lua do_authentication: the refusal, or the credential and its consumer. */
function authenticateKey(
  ctx: RequestContext,
  conf: Readonly<Record<string, unknown>>,
  config: DeclarativeConfig,
): KeyAuthRefusal | { credential: KeyAuthCredential; consumer: ConsumerEntity } {
  const names = Array.isArray(conf['key_names']) ? (conf['key_names'] as string[]) : ['apikey']
  const query = new URLSearchParams(ctx.rawQuery ?? '')
  let key: string | undefined
  for (const name of names) {
    if (conf['key_in_header'] !== false) key = ctx.headers.get(name)
    if (key === undefined && conf['key_in_query'] !== false) key = query.get(name) ?? undefined
    if (key !== undefined) {
      if (conf['hide_credentials'] === true) {
        ctx.headers.delete(name)
        query.delete(name)
        ctx.upstreamQuery = query.toString()
      }
      break
    }
  }
  if (key === undefined || key === '')
    return { status: 401, message: 'No API key found in request' }
  const credential = config.keyauthCredentials.find((c) => c.key === key)
  const consumer = credential
    ? config.consumers.find((c) => c.id === credential.consumer.id)
    : undefined
  if (!credential || !consumer) return { status: 401, message: 'Unauthorized' }
  return { credential, consumer }
}

/** key-auth handler.lua set_consumer: authenticate, then the upstream headers. */
function setKeyAuthConsumer(
  ctx: RequestContext,
  consumer: ConsumerEntity,
  credential?: KeyAuthCredential,
): void {
  ctx.consumer = consumerView(consumer)
  ctx.credential = credential
    ? {
        id: credential.id,
        key: credential.key,
        consumer: { id: consumer.id },
        created_at: credential.created_at,
      }
    : undefined
  ctx.authenticatedConsumer = consumer
  setOrClear(ctx, 'X-Consumer-ID', consumer.id)
  setOrClear(ctx, 'X-Consumer-Custom-ID', consumer.custom_id)
  setOrClear(ctx, 'X-Consumer-Username', consumer.username)
  setOrClear(ctx, 'X-Credential-Identifier', credential?.id)
  setOrClear(ctx, 'X-Anonymous-Consumer', credential ? undefined : 'true')
}

const keyAuth: BuiltinPlugin = {
  name: 'key-auth',
  priority: bundledPriority('key-auth'),
  fields: KEY_AUTH_FIELDS,
  handlers: {
    access(ctx, conf, config) {
      if (conf['run_on_preflight'] === false && ctx.method === 'OPTIONS') return
      const anonymous = typeof conf['anonymous'] === 'string' ? conf['anonymous'] : undefined
      // logical OR (anonymous set): another auth plugin already set a credential → nothing to do
      if (anonymous !== undefined && luaTruthy(ctx.credential)) return
      const outcome = authenticateKey(ctx, conf, config)
      if (!('status' in outcome)) {
        setKeyAuthConsumer(ctx, outcome.consumer, outcome.credential)
        return
      }
      if (anonymous === undefined) {
        errorExit(ctx, outcome.status, outcome.message, { 'WWW-Authenticate': 'Key' })
        return
      }
      // kong.client.load_consumer(anonymous, true); not found → set_consumer(nil) →
      // kong.client.authenticate(nil, nil) raises → Kong's 500
      const fallback = loadConsumer(config, anonymous)
      if (!fallback) throw new LuaError('either credential or consumer must be provided')
      setKeyAuthConsumer(ctx, fallback)
    },
  },
}

// ---------------------------------------------------------------------------------------------
// jwt — Kong 3.9.3's bundled plugin, emulated from reading kong/plugins/jwt/handler.lua and
// jwt_parser.lua (tag 3.9.3), not from a recording.
//
// Token sources (handler.lua retrieve_tokens): query args `uri_param_names` (every value; an
// argument without `=` is Lua `true`), cookies `cookie_names` (nginx's $cookie_<name>), headers
// `header_names` (first value, `\s*[Bb]earer\s+(.+)`, unanchored). Distinct tokens: none → 401
// "Unauthorized" with `WWW-Authenticate: Bearer`; several → "Multiple tokens provided"; a lone
// `true` → "Unrecognizable token". Then decode (jwt_parser), key from claims[key_claim_name] or
// header[key_claim_name], credential by key, `alg` equal to the credential's algorithm, signature,
// claims_to_verify, maximum_expiration, consumer. Every refusal is `kong.response.exit(401, …)`:
// a JSON table body (no request_id) and, except for a missing consumer, `WWW-Authenticate:
// Bearer[ realm="…"] error="invalid_token"` — in 3.9.3 without a comma before `error` (the comma
// came later, Kong PR #14437). Where Kong's Lua raises (non-string key claim, unusable public key,
// wrong ECDSA/PSS signature length, non-table header), this throws LuaError → Kong's 500.
// ---------------------------------------------------------------------------------------------

export const AUTHENTICATED_JWT_TOKEN = 'authenticated_jwt_token'

/** Lua `true`: a query argument present without `=` (ngx.req.get_uri_args). */
const FLAG = true

function unescapeArg(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return s
  }
}

/** ngx.req.get_uri_args: every value of every argument, in order; `true` for `?name`. */
function uriArgs(raw: string | undefined): Map<string, Array<string | typeof FLAG>> {
  const out = new Map<string, Array<string | typeof FLAG>>()
  for (const part of (raw ?? '').split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = unescapeArg(eq < 0 ? part : part.slice(0, eq))
    const values = out.get(name) ?? []
    values.push(eq < 0 ? FLAG : unescapeArg(part.slice(eq + 1)))
    out.set(name, values)
  }
  return out
}

/**
 * nginx's $cookie_<name> (ngx_http_parse_multi_header_lines): the first `name=value` pair over
 * all Cookie lines, name compared case-insensitively, value up to `;`, not unescaped.
 */
function cookieValue(headers: HeaderList, name: string): string | undefined {
  const n = name.toLowerCase()
  for (const line of headers.getAll('cookie')) {
    let i = 0
    while (i < line.length) {
      if (line.slice(i, i + n.length).toLowerCase() === n) {
        let j = i + n.length
        while (line[j] === ' ') j++
        if (line[j] === '=') {
          j++
          while (line[j] === ' ') j++
          const end = line.indexOf(';', j)
          return line.slice(j, end < 0 ? line.length : end)
        }
      }
      while (i < line.length && line[i] !== ';' && line[i] !== ',') i++
      i++
      while (line[i] === ' ') i++
    }
  }
  return undefined
}

/** PCRE's `\s*[Bb]earer\s+(.+)` without UCP: ASCII white space, `.` stops at a newline. */
const BEARER = /[ \t\n\x0B\f\r]*[Bb]earer[ \t\n\x0B\f\r]+([^\n]+)/

/** handler.lua retrieve_tokens: the distinct tokens of the request, in discovery order. */
export function retrieveTokens(
  ctx: RequestContext,
  conf: Readonly<Record<string, unknown>>,
): Array<string | typeof FLAG> {
  const found = new Set<string | typeof FLAG>()
  const args = uriArgs(ctx.rawQuery)
  for (const name of stringList(conf['uri_param_names'])) {
    for (const v of args.get(name) ?? []) if (v !== '') found.add(v)
  }
  for (const name of stringList(conf['cookie_names'])) {
    const v = cookieValue(ctx.headers, name)
    if (v !== undefined && v !== '') found.add(v)
  }
  for (const name of stringList(conf['header_names'])) {
    // kong.request.get_headers(): names are matched lower-cased, `_` read as `-`
    const value = ctx.headers.get(name.toLowerCase().replace(/_/g, '-'))
    if (value === undefined) continue
    const m = BEARER.exec(value)
    if (m?.[1] !== undefined && m[1] !== '') found.add(m[1])
  }
  return [...found]
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

/** jwt_parser.lua base64_decode (ngx.base64.decode_base64url after padding): undefined = nil. */
function base64UrlDecode(input: string): Buffer | undefined {
  const cut = input.indexOf('=')
  const body = cut < 0 ? input : input.slice(0, cut)
  if (!/^[A-Za-z0-9_-]*$/.test(body) || body.length % 4 === 1) return undefined
  return Buffer.from(body, 'base64url')
}

interface DecodedJwt {
  readonly token: string
  readonly signingInput: string
  readonly header: unknown
  readonly claims: unknown
  readonly alg: string
  readonly signature: Buffer
}

const ALG_HASH: Readonly<Record<string, string | null>> = {
  HS256: 'sha256',
  HS384: 'sha384',
  HS512: 'sha512',
  RS256: 'sha256',
  RS384: 'sha384',
  RS512: 'sha512',
  ES256: 'sha256',
  ES384: 'sha384',
  ES512: 'sha512',
  PS256: 'sha256',
  PS384: 'sha384',
  PS512: 'sha512',
  EdDSA: null,
}

/** A cjson-decoded value indexed by Lua: tables give their field, strings the string library (nil), other values raise. */
function luaIndex(table: unknown, key: string, what: string): unknown {
  if (isPlainObject(table))
    return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined
  if (Array.isArray(table) || typeof table === 'string') return undefined
  throw new LuaError(
    `attempt to index ${what} (a ${table === null ? 'userdata' : typeof table} value)`,
  )
}

/** jwt_parser.lua decode_token: the error string of `Bad token; <err>` or the decoded token. */
export function decodeJwt(token: string): DecodedJwt | string {
  // tokenize(token, ".", 3): the third part keeps any further dots
  const first = token.indexOf('.')
  const second = first < 0 ? -1 : token.indexOf('.', first + 1)
  if (first < 0 || second < 0) return 'invalid JSON' // base64_decode(nil) raises inside the pcall
  const header64 = token.slice(0, first)
  const claims64 = token.slice(first + 1, second)
  const signature64 = token.slice(second + 1)
  const json = (part: string): { ok: true; value: unknown } | { ok: false } => {
    const raw = base64UrlDecode(part)
    if (raw === undefined) return { ok: false }
    try {
      return { ok: true, value: JSON.parse(raw.toString('utf8')) as unknown }
    } catch {
      return { ok: false }
    }
  }
  const header = json(header64)
  const claims = json(claims64)
  if (!header.ok || !claims.ok) return 'invalid JSON'
  const alg = luaIndex(header.value, 'alg', "field 'header'")
  if (typeof alg !== 'string' || !Object.prototype.hasOwnProperty.call(ALG_HASH, alg))
    return 'invalid alg'
  if (claims.value === false) return 'invalid claims'
  const signature = base64UrlDecode(signature64)
  if (signature === undefined) return 'invalid signature'
  return {
    token,
    signingInput: `${header64}.${claims64}`,
    header: header.value,
    claims: claims.value,
    alg,
    signature,
  }
}

/** jwt_parser.lua alg_verify: true when the signature verifies with `key` (secret bytes or PEM). */
export function verifySignature(jwtToken: DecodedJwt, key: Buffer | string): boolean {
  const { alg, signature } = jwtToken
  const data = Buffer.from(jwtToken.signingInput)
  const hash = ALG_HASH[alg] ?? null
  if (alg.startsWith('HS')) {
    const mac = crypto
      .createHmac(hash ?? 'sha256', key)
      .update(data)
      .digest()
    return mac.equals(signature)
  }
  let publicKey: crypto.KeyObject
  try {
    publicKey = crypto.createPublicKey(key)
  } catch {
    throw new LuaError('jwt_parser.lua: Consumer Public Key is Invalid')
  }
  const sizes: Readonly<Record<string, number>> = { ES256: 64, ES384: 96, ES512: 132 }
  const size = sizes[alg]
  if (size !== undefined && signature.length !== size)
    throw new LuaError(`jwt_parser.lua: Signature must be ${size} bytes.`)
  if (alg.startsWith('PS') && signature.length !== 256)
    throw new LuaError('jwt_parser.lua: Signature must be 256 bytes')
  try {
    if (alg.startsWith('ES'))
      return crypto.verify(hash, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)
    if (alg.startsWith('PS')) {
      return crypto.verify(
        hash,
        data,
        {
          key: publicKey,
          padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
          saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO,
        },
        signature,
      )
    }
    return crypto.verify(hash, data, publicKey, signature)
  } catch {
    return false // resty.openssl's verify answers nil, err: a falsy result
  }
}

type Refusal = {
  readonly status: 401
  readonly body: Record<string, string>
  readonly wwwAuthenticate?: string
}

/** handler.lua do_authentication: the refusal, or the credential and consumer that authenticate. */
function authenticateJwt(
  ctx: RequestContext,
  conf: Readonly<Record<string, unknown>>,
  config: DeclarativeConfig,
  now: number,
): Refusal | { secret: JwtSecret; consumer: ConsumerEntity; token: string } {
  const realm = typeof conf['realm'] === 'string' ? conf['realm'] : undefined
  const base = realm !== undefined ? `Bearer realm="${realm}"` : 'Bearer'
  const withError = `${base} error="invalid_token"`
  const refuse = (message: string, www = withError): Refusal => ({
    status: 401,
    body: { message },
    wwwAuthenticate: www,
  })

  const tokens = retrieveTokens(ctx, conf)
  if (tokens.length === 0) return refuse('Unauthorized', base)
  if (tokens.length > 1) return refuse('Multiple tokens provided')
  const token = tokens[0]
  if (typeof token !== 'string') return refuse('Unrecognizable token')

  const decoded = decodeJwt(token)
  if (typeof decoded === 'string') return refuse(`Bad token; ${decoded}`)
  const claimName = typeof conf['key_claim_name'] === 'string' ? conf['key_claim_name'] : 'iss'
  const fromClaims = luaIndex(decoded.claims, claimName, "local 'claims'")
  const key =
    fromClaims === undefined || fromClaims === false
      ? luaIndex(decoded.header, claimName, "local 'header'")
      : fromClaims
  if (key === undefined || key === false) return refuse(`No mandatory '${claimName}' in claims`)
  if (key === '') return refuse(`Invalid '${claimName}' in claims`)
  // kong.db.jwt_secrets:select_by_key validates the unique value's type and raises
  if (typeof key !== 'string') throw new LuaError('key must be a string')

  const secret = config.jwtSecrets.find((s) => s.key === key)
  if (!secret) return refuse(`No credentials found for given '${claimName}'`)
  if (decoded.alg !== secret.algorithm) return refuse('Invalid algorithm')

  let keyMaterial: Buffer | string | undefined
  if (secret.algorithm.startsWith('HS')) {
    keyMaterial =
      conf['secret_is_base64'] === true
        ? base64UrlDecode(secret.secret)
        : Buffer.from(secret.secret)
  } else {
    keyMaterial = secret.rsa_public_key // PEM, never base64-decoded (Kong #13710)
  }
  if (keyMaterial === undefined) return refuse('Invalid key/secret')
  if (!verifySignature(decoded, keyMaterial)) return refuse('Invalid signature')

  const errors: Record<string, string> = {}
  for (const claim of stringList(conf['claims_to_verify'])) {
    const value = luaIndex(decoded.claims, claim, "field 'claims'")
    if (typeof value !== 'number') errors[claim] = 'must be a number'
    else if (claim === 'exp' && value <= now) errors[claim] = 'token expired'
    else if (claim === 'nbf' && value > now) errors[claim] = 'token not valid yet'
  }
  if (Object.keys(errors).length > 0)
    return { status: 401, body: errors, wwwAuthenticate: withError }

  const maxExp = typeof conf['maximum_expiration'] === 'number' ? conf['maximum_expiration'] : 0
  if (maxExp > 0) {
    const exp = luaIndex(decoded.claims, 'exp', "field 'claims'")
    const expNum =
      typeof exp === 'string' && exp.trim() !== '' && !Number.isNaN(Number(exp)) ? Number(exp) : exp
    if (expNum !== undefined && typeof expNum !== 'number')
      throw new LuaError("attempt to perform arithmetic on local 'exp'")
    if (expNum === undefined || expNum - now > maxExp) {
      return {
        status: 401,
        body: { exp: 'exceeds maximum allowed expiration' },
        wwwAuthenticate: withError,
      }
    }
  }

  const consumer = loadConsumer(config, secret.consumer.id)
  if (!consumer)
    return { status: 401, body: { message: `Could not find consumer for '${claimName}=${key}'` } }
  return { secret, consumer, token }
}

/** kong.client.load_consumer(id, true): by id, then by username. */
function loadConsumer(config: DeclarativeConfig, idOrName: string): ConsumerEntity | undefined {
  return (
    config.consumers.find((c) => c.id === idOrName) ??
    config.consumers.find((c) => c.username === idOrName)
  )
}

/** handler.lua set_consumer: authenticate, upstream headers, and the raw token in kong.ctx.shared. */
function setJwtConsumer(
  ctx: RequestContext,
  consumer: ConsumerEntity,
  secret?: JwtSecret,
  token?: string,
): void {
  ctx.consumer = consumerView(consumer)
  ctx.credential = secret ? { ...secret } : undefined
  ctx.authenticatedConsumer = consumer
  const set = (name: string, v: string | undefined): void => {
    if (v === undefined) ctx.headers.delete(name)
    else ctx.headers.set(name, [v])
  }
  set('X-Consumer-ID', consumer.id)
  set('X-Consumer-Custom-ID', consumer.custom_id)
  set('X-Consumer-Username', consumer.username)
  set('X-Credential-Identifier', secret?.key)
  set('X-Anonymous-Consumer', secret ? undefined : 'true')
  if (token === undefined) ctx.ctxShared.delete(AUTHENTICATED_JWT_TOKEN)
  else ctx.ctxShared.set(AUTHENTICATED_JWT_TOKEN, token)
}

/** kong.response.exit(status, table, headers): cjson body (`/` escaped), JSON content type, no request_id. */
function exitWithTable(ctx: RequestContext, refusal: Refusal): void {
  const headers = ctx.responseHeaders.clone()
  if (refusal.wwwAuthenticate !== undefined)
    headers.set('WWW-Authenticate', [refusal.wwwAuthenticate])
  headers.set('Content-Type', ['application/json; charset=utf-8'])
  const body = Buffer.from(JSON.stringify(refusal.body).replace(/\//g, '\\/'))
  ctx.exit = { status: refusal.status, headers, body, source: 'exit' }
}

/** The clock of the claim checks (ngx.time()); tests may replace it. */
export const jwtClock = { now: (): number => Math.floor(Date.now() / 1000) }

const jwt: BuiltinPlugin = {
  name: 'jwt',
  priority: bundledPriority('jwt'),
  fields: JWT_FIELDS,
  handlers: {
    access(ctx, conf, config) {
      if (conf['run_on_preflight'] === false && ctx.method === 'OPTIONS') return
      const anonymous = typeof conf['anonymous'] === 'string' ? conf['anonymous'] : undefined
      // logical OR (anonymous set): another auth plugin already authenticated → nothing to do
      if (anonymous !== undefined && ctx.credential !== undefined) return
      const outcome = authenticateJwt(ctx, conf, config, jwtClock.now())
      if (!('status' in outcome)) {
        setJwtConsumer(ctx, outcome.consumer, outcome.secret, outcome.token)
        return
      }
      if (anonymous === undefined) {
        exitWithTable(ctx, outcome)
        return
      }
      const fallback = loadConsumer(config, anonymous)
      // 3.9.3 has no "configured but doesn't exist" check: authenticate(nil, nil) raises
      if (!fallback) throw new LuaError('either credential or consumer must be provided')
      setJwtConsumer(ctx, fallback)
    },
  },
}

// ---------------------------------------------------------------------------------------------
// acl — Kong 3.9.3's bundled plugin, emulated from reading kong/plugins/acl/handler.lua and
// groups.lua (tag 3.9.3), not from a recording.
//
// Mode DENY when config.deny has a first element, else ALLOW. The groups decided on are the
// authenticated groups (kong.ctx.shared.authenticated_groups if a table, else
// ngx.ctx.authenticated_groups) when there is no consumer, or when the consumer has no credential
// (anonymous) or always_use_authenticated_groups is set and such groups exist; otherwise the
// consumer's `acls` rows. Refusals are kong.response.error: 403 "You cannot consume this service",
// or 401 (default message) when there is nothing to decide on and no credential. An allowed
// request carries the decided groups upstream (X-Consumer-Groups / X-Authenticated-Groups) unless
// hide_groups_header. Lua details kept: group_in_groups answers nil (not false) on no match, so a
// DENY decision on authenticated groups that passes sets no header; a consumer without groups in
// DENY mode is allowed with an empty X-Consumer-Groups (the PDK sends "" as " ").
// ---------------------------------------------------------------------------------------------

export const ACL_FORBIDDEN = 'You cannot consume this service'
export const AUTHENTICATED_GROUPS = 'authenticated_groups'

/** kong.tools.utils is_valid_uuid. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A Lua table as the emulator stores one (viaLua: arrays, maps, `[]` for the empty table). */
function isLuaTable(v: unknown): v is unknown[] | Record<string, unknown> {
  return Array.isArray(v) || isPlainObject(v)
}

/** groups.lua get_authenticated_groups: the sequence part of the table, or undefined (nil). */
export function authenticatedGroups(ctx: RequestContext): unknown[] | undefined {
  let groups = ctx.ctxShared.get(AUTHENTICATED_GROUPS)
  if (!isLuaTable(groups)) {
    groups = ctx.ngxCtx.get(AUTHENTICATED_GROUPS)
    // a non-table here is logged by Kong ("invalid authenticated_groups, a table was expected")
    if (!isLuaTable(groups)) return undefined
  }
  return Array.isArray(groups) ? [...groups] : [] // `#t` of a table without a sequence is 0
}

/** groups.lua get_current_consumer_id: consumer.id, else credential.consumer_id (Lua `or`). */
function currentConsumerId(ctx: RequestContext): unknown {
  const fromConsumer = isPlainObject(ctx.consumer) ? ctx.consumer['id'] : undefined
  if (luaTruthy(fromConsumer)) return fromConsumer
  const fromCredential = isPlainObject(ctx.credential) ? ctx.credential['consumer_id'] : undefined
  return luaTruthy(fromCredential) ? fromCredential : undefined
}

/**
 * groups.lua get_consumer_groups via kong.db.acls:each_for_consumer: the consumer's group names;
 * an empty list stands for Kong's nil. DB-less Kong iterates the LMDB prefix
 * `acls|<ws>|consumer|<consumer id>|<acl id>`, so rows come in byte order of their ids. The DAO
 * validates the foreign key first: an id that is not a UUID string is an error, which the
 * handler raises.
 */
export function consumerGroups(config: DeclarativeConfig, consumerId: unknown): string[] {
  if (typeof consumerId !== 'string' || !UUID.test(consumerId)) {
    const why = typeof consumerId === 'string' ? 'expected a valid UUID' : 'expected a string'
    throw new LuaError(`[off] invalid primary key: '{id="${why}"}'`)
  }
  const byId = (a: AclEntity, b: AclEntity): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  return config.acls
    .filter((a) => a.consumer.id === consumerId)
    .sort(byId)
    .map((a) => a.group)
}

/** table.concat(groups, ", "): strings and numbers only, like Lua. */
function concatGroups(groups: readonly unknown[]): string {
  return groups
    .map((g, i) => {
      if (typeof g === 'string') return g
      if (typeof g === 'number') return String(g)
      throw new LuaError(`invalid value (at index ${i + 1}) in table for 'concat'`)
    })
    .join(', ')
}

type AclVerdict =
  | { readonly refuse: 401 | 403 }
  | { readonly header?: { readonly name: string; readonly value: string } }

/**
 * handler.lua get_to_be_blocked: `true` = blocked, a string = allowed (the header value, "" when
 * hidden), undefined = allowed without a header (Lua nil from group_in_groups).
 */
function toBeBlocked(
  deny: boolean,
  hide: boolean,
  groups: readonly unknown[],
  inGroup: boolean | undefined,
): true | string | undefined {
  const blocked = deny ? inGroup : inGroup !== true
  if (blocked === false) return hide ? '' : concatGroups(groups)
  return blocked === true ? true : undefined
}

/** handler.lua ACLHandler:access as a value: the refusal, or the header to set (if any). */
export function aclDecision(
  ctx: RequestContext,
  conf: Readonly<Record<string, unknown>>,
  config: DeclarativeConfig,
): AclVerdict {
  const deny = Array.isArray(conf['deny']) && conf['deny'].length > 0
  const configured = stringList(deny ? conf['deny'] : conf['allow'])
  const hide = conf['hide_groups_header'] === true
  const credential = luaTruthy(ctx.credential)
  const onAuthenticated = (groups: readonly unknown[]): true | string | undefined =>
    toBeBlocked(deny, hide, groups, configured.some((g) => groups.includes(g)) ? true : undefined)

  let consumerId = currentConsumerId(ctx)
  let verdict: true | string | undefined
  if (consumerId === undefined) {
    const groups = authenticatedGroups(ctx)
    if (!groups) return { refuse: credential ? 403 : 401 }
    verdict = onAuthenticated(groups)
  } else {
    const groups =
      !credential || conf['always_use_authenticated_groups'] === true
        ? authenticatedGroups(ctx)
        : undefined
    if (groups) {
      consumerId = undefined
      verdict = onAuthenticated(groups)
    } else {
      const own = consumerGroups(config, consumerId)
      if (own.length === 0 && !deny) return { refuse: credential ? 403 : 401 }
      verdict = toBeBlocked(
        deny,
        hide,
        own,
        configured.some((g) => own.includes(g)),
      )
    }
  }
  if (verdict === true) return { refuse: 403 }
  if (hide || verdict === undefined) return {}
  return {
    header: {
      name: consumerId !== undefined ? 'X-Consumer-Groups' : 'X-Authenticated-Groups',
      // kong.service.request.set_header sends "" as " " (checks.normalize_multi_header)
      value: verdict === '' ? ' ' : verdict,
    },
  }
}

const acl: BuiltinPlugin = {
  name: 'acl',
  priority: bundledPriority('acl'),
  fields: ACL_FIELDS,
  handlers: {
    access(ctx, conf, config) {
      const verdict = aclDecision(ctx, conf, config)
      if ('refuse' in verdict) {
        if (verdict.refuse === 403) errorExit(ctx, 403, ACL_FORBIDDEN, {})
        else errorExit(ctx, 401, 'Unauthorized', {}) // kong.response.error(401): default message
        return
      }
      if (verdict.header) ctx.headers.set(verdict.header.name, [verdict.header.value])
    },
  },
}

export const BUILTIN_PLUGINS: readonly BuiltinPlugin[] = [keyAuth, jwt, acl]
