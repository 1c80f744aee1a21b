/**
 * The Lua PDK as seen through Kong's plugin-server bridge (rpc/mp_rpc.lua `call_pdk_method`):
 * each `{Method, Args}` the plugin server sends is resolved here and answered with the value real
 * Kong 3.9.3 returns (PDK-RESULTS.md), or raises a LuaError where Kong's Lua raises (phase checks,
 * argument checks, calling a non-function: FINDINGS F19).
 */
import os from 'node:os'
import type { ConsumerEntity, DeclarativeConfig } from '../cli/kong/declarative-config'
import { LuaError, UNENCODABLE, isPlainObject, jsonViaLua, unpackArgs, viaLua } from './lua-values'
import type { HeaderList } from './request-context'
import { type LogEntry, type Phase, type RequestContext } from './request-context'

/** nginx's client_body_buffer_size: a larger body is not in memory and get_raw_body returns nil. */
export const CLIENT_BODY_BUFFER_SIZE = 8192

export interface PdkEnvironment {
  readonly config: DeclarativeConfig
  readonly nodeId: string
  readonly log: (entry: LogEntry) => void
  readonly kongVersion: string
}

export type PdkOutcome =
  | { readonly kind: 'value'; readonly value: unknown }
  | { readonly kind: 'exit' }
  | { readonly kind: 'unencodable'; readonly message: string }

/** Which Step variant Kong answers with, by PDK method (mp_rpc.lua get_step_method). */
const STEP_BY_METHOD: Readonly<Record<string, string>> = {
  'kong.client.get_credential': 'plugin.StepCredential',
  'kong.client.load_consumer': 'plugin.StepConsumer',
  'kong.client.get_consumer': 'plugin.StepConsumer',
  'kong.client.authenticate': 'plugin.StepCredential',
  'kong.node.get_memory_stats': 'plugin.StepMemoryStats',
  'kong.router.get_route': 'plugin.StepRoute',
  'kong.router.get_service': 'plugin.StepService',
  'kong.request.get_query': 'plugin.StepMultiMap',
  'kong.request.get_headers': 'plugin.StepMultiMap',
  'kong.response.get_headers': 'plugin.StepMultiMap',
  'kong.service.response.get_headers': 'plugin.StepMultiMap',
}

export function stepMethodFor(pdkMethod: string, result: unknown): string {
  if (isPlainObject(result) && typeof result['_method'] === 'string') return result['_method']
  return STEP_BY_METHOD[pdkMethod] ?? 'plugin.Step'
}

type KongPhase =
  Phase | 'header_filter' | 'body_filter' | 'error' | 'admin_api' | 'balancer' | 'init_worker'

const P_RESPONSE_READ: readonly KongPhase[] = [
  'response',
  'header_filter',
  'body_filter',
  'log',
  'error',
  'admin_api',
]
const P_RESPONSE_WRITE: readonly KongPhase[] = [
  'rewrite',
  'access',
  'response',
  'header_filter',
  'error',
  'admin_api',
]
const P_EXIT: readonly KongPhase[] = [
  'rewrite',
  'access',
  'response',
  'balancer',
  'header_filter',
  'error',
  'admin_api',
]
const P_SERVICE_REQUEST: readonly KongPhase[] = ['rewrite', 'access', 'balancer']
const P_SERVICE_RESPONSE: readonly KongPhase[] = ['response', 'header_filter', 'body_filter', 'log']
const P_REQUEST_BODY: readonly KongPhase[] = ['rewrite', 'access', 'response', 'admin_api']
const P_AUTHENTICATE: readonly KongPhase[] = ['access']

function checkPhase(ctx: RequestContext, allowed: readonly KongPhase[]): void {
  if (!allowed.includes(ctx.phase)) {
    throw new LuaError(
      `function cannot be called in ${ctx.phase} phase (only in: ${allowed.join(', ')})`,
    )
  }
}

/**
 * Kong runs external `log` handlers from a timer: only the functions plugin.lua overrides (fed from
 * data saved before the timer) and those reading ngx.ctx work; anything touching ngx.var / ngx.req
 * raises "API disabled in the current context" (recording 10, log-err).
 */
const LOG_TIMER_SAFE = new Set([
  'kong.log.serialize',
  'kong.nginx.get_ctx',
  'kong.nginx.set_ctx',
  'kong.ctx.shared.get',
  'kong.ctx.shared.set',
  'kong.request.get_headers',
  'kong.request.get_header',
  'kong.request.get_uri_captures',
  'kong.response.get_status',
  'kong.response.get_headers',
  'kong.response.get_header',
  'kong.response.get_source',
  'kong.nginx.req_start_time',
  'kong.nginx.get_subsystem',
  'kong.client.get_consumer',
  'kong.client.get_credential',
  'kong.client.load_consumer',
  'kong.router.get_route',
  'kong.router.get_service',
  'kong.node.get_id',
  'kong.node.get_hostname',
  'kong.node.get_memory_stats',
  'kong.plugin.get_id',
  'kong.ip.is_trusted',
  'kong.cluster.get_id',
])

/** Fields of the kong table that exist but are not functions (calling them is a Lua error). */
const NON_FUNCTION_FIELDS = new Set([
  'kong.version',
  'kong.version_num',
  'kong.configuration',
  'kong.db',
  'kong.dns',
])

const LOG_LEVELS = ['debug', 'info', 'notice', 'warn', 'err', 'crit', 'alert', 'emerg']

type Handler = (ctx: RequestContext, args: unknown[], env: PdkEnvironment) => unknown

function needString(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new LuaError(`${what} must be a string`)
  return v
}

function headerValues(v: unknown, name: string): string[] {
  if (typeof v === 'string') return [v]
  if (typeof v === 'number' || typeof v === 'boolean') return [String(v)]
  if (Array.isArray(v)) {
    return v.map((x) => {
      if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') return String(x)
      throw new LuaError(
        `invalid header value in array "${name}": got ${typeof x}, expected string`,
      )
    })
  }
  throw new LuaError(
    `invalid header value for "${name}": got ${v === null || v === undefined ? 'nil' : typeof v}, expected array of string, string, number or boolean`,
  )
}

function luaToString(v: unknown): string {
  if (v === null || v === undefined) return 'nil'
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return 'table: 0x00000000'
}

function parseQuery(raw: string | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  if (raw === undefined || raw === '') return out
  for (const part of raw.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const k = decode(eq < 0 ? part : part.slice(0, eq))
    const list = (out[k] ??= [])
    if (eq >= 0) list.push(decode(part.slice(eq + 1)))
  }
  return out
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '))
  } catch {
    return s
  }
}

/** ngx.encode_args for kong.service.request.set_query: keys sorted, arrays repeated. */
export function encodeQuery(args: Record<string, unknown>): string {
  const parts: string[] = []
  for (const k of Object.keys(args).sort()) {
    const v = args[k]
    const values = Array.isArray(v) ? v : [v]
    for (const x of values) {
      if (x === true) parts.push(encodeURIComponent(k))
      else if (x === false || x === null || x === undefined) continue
      else parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(x))}`)
    }
  }
  return parts.join('&')
}

function entityWithoutNulls(e: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined && v !== null))
}

export function consumerView(c: ConsumerEntity): Record<string, unknown> {
  return entityWithoutNulls(c)
}

function findConsumer(
  env: PdkEnvironment,
  idOrName: string,
  byUsername: boolean,
): ConsumerEntity | undefined {
  const byId = env.config.consumers.find((c) => c.id === idOrName)
  if (byId) return byId
  if (byUsername) return env.config.consumers.find((c) => c.username === idOrName)
  return undefined
}

function responseGetter(ctx: RequestContext): {
  status: number
  headers: HeaderList
  source: string
} {
  if (ctx.response) return ctx.response
  if (ctx.exit)
    return { status: ctx.exit.status, headers: ctx.exit.headers, source: ctx.exit.source }
  return { status: 200, headers: ctx.responseHeaders, source: 'service' }
}

function parseBody(ctx: RequestContext): unknown {
  const ct = (ctx.headers.get('content-type') ?? '').toLowerCase()
  if (ctx.body.length === 0) return undefined
  if (ct.includes('application/json')) {
    try {
      return jsonViaLua(JSON.parse(ctx.body.toString('utf8')))
    } catch {
      return undefined
    }
  }
  if (ct.includes('application/x-www-form-urlencoded')) {
    const q = parseQuery(ctx.body.toString('utf8'))
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(q))
      out[k] = v.length === 0 ? true : v.length === 1 ? v[0] : v
    return Object.keys(out).length === 0 ? [] : out
  }
  return undefined
}

const DEFAULT_MESSAGES: Readonly<Record<number, string>> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  408: 'Request timeout',
  409: 'Conflict',
  411: 'Length required',
  412: 'Precondition failed',
  413: 'Payload too large',
  414: 'URI too long',
  415: 'Unsupported media type',
  429: 'Too many requests',
  500: 'An unexpected error occurred',
  502: 'An invalid response was received from the upstream server',
  503: 'The upstream server is currently unavailable',
  504: 'The upstream server is timing out',
}

export const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Time-out',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
}

/** Kong's error body (kong/tools/http.lua): JSON unless the client prefers HTML (07 exit-error). */
export function kongErrorBody(
  message: string,
  requestId: string,
  accept: string | undefined,
): { body: Buffer; contentType: string } {
  if (accept !== undefined && /text\/html/i.test(accept) && !/application\/json/i.test(accept)) {
    const html =
      '<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n    <title>Error</title>\n  </head>\n' +
      `  <body>\n    <h1>Error</h1>\n    <p>${message}.</p>\n    <p>request_id: ${requestId}</p>\n  </body>\n</html>\n`
    return { body: Buffer.from(html), contentType: 'text/html; charset=utf-8' }
  }
  const json = `{\n  "message":${JSON.stringify(message)},\n  "request_id":"${requestId}"\n}`
  return { body: Buffer.from(json), contentType: 'application/json; charset=utf-8' }
}

/**
 * kong/error_handlers.lua's messages (Kong 3.9.3), for responses nginx itself produced and sent
 * through `error_page … /kong_error_handler` (494 is nginx's internal "header too large", which
 * Kong answers as 400).
 */
export const ERROR_HANDLER_MESSAGES: Readonly<Record<number, string>> = {
  400: 'Bad request',
  404: 'Not found',
  405: 'Method not allowed',
  408: 'Request timeout',
  411: 'Length required',
  412: 'Precondition failed',
  413: 'Payload too large',
  414: 'URI too long',
  417: 'Expectation failed',
  494: 'Request header or cookie too large',
  500: 'An unexpected error occurred',
  502: 'An invalid response was received from the upstream server',
  503: 'The upstream server is currently unavailable',
  504: 'The upstream server is timing out',
}

// kong/tools/http.lua (3.9.3): MIME_TYPES and ERROR_TEMPLATES
const MIME_TYPES: Readonly<Record<string, string>> = {
  'application/grpc': '',
  'text/html': 'text/html; charset=utf-8',
  'application/json': 'application/json; charset=utf-8',
  'text/plain': 'text/plain; charset=utf-8',
  'application/xml': 'application/xml; charset=utf-8',
  application: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  default: 'application/json; charset=utf-8',
}
const MEDIA_RANGE = /^((?:[a-z0-9][a-z0-9\-!#$&^_+.]+|\*)\/(?:[a-z0-9][a-z0-9\-!#$&^_+.]+|\*))/i
const MEDIA_PARAM =
  /\s*;\s*(?:q=(1(?:\.0{0,3}|)|0(?:\.\d{0,3}|))|[a-z0-9][a-z0-9\-!#$&^_+.]+(?:=[^;]*|))/iy

/** tools/http.lua get_mime_type (use_default = true). */
function mimeTypeOf(mediaType: string): string {
  const entries = (mediaType.trim().split(';')[0] ?? '').split('/')
  let mime: string | undefined
  if (entries.length > 1) {
    if (entries[1] === '*') {
      mime = entries[0] === '*' ? MIME_TYPES['default'] : MIME_TYPES[entries[0] ?? '']
    } else {
      mime = MIME_TYPES[mediaType.trim().split(';')[0] ?? '']
    }
  }
  return mime ?? (MIME_TYPES['default'] as string)
}

/**
 * tools/http.lua get_response_type: the highest q wins (the first of equals; q=0 never), the
 * media range matched anchored and case-insensitively, its last `q` parameter counting (PCRE
 * keeps the last repetition's capture).
 */
export function errorResponseType(accept: string): string {
  let contentType = MIME_TYPES['default'] as string
  let maxQuality = 0
  for (const part of accept.split(',')) {
    const value = part.trim()
    const m = MEDIA_RANGE.exec(value)
    if (!m) continue
    let q: number | undefined
    MEDIA_PARAM.lastIndex = m[0].length
    for (let p = MEDIA_PARAM.exec(value); p; p = MEDIA_PARAM.exec(value)) {
      if (p[1] !== undefined) q = Number(p[1])
    }
    const quality = q ?? 1
    if (quality > maxQuality) {
      maxQuality = quality
      contentType = mimeTypeOf(m[1] ?? '')
    }
  }
  return contentType
}

/**
 * The body Kong.handle_error (kong/error_handlers.lua) answers with: the template for the type
 * negotiated from the first Accept line, else the first Content-Type line, else
 * `error_default_type` (text/plain); the `application/grpc` case answers `{"message": …}`.
 */
export function kongErrorHandlerBody(
  message: string,
  requestId: string,
  acceptOrContentType: string | undefined,
): { body: Buffer; contentType: string | undefined } {
  const accept = acceptOrContentType ?? 'text/plain'
  if (accept.startsWith('application/grpc')) {
    return {
      body: Buffer.from(JSON.stringify({ message })),
      contentType: 'application/json; charset=utf-8',
    }
  }
  const mime = errorResponseType(accept)
  let text: string
  if (mime === MIME_TYPES['text/html']) {
    text =
      '<!doctype html>\n<html>\n  <head>\n    <meta charset="utf-8">\n    <title>Error</title>\n  </head>\n' +
      `  <body>\n    <h1>Error</h1>\n    <p>${message}.</p>\n    <p>request_id: ${requestId}</p>\n  </body>\n</html>\n`
  } else if (mime === MIME_TYPES['application/xml']) {
    text = `<?xml version="1.0" encoding="UTF-8"?>\n<error>\n  <message>${message}</message>\n  <requestid>${requestId}</requestid>\n</error>\n`
  } else if (mime === MIME_TYPES['text/plain']) {
    text = `${message}\nrequest_id: ${requestId}\n`
  } else if (mime === '') {
    return { body: Buffer.alloc(0), contentType: undefined }
  } else {
    text = `{\n  "message":"${message}",\n  "request_id":"${requestId}"\n}`
  }
  return { body: Buffer.from(text), contentType: mime }
}

/** nginx's default page for a status with no body (07 exit-status). */
export function nginxStatusPage(status: number): Buffer | undefined {
  if (status < 400) return undefined
  const title = `${status} ${REASONS[status] ?? ''}`.trim()
  return Buffer.from(
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`,
  )
}

function buildExit(ctx: RequestContext, args: unknown[], isError: boolean): void {
  const status = args[0]
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new LuaError('code must be a number and between 100 and 599')
  }
  const headers = ctx.responseHeaders.clone()
  const extra = args[2]
  if (extra !== undefined && !isPlainObject(extra))
    throw new LuaError('headers must be a nil or table')
  if (isPlainObject(extra)) {
    for (const [k, v] of Object.entries(extra)) headers.set(k, headerValues(v, k))
  }
  let body: Buffer | undefined
  const b = args[1]
  if (isError) {
    const message =
      typeof b === 'string'
        ? b
        : isPlainObject(b) && typeof b['message'] === 'string'
          ? b['message']
          : (DEFAULT_MESSAGES[status] ?? 'The upstream server responded with ' + String(status))
    const rendered = kongErrorBody(message, ctx.id, ctx.headers.get('accept'))
    body = rendered.body
    headers.set('Content-Type', [rendered.contentType])
  } else if (typeof b === 'string') {
    body = Buffer.from(b)
  } else if (b instanceof Uint8Array) {
    body = Buffer.from(b)
  } else if (b !== undefined) {
    if (!isPlainObject(b) && !Array.isArray(b))
      throw new LuaError('body must be a nil, string or table')
    // Kong encodes with lua-cjson, which escapes '/' as '\/' (seen in the recordings' admin
    // responses; no recorded exit body holds a '/').
    body = Buffer.from(JSON.stringify(viaLuaForJson(b)).replace(/\//g, '\\/'))
    if (!headers.has('content-type'))
      headers.set('Content-Type', ['application/json; charset=utf-8'])
  } else {
    body = nginxStatusPage(status)
    if (body && !headers.has('content-type'))
      headers.set('Content-Type', ['text/html; charset=UTF-8'])
  }
  ctx.exit = { status, headers, source: isError ? 'error' : 'exit', ...(body ? { body } : {}) }
}

/** cjson encoding of a Lua table that came from msgpack: nil values dropped, empty tables as {}. */
function viaLuaForJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(viaLuaForJson)
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v))
      if (x !== null && x !== undefined) out[k] = viaLuaForJson(x)
    return out
  }
  return v
}

function serialize(ctx: RequestContext): string {
  const resp = responseGetter(ctx)
  const query = parseQuery(ctx.upstreamQuery ?? ctx.rawQuery)
  const q: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(query))
    q[k] = v.length === 0 ? true : v.length === 1 ? v[0] : v
  const single = (m: Record<string, string[]>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.length === 1 ? v[0] : v]))
  const data: Record<string, unknown> = {
    workspace_name: 'default',
    source: resp.source === 'service' ? 'upstream' : 'kong',
    response: {
      headers: single(resp.headers.toTextMultimap()),
      status: resp.status,
      size: ctx.response?.body.length ?? 0,
    },
    client_ip: ctx.clientIp,
    started_at: ctx.startTimeMs,
    workspace: '0dc6f45b-8f8d-40d2-a504-473544ee190b',
    request: {
      id: ctx.id,
      uri: ctx.rawPath + (ctx.rawQuery !== undefined ? `?${ctx.rawQuery}` : ''),
      size: ctx.body.length,
      method: ctx.method,
      url: `${ctx.scheme}://${ctx.hostHeader}${ctx.rawPath}${ctx.rawQuery !== undefined ? `?${ctx.rawQuery}` : ''}`,
      headers: single(ctx.headers.toTextMultimap()),
      querystring: Object.keys(q).length === 0 ? {} : q,
    },
    ...(ctx.route ? { route: ctx.route } : {}),
    ...(ctx.service ? { service: ctx.service } : {}),
    ...(ctx.consumer !== undefined ? { consumer: ctx.consumer } : {}),
    ...(ctx.proxied
      ? { upstream_status: ctx.serviceResponse?.status, upstream_uri: ctx.upstreamUri }
      : {}),
    latencies: {
      kong: 0,
      proxy: ctx.upstreamLatencyMs ?? 0,
      request: Date.now() - ctx.startTimeMs,
      receive: 0,
    },
  }
  return JSON.stringify(data)
}

const HANDLERS: Readonly<Record<string, Handler>> = {
  // ---- kong.request
  // header values are bytes in Kong; a plugin server reads them as a MessagePack str (UTF-8)
  'kong.request.get_header': (ctx, [name]) =>
    ctx.headers.getText(needString(name, 'header name').replace(/_/g, '-')),
  'kong.request.get_headers': (ctx, [max]) => {
    if (max !== undefined && (typeof max !== 'number' || max < 1 || max > 1000)) {
      throw new LuaError('max_headers must be a number between 1 and 1000')
    }
    return ctx.headers.toTextMultimap(typeof max === 'number' ? max : 100)
  },
  'kong.request.get_method': (ctx) => ctx.method,
  'kong.request.get_path': (ctx) => ctx.rawPath,
  'kong.request.get_raw_path': (ctx) => ctx.rawPath,
  'kong.request.get_path_with_query': (ctx) =>
    ctx.rawPath + (ctx.rawQuery ? `?${ctx.rawQuery}` : ''),
  'kong.request.get_raw_query': (ctx) => ctx.rawQuery ?? '',
  'kong.request.get_query': (ctx) => parseQuery(ctx.rawQuery),
  'kong.request.get_query_arg': (ctx, [name]) => {
    const list = parseQuery(ctx.rawQuery)[needString(name, 'query argument name')]
    if (list === undefined) return undefined
    return list.length === 0 ? true : list[0]
  },
  'kong.request.get_scheme': (ctx) => ctx.scheme,
  'kong.request.get_host': (ctx) => ctx.host,
  'kong.request.get_port': (ctx) => ctx.serverPort,
  'kong.request.get_forwarded_host': (ctx) => ctx.host,
  'kong.request.get_forwarded_scheme': (ctx) => ctx.scheme,
  'kong.request.get_forwarded_port': (ctx) => ctx.serverPort,
  'kong.request.get_forwarded_path': (ctx) => ctx.rawPath,
  'kong.request.get_forwarded_prefix': (ctx) => ctx.match?.strippedPrefix,
  'kong.request.get_http_version': (ctx) => ctx.httpVersion,
  'kong.request.get_start_time': (ctx) => ctx.startTimeMs,
  'kong.request.get_uri_captures': (ctx) => {
    const c = ctx.match?.captures
    const named = c && Object.keys(c.named).length > 0 ? c.named : []
    return { unnamed: c ? [...c.unnamed] : [], named }
  },
  'kong.request.get_raw_body': (ctx) => {
    checkPhase(ctx, P_REQUEST_BODY)
    if (ctx.body.length > CLIENT_BODY_BUFFER_SIZE) return UNENCODABLE
    return new Uint8Array(ctx.body)
  },
  'kong.request.get_body': (ctx) => {
    checkPhase(ctx, P_REQUEST_BODY)
    return parseBody(ctx)
  },
  // ---- kong.client
  'kong.client.get_ip': (ctx) => ctx.clientIp,
  'kong.client.get_forwarded_ip': (ctx) => ctx.clientIp,
  'kong.client.get_port': (ctx) => ctx.clientPort,
  'kong.client.get_forwarded_port': (ctx) => ctx.clientPort,
  'kong.client.get_protocol': (ctx) => ctx.scheme,
  'kong.client.get_consumer': (ctx) => ctx.consumer,
  'kong.client.get_credential': (ctx) => ctx.credential,
  'kong.client.load_consumer': (_ctx, [id, byUsername], env) => {
    if (typeof id !== 'string' || id === '') throw new LuaError('consumer_id must be a string')
    const c = findConsumer(env, id, byUsername === true)
    return c ? consumerView(c) : undefined
  },
  'kong.client.authenticate': (ctx, [consumer, credential], env) => {
    checkPhase(ctx, P_AUTHENTICATE)
    if (consumer === undefined && credential === undefined) {
      throw new LuaError('either credential or consumer must be provided')
    }
    if (consumer !== undefined && !isPlainObject(consumer))
      throw new LuaError('consumer must be a table or nil')
    if (credential !== undefined && !isPlainObject(credential))
      throw new LuaError('credential must be a table or nil')
    ctx.consumer = consumer === undefined ? undefined : viaLua(consumer)
    ctx.credential = credential === undefined ? undefined : viaLua(credential)
    const id =
      isPlainObject(consumer) && typeof consumer['id'] === 'string' ? consumer['id'] : undefined
    ctx.authenticatedConsumer =
      id === undefined
        ? undefined
        : (env.config.consumers.find((c) => c.id === id) ?? { id, created_at: 0, updated_at: 0 })
    return undefined
  },
  // ---- kong.router
  'kong.router.get_route': (ctx) => (ctx.route ? entityWithoutNulls(ctx.route) : undefined),
  'kong.router.get_service': (ctx) => (ctx.service ? entityWithoutNulls(ctx.service) : undefined),
  // ---- kong.service.request
  'kong.service.request.set_header': (ctx, [name, value]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    const n = needString(name, 'header name')
    if (value === undefined)
      throw new LuaError(
        `invalid header value for "${n}": got nil, expected array of string, string, number or boolean`,
      )
    ctx.headers.set(n, headerValues(value, n))
    return undefined
  },
  'kong.service.request.add_header': (ctx, [name, value]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    const n = needString(name, 'header name')
    for (const v of headerValues(value, n)) ctx.headers.add(n, v)
    return undefined
  },
  'kong.service.request.clear_header': (ctx, [name]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    ctx.headers.delete(needString(name, 'header name'))
    return undefined
  },
  'kong.service.request.set_headers': (ctx, [headers]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    // an empty Lua table arrives as [] (ngx.req.set_header with an empty table removes the header)
    if (Array.isArray(headers) && headers.length === 0) return undefined
    if (!isPlainObject(headers)) throw new LuaError('headers must be a table')
    for (const [k, v] of Object.entries(headers)) {
      if (v === null || v === undefined) continue
      ctx.headers.set(k, headerValues(v, k))
    }
    return undefined
  },
  'kong.service.request.set_query': (ctx, [args]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    if (Array.isArray(args) && args.length === 0) {
      ctx.upstreamQuery = ''
      return undefined
    }
    if (!isPlainObject(args)) throw new LuaError('args must be a table')
    ctx.upstreamQuery = encodeQuery(args)
    return undefined
  },
  'kong.service.request.set_raw_query': (ctx, [q]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    ctx.upstreamQuery = needString(q, 'query')
    return undefined
  },
  'kong.service.request.set_path': (ctx, [p]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    const path = needString(p, 'path')
    if (!path.startsWith('/')) throw new LuaError('path must start with /')
    ctx.upstreamPath = path
    return undefined
  },
  'kong.service.request.set_method': (ctx, [m]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    ctx.upstreamMethod = needString(m, 'method').toUpperCase()
    return undefined
  },
  'kong.service.request.set_scheme': (ctx, [s]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    const scheme = needString(s, 'scheme')
    if (scheme !== 'http' && scheme !== 'https') throw new LuaError(`invalid scheme: ${scheme}`)
    ctx.upstreamScheme = scheme
    return undefined
  },
  'kong.service.request.set_raw_body': (ctx, [b]) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    ctx.upstreamBody = Buffer.from(b instanceof Uint8Array ? b : needString(b, 'body'))
    ctx.headers.set('Content-Length', [String(ctx.upstreamBody.length)])
    return undefined
  },
  'kong.service.request.enable_buffering': (ctx) => {
    checkPhase(ctx, P_SERVICE_REQUEST)
    return undefined
  },
  // ---- kong.service.response
  'kong.service.response.get_status': (ctx) => {
    checkPhase(ctx, P_SERVICE_RESPONSE)
    return ctx.serviceResponse?.status
  },
  'kong.service.response.get_header': (ctx, [name]) => {
    checkPhase(ctx, P_SERVICE_RESPONSE)
    return ctx.serviceResponse?.headers.getText(needString(name, 'header name'))
  },
  // recorded (F24): in the response phase real Kong returned an empty map here
  'kong.service.response.get_headers': (ctx) => {
    checkPhase(ctx, P_SERVICE_RESPONSE)
    return {}
  },
  'kong.service.response.get_raw_body': (ctx) => {
    checkPhase(ctx, P_SERVICE_RESPONSE)
    return ctx.serviceResponse ? new Uint8Array(ctx.serviceResponse.body) : UNENCODABLE
  },
  // ---- kong.response
  'kong.response.get_status': (ctx) => {
    checkPhase(ctx, P_RESPONSE_READ)
    return responseGetter(ctx).status
  },
  'kong.response.get_header': (ctx, [name]) => {
    checkPhase(ctx, P_RESPONSE_READ)
    return responseGetter(ctx).headers.getText(needString(name, 'header name'))
  },
  'kong.response.get_headers': (ctx, [max]) => {
    checkPhase(ctx, P_RESPONSE_READ)
    return responseGetter(ctx).headers.toTextMultimap(typeof max === 'number' ? max : 100)
  },
  // kong/pdk/response.lua get_source: error (unexpected), exit, service (proxied), else error
  'kong.response.get_source': (ctx) => {
    if (ctx.unexpected) return 'error'
    if (ctx.exit) return 'exit'
    if (ctx.proxied) return 'service'
    return 'error'
  },
  'kong.response.set_header': (ctx, [name, value]) => {
    checkPhase(ctx, P_RESPONSE_WRITE)
    const n = needString(name, 'header name')
    target(ctx).set(n, headerValues(value, n))
    return undefined
  },
  'kong.response.add_header': (ctx, [name, value]) => {
    checkPhase(ctx, P_RESPONSE_WRITE)
    const n = needString(name, 'header name')
    for (const v of headerValues(value, n)) target(ctx).add(n, v)
    return undefined
  },
  'kong.response.clear_header': (ctx, [name]) => {
    checkPhase(ctx, P_RESPONSE_WRITE)
    target(ctx).delete(needString(name, 'header name'))
    return undefined
  },
  'kong.response.set_headers': (ctx, [headers]) => {
    checkPhase(ctx, P_RESPONSE_WRITE)
    if (Array.isArray(headers) && headers.length === 0) return undefined
    if (!isPlainObject(headers)) throw new LuaError('headers must be a table')
    for (const [k, v] of Object.entries(headers)) target(ctx).set(k, headerValues(v, k))
    return undefined
  },
  'kong.response.set_status': (ctx, [status]) => {
    checkPhase(ctx, ['rewrite', 'access', 'response', 'header_filter', 'error', 'admin_api'])
    if (typeof status !== 'number') throw new LuaError('code must be a number')
    if (ctx.response) ctx.response.status = status
    return undefined
  },
  // ---- kong.ctx / kong.nginx
  'kong.ctx.shared.get': (ctx, [k]) => ctx.ctxShared.get(luaToString(k)),
  'kong.ctx.shared.set': (ctx, [k, v]) => {
    const key = luaToString(k)
    if (v === undefined) ctx.ctxShared.delete(key)
    else ctx.ctxShared.set(key, viaLua(v))
    return undefined
  },
  'kong.nginx.get_ctx': (ctx, [k]) => ctx.ngxCtx.get(luaToString(k)),
  'kong.nginx.set_ctx': (ctx, [k, v]) => {
    const key = luaToString(k)
    if (v === undefined) ctx.ngxCtx.delete(key)
    else ctx.ngxCtx.set(key, viaLua(v))
    return undefined
  },
  'kong.nginx.get_var': (ctx, [name]) => {
    const n = needString(name, 'variable name')
    switch (n) {
      // nginx's $request: the request line as the client sent it (HTTP/2 gets "HTTP/2.0")
      case 'request':
        return `${ctx.method} ${ctx.rawPath}${ctx.rawQuery !== undefined ? `?${ctx.rawQuery}` : ''} HTTP/${ctx.httpVersion.toFixed(1)}`
      case 'request_uri':
        return ctx.rawPath + (ctx.rawQuery !== undefined ? `?${ctx.rawQuery}` : '')
      case 'uri':
        return ctx.rawPath
      case 'args':
        return ctx.rawQuery
      case 'request_method':
        return ctx.method
      case 'remote_addr':
        return ctx.clientIp
      case 'remote_port':
        return String(ctx.clientPort)
      case 'server_port':
        return String(ctx.serverPort)
      case 'scheme':
        return ctx.scheme
      case 'host':
        return ctx.host
      case 'request_id':
        return ctx.id
      default:
        return n.startsWith('http_')
          ? ctx.headers.getText(n.slice(5).replace(/_/g, '-'))
          : undefined
    }
  },
  'kong.nginx.get_subsystem': () => 'http',
  'kong.nginx.req_start_time': (ctx) => ctx.startTimeMs / 1000,
  // ---- kong.node / misc
  'kong.node.get_id': (_ctx, _a, env) => env.nodeId,
  'kong.node.get_hostname': () => os.hostname(),
  'kong.node.get_memory_stats': () => ({
    lua_shared_dicts: { kong: { allocated_slabs: 40960, capacity: 5242880 } },
    workers_lua_vms: [{ http_allocated_gc: process.memoryUsage().heapUsed, pid: process.pid }],
  }),
  'kong.ip.is_trusted': () => false,
  'kong.cluster.get_id': () => undefined,
  'kong.plugin.get_id': (ctx) => ctx.currentPlugin?.id,
  'kong.log.serialize': (ctx) => serialize(ctx),
}

function target(ctx: RequestContext): HeaderList {
  return ctx.response ? ctx.response.headers : ctx.responseHeaders
}

/**
 * Runs one PDK call as Kong's bridge does. Returns the (first) result, `exit`, or `unencodable`;
 * throws LuaError where Kong's Lua raises.
 */
export function callPdk(
  ctx: RequestContext,
  method: unknown,
  rawArgs: unknown,
  env: PdkEnvironment,
): PdkOutcome {
  const name = typeof method === 'string' ? method : ''
  const plugin = ctx.currentPlugin?.name ?? 'kong'
  if (NON_FUNCTION_FIELDS.has(name)) {
    throw new LuaError(
      `attempt to call local 'method' (a ${name === 'kong.version' ? 'string' : name === 'kong.version_num' ? 'number' : 'table'} value)`,
    )
  }
  const args = unpackArgs(rawArgs)
  if (name === 'kong.response.exit' || name === 'kong.response.error') {
    checkPhase(ctx, P_EXIT)
    buildExit(ctx, args, name === 'kong.response.error')
    return { kind: 'exit' }
  }
  const level = /^kong\.log\.([a-z]+)$/.exec(name)?.[1]
  if (level !== undefined && LOG_LEVELS.includes(level)) {
    env.log({
      level,
      plugin,
      message: args.map(luaToString).join(''),
      requestId: ctx.id,
      phase: ctx.phase,
    })
    return { kind: 'value', value: undefined }
  }
  const handler = HANDLERS[name]
  if (!handler) {
    env.log({
      level: 'err',
      plugin,
      message: `could not find pdk method: ${name}`,
      requestId: ctx.id,
      phase: ctx.phase,
    })
    return { kind: 'value', value: undefined }
  }
  if (ctx.phase === 'log' && !LOG_TIMER_SAFE.has(name)) {
    throw new LuaError('API disabled in the current context')
  }
  const value = handler(ctx, args, env)
  if (value === UNENCODABLE) {
    return {
      kind: 'unencodable',
      message: "MessagePack.lua:126: attempt to get length of local 'str' (a nil value)",
    }
  }
  return { kind: 'value', value }
}
