/**
 * The proxy path of the emulated Kong: configuration state (router, plugins iterator) and the
 * request life cycle.
 *
 * Phases run in Kong's order (kong/init.lua, FINDINGS F13):
 *   nginx    — before any of them, what nginx refuses while reading the request head (duplicate
 *              unique headers, header and request-line buffers, max_headers): Kong's error page,
 *              only global log handlers run (see nginxCheckHead);
 *   rewrite  — global plugin configurations only;
 *   router   — no match → 404 "no Route matched with those values";
 *   access   — the collecting iterator: for each plugin by priority, the most specific config for
 *              (route, service, consumer authenticated so far) is picked (plugins_iterator.lua
 *              lookup_cfg order) and collected for response/log, even after an exit;
 *   proxy    — X-Forwarded-*, Via, X-Kong-Request-Id, Host per preserve_host;
 *   response — only when proxied, for collected plugins that have it;
 *   log      — after the response was sent, for every collected plugin (globals on 404/rewrite exit).
 */
import crypto from 'node:crypto'
import http from 'node:http'
import type { Duplex } from 'node:stream'
import { BUILTIN_PLUGINS, type BuiltinPlugin } from './builtin-plugins'
import {
  DEFAULT_WS_ID,
  parseDeclarativeConfig,
  resolveVaultReference,
  ConfigError,
  type DeclarativeConfig,
  type PluginEntity,
  type ServiceEntity,
} from '../cli/kong/declarative-config'
import { LuaError } from './lua-values'
import {
  ERROR_HANDLER_MESSAGES,
  REASONS,
  kongErrorBody,
  kongErrorHandlerBody,
  type PdkEnvironment,
} from './pdk'
import { handleEvent, InstanceManager, type PluginConfigInstance } from './plugin-runtime'
import type { PluginServer } from './plugin-server'
import { HeaderList, RequestContext, type LogEntry, type Phase } from './request-context'
import { compoundKey, lookupConfig } from '../cli/kong/plugins-iterator'
import { buildRouter, upstreamPath, type Router } from '../cli/kong/router'
import { configFields, processConfig, SchemaError } from '../cli/kong/schema'

export const KONG_VERSION = '3.9.3'
export const SERVER_HEADER = `kong/${KONG_VERSION}`

export interface LoadedPlugin {
  readonly name: string
  readonly priority: number
  readonly phases: ReadonlySet<string>
  readonly server?: PluginServer
  readonly builtin?: BuiltinPlugin
}

export interface ConfigState {
  readonly config: DeclarativeConfig
  readonly router: Router
  /** Plugins that have at least one enabled configuration, by priority (highest first). */
  readonly ordered: readonly LoadedPlugin[]
  readonly combos: ReadonlyMap<string, ReadonlyMap<string, PluginConfigInstance>>
  readonly globals: ReadonlyMap<string, PluginConfigInstance>
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
])

// ---- nginx, before any plugin ----------------------------------------------------------------
//
// Kong 3.9.3 runs OpenResty 1.25.3.2 (nginx 1.25.3) and leaves nginx's defaults for the request
// head: client_header_buffer_size 1k, large_client_header_buffers 4 8k, ignore_invalid_headers on;
// its build adds nginx's max_headers directive, default 1000 (Kong's patch
// build/openresty/patches/nginx-1.25.3_17-CVE-2026-49975.patch). Refusals go through
// `error_page 400 … 414 … /kong_error_handler; error_page 494 =494 /kong_error_handler;` to
// Kong.handle_error (kong/error_handlers.lua), which answers 494 as 400.

export const NGINX_HEAD_LIMITS = {
  clientHeaderBufferSize: 1024,
  largeClientHeaderBuffers: { number: 4, size: 8192 },
  maxHeaders: 1000,
} as const

/**
 * Request headers nginx 1.25.3 refuses to see twice (400): the ngx_http_headers_in entries
 * handled by ngx_http_process_unique_header_line, and Host (ngx_http_process_host).
 */
export const NGINX_UNIQUE_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'if-match',
  'if-none-match',
  'content-length',
  'content-range',
  'if-range',
  'transfer-encoding',
  'expect',
  'authorization',
])

/** A request head as nginx reads it: the request line (no CRLF) and the header lines in order. */
export interface RequestHead {
  readonly requestLine: string
  readonly method: string
  /** "1.1", "1.0" */
  readonly httpVersion: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** false when the head was cut short (only its complete lines are known) */
  readonly complete: boolean
}

export interface NginxRefusal {
  /** nginx's own status: 494 is its internal "request header too large" */
  readonly nginxStatus: 400 | 405 | 414 | 494
  /** the status Kong answers with (494 → 400) */
  readonly status: number
  /** kong/error_handlers.lua's message for nginxStatus */
  readonly message: string
  /** nginx's error.log wording (info level) */
  readonly reason: string
  /** how many header lines nginx had stored when it stopped (what Kong's error handler sees) */
  readonly visible: number
}

function refusal(
  nginxStatus: NginxRefusal['nginxStatus'],
  reason: string,
  visible: number,
): NginxRefusal {
  return {
    nginxStatus,
    status: nginxStatus === 494 ? 400 : nginxStatus,
    message: ERROR_HANDLER_MESSAGES[nginxStatus] ?? 'Bad request',
    reason,
    visible,
  }
}

/**
 * What nginx 1.25.3 (with Kong's max_headers patch) answers to a request head before any phase
 * runs, or undefined when it lets it through. Line lengths are counted as `name: value\r\n` (Node
 * has already dropped the optional whitespace a client may put around a value) and the request
 * line as `METHOD target HTTP/x.y\r\n`.
 *
 * Buffers (ngx_http_alloc_large_header_buffer): lines are read into a 1024-byte buffer; a line
 * that crosses the end of the current buffer is moved to a fresh 8192-byte one, at most 4 of them
 * per request. A line is refused when it does not fit in one 8192-byte buffer (more than 8192
 * bytes with its CRLF; request line → 414 "client sent too long URI", header line → 494 "client
 * sent too long header line"), or when a fifth buffer would be needed (494) — so a head never
 * exceeds 1024 + 4 × 8192 = 33792 bytes and is refused earlier when lines straddle buffers.
 * Then per header line: the 1001st → 494 "client sent too many header lines"; a second line of a
 * unique header → 400. After the head: HTTP/1.1 without Host → 400; TRACE → 405.
 */
export function nginxCheckHead(head: RequestHead): NginxRefusal | undefined {
  const { clientHeaderBufferSize, largeClientHeaderBuffers, maxHeaders } = NGINX_HEAD_LIMITS
  let bufferEnd = clientHeaderBufferSize
  let busy = 0
  let pos = 0
  const fits = (length: number): boolean => {
    const start = pos
    const end = pos + length
    while (end > bufferEnd) {
      // the parser stops at the end of the buffer inside the line (or exactly at its start)
      if (start < bufferEnd && bufferEnd - start >= largeClientHeaderBuffers.size) return false
      if (busy >= largeClientHeaderBuffers.number) return false
      busy += 1
      bufferEnd = start + largeClientHeaderBuffers.size
    }
    pos = end
    return true
  }
  if (!fits(head.requestLine.length + 2)) return refusal(414, 'client sent too long URI', 0)
  const seen = new Set<string>()
  let hasHost = false
  for (const [i, [name, value]] of head.headers.entries()) {
    if (!fits(name.length + 2 + value.length + 2))
      return refusal(494, 'client sent too long header line', i)
    if (i >= maxHeaders) return refusal(494, 'client sent too many header lines', i)
    const n = name.toLowerCase()
    if (n === 'host') hasHost = true
    if (NGINX_UNIQUE_HEADERS.has(n)) {
      if (seen.has(n))
        return refusal(
          400,
          n === 'host' ? 'client sent duplicate host header' : 'client sent duplicate header line',
          i + 1,
        )
      seen.add(n)
    }
  }
  if (!head.complete) return undefined
  const all = head.headers.length
  if (!fits(2)) return refusal(494, 'client sent too long header line', all)
  if (!hasHost && head.httpVersion !== '1.0' && head.httpVersion !== '0.9')
    return refusal(400, 'client sent HTTP/1.1 request without "Host" header', all)
  if (head.method === 'TRACE') return refusal(405, 'client sent TRACE method', all)
  return undefined
}

function headOfRequest(req: http.IncomingMessage): RequestHead {
  const headers: Array<[string, string]> = []
  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i] ?? '', raw[i + 1] ?? ''])
  const method = req.method ?? 'GET'
  return {
    requestLine: `${method} ${req.url ?? '/'} HTTP/${req.httpVersion}`,
    method,
    httpVersion: req.httpVersion,
    headers,
    complete: true,
  }
}

/** The head of a request Node's parser refused (its clientError rawPacket), as far as it goes. */
function headOfPacket(packet: Buffer | undefined): RequestHead | undefined {
  if (!packet || packet.length === 0) return undefined
  const text = packet.toString('latin1')
  const blank = /\r?\n\r?\n/.exec(text)
  const complete = blank !== null
  const upTo = complete ? blank.index : text.lastIndexOf('\n')
  if (upTo < 0) return undefined
  const lines = text.slice(0, upTo).split(/\r?\n/)
  const requestLine = lines.shift() ?? ''
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) \S+ HTTP\/(\d\.\d)$/.exec(requestLine)
  if (!m) return undefined
  const headers: Array<[string, string]> = []
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) return undefined
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()])
  }
  return { requestLine, method: m[1] ?? '', httpVersion: m[2] ?? '1.1', headers, complete }
}

/**
 * Node's parser limits for the proxy listener, far above nginx's so that nginxCheckHead decides:
 * 1 MiB of head (beyond it Node gives up and the emulator answers what nginx would, 400 "Request
 * header or cookie too large"), no cap on the number of header lines, no Host check of its own.
 */
export const PROXY_SERVER_OPTIONS: http.ServerOptions = {
  maxHeaderSize: 1024 * 1024,
  requireHostHeader: false,
}

export interface GatewayOptions {
  readonly plugins: ReadonlyMap<string, LoadedPlugin>
  readonly nodeId: string
  readonly onLog: (entry: LogEntry) => void
  readonly env?: NodeJS.ProcessEnv
  /** Upstream read timeout override (Kong: service.read_timeout). */
  readonly upstreamAgent?: http.Agent
}

export class Gateway {
  private state: ConfigState | undefined
  private seq = 0
  readonly instances: InstanceManager
  private readonly pending = new Set<Promise<void>>()
  private readonly rr = new Map<string, number>()
  private proxyPort = 0

  constructor(private readonly opts: GatewayOptions) {
    this.instances = new InstanceManager(opts.onLog)
  }

  setProxyPort(port: number): void {
    this.proxyPort = port
  }

  get current(): ConfigState | undefined {
    return this.state
  }

  /** Validates and activates a declarative configuration (Kong's POST /config). */
  load(text: string): ConfigState {
    const config = parseDeclarativeConfig(text)
    const state = this.buildState(config)
    this.state = state
    return state
  }

  /** Resolves once every log phase started so far has finished. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending])
  }

  private buildState(config: DeclarativeConfig): ConfigState {
    const combos = new Map<string, Map<string, PluginConfigInstance>>()
    const globals = new Map<string, PluginConfigInstance>()
    const errors: string[] = []
    for (const p of config.plugins) {
      const plugin = this.opts.plugins.get(p.name)
      if (!plugin) {
        errors.push(
          `plugin '${p.name}' is not installed in the emulator (no plugin server dumped it)`,
        )
        continue
      }
      let processed: Record<string, unknown>
      try {
        processed = this.processPluginConfig(plugin, p)
      } catch (e) {
        if (e instanceof SchemaError || e instanceof ConfigError) {
          errors.push(`in 'plugins' (${p.name}${p.id ? ` ${p.id}` : ''}): config: ${e.message}`)
          continue
        }
        throw e
      }
      if (!p.enabled) continue
      this.seq += 1
      const cfg = this.bookkeeping(p, processed, this.seq)
      const key = compoundKey(p.route?.id, p.service?.id, p.consumer?.id)
      let m = combos.get(p.name)
      if (!m) combos.set(p.name, (m = new Map<string, PluginConfigInstance>()))
      m.set(key, cfg)
      if (!p.route && !p.service && !p.consumer) globals.set(p.name, cfg)
    }
    if (errors.length > 0)
      throw new ConfigError(`declarative config is invalid: ${errors.join('; ')}`)
    const ordered = [...this.opts.plugins.values()]
      .filter((pl) => combos.has(pl.name))
      .sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name))
    return { config, router: buildRouter(config.routes), ordered, combos, globals }
  }

  private processPluginConfig(plugin: LoadedPlugin, p: PluginEntity): Record<string, unknown> {
    const fields = plugin.server
      ? configFields(plugin.server.info.Schema)
      : (plugin.builtin?.fields ?? [])
    const env = this.opts.env ?? process.env
    return processConfig(fields, p.config, (ref) => resolveVaultReference(ref, env))
  }

  /** The keys Kong adds to the config table before JSON-encoding it (FINDINGS F7). */
  private bookkeeping(
    p: PluginEntity,
    conf: Record<string, unknown>,
    seq: number,
  ): PluginConfigInstance {
    const full: Record<string, unknown> = { ...conf }
    if (p.route) full['route_id'] = p.route.id
    if (p.service) full['service_id'] = p.service.id
    if (p.consumer) full['consumer_id'] = p.consumer.id
    if (p.instance_name !== undefined) full['plugin_instance_name'] = p.instance_name
    full['__plugin_id'] = p.id
    full['__ws_id'] = DEFAULT_WS_ID
    full['__key__'] =
      `plugins:${p.name}:${p.route?.id ?? ''}:${p.service?.id ?? ''}:${p.consumer?.id ?? ''}::${DEFAULT_WS_ID}`
    full['__seq__'] = seq
    return {
      pluginId: p.id,
      name: p.name,
      seq,
      conf: full,
      ...(p.route ? { routeId: p.route.id } : {}),
      ...(p.service ? { serviceId: p.service.id } : {}),
      ...(p.consumer ? { consumerId: p.consumer.id } : {}),
    }
  }

  private pdkEnv(state: ConfigState): PdkEnvironment {
    return {
      config: state.config,
      nodeId: this.opts.nodeId,
      log: this.opts.onLog,
      kongVersion: KONG_VERSION,
    }
  }

  /** Runs one phase of one plugin. Lua errors propagate (the caller turns them into Kong's 500). */
  /**
   * runPhase, with a Lua-side error logged as Kong logs it and the request marked as failed
   * (Kong answers 500 "An unexpected error occurred"; the caller decides when).
   */
  private async runPhaseOrLuaError(
    plugin: LoadedPlugin,
    cfg: PluginConfigInstance,
    phase: Phase,
    ctx: RequestContext,
    state: ConfigState,
  ): Promise<'done' | 'exit' | 'skipped' | 'lua-error'> {
    try {
      return await this.runPhase(plugin, cfg, phase, ctx, state)
    } catch (e) {
      if (!(e instanceof LuaError)) throw e
      this.opts.onLog({
        level: 'err',
        plugin: plugin.name,
        message: e.message,
        requestId: ctx.id,
        phase,
      })
      ctx.unexpected = true
      return 'lua-error'
    }
  }

  private async runPhase(
    plugin: LoadedPlugin,
    cfg: PluginConfigInstance,
    phase: Phase,
    ctx: RequestContext,
    state: ConfigState,
  ): Promise<'done' | 'exit' | 'skipped'> {
    ctx.phase = phase
    ctx.currentPlugin = { id: cfg.pluginId, name: plugin.name }
    try {
      if (plugin.builtin) {
        const fn = plugin.builtin.handlers[phase]
        if (!fn) return 'done'
        await fn(ctx, cfg.conf, state.config)
        return ctx.exit ? 'exit' : 'done'
      }
      if (!plugin.server) return 'skipped'
      return await handleEvent(plugin.server, this.instances, cfg, phase, ctx, this.pdkEnv(state))
    } finally {
      ctx.currentPlugin = undefined
    }
  }

  /**
   * The proxy listener: Node's parser set far above nginx's limits (PROXY_SERVER_OPTIONS), so
   * that the gateway answers as nginx does; `Expect` left to the gateway (Node would answer 417
   * to anything but 100-continue, and send 100 Continue before nginx's checks); requests Node's
   * parser refuses answered with Kong's error page.
   */
  createProxyServer(): http.Server {
    const server = http.createServer(PROXY_SERVER_OPTIONS, (req, res) => this.handle(req, res))
    server.maxHeadersCount = 0
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) =>
      this.handle(req, res, true),
    )
    server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) =>
      this.handle(req, res),
    )
    server.on('clientError', (err: Error, socket: Duplex) => this.onClientError(err, socket))
    return server
  }

  /** The request handler of the proxy listener. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue = false): void {
    const fail = (e: unknown): void => {
      this.opts.onLog({
        level: 'crit',
        plugin: 'emulator',
        message: `internal error: ${String(e)}`,
      })
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' })
        res.end('emulator internal error\n')
      }
    }
    const refused = nginxCheckHead(headOfRequest(req))
    if (refused) {
      // nginx answers without reading the body (and closes the connection); the emulator lets
      // a body the client already sends arrive first, so that closing does not reset it
      const answer = (): void => void this.process(req, res, Buffer.alloc(0), refused).catch(fail)
      if (expectsContinue) answer()
      else {
        req.once('end', answer)
        req.resume()
      }
      return
    }
    if (expectsContinue) res.writeContinue()
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void this.process(req, res, Buffer.concat(chunks)).catch(fail)
    })
  }

  private async process(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
    refused?: NginxRefusal,
  ): Promise<void> {
    const state = this.state
    const requestId = crypto.randomBytes(16).toString('hex')
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const ctx = new RequestContext(
      requestId,
      Date.now(),
      req.method ?? 'GET',
      q < 0 ? url : url.slice(0, q),
      q < 0 ? undefined : url.slice(q + 1),
      Number(req.httpVersion) || 1.1,
      // what nginx had stored when it stopped
      HeaderList.fromRaw(refused ? req.rawHeaders.slice(0, 2 * refused.visible) : req.rawHeaders),
      body,
      normalizeIp(req.socket.remoteAddress),
      req.socket.remotePort ?? 0,
      this.proxyPort || (req.socket.localPort ?? 0),
      'http',
      req.headers.host ?? '',
    )
    if (!state) {
      if (refused) this.sendNginxError(res, ctx, refused)
      else this.sendKongError(res, ctx, 404, 'no Route matched with those values')
      return
    }
    // eslint-disable-next-line prefer-const -- assigned once below, but read earlier by runLog (404 and error paths)
    let collectedLog: Array<[LoadedPlugin, PluginConfigInstance]> | undefined

    const runLog = (): void => {
      const list =
        collectedLog ??
        state.ordered
          .filter((p) => p.phases.has('log') && state.globals.has(p.name))
          .map((p): [LoadedPlugin, PluginConfigInstance] => [
            p,
            state.globals.get(p.name) as PluginConfigInstance,
          ])
      if (list.length === 0) return
      const job = (async (): Promise<void> => {
        for (const [plugin, cfg] of list) {
          try {
            await this.runPhase(plugin, cfg, 'log', ctx, state)
          } catch (e) {
            // in Kong's log timer a Lua error only aborts that timer (F19)
            this.opts.onLog({
              level: 'err',
              plugin: plugin.name,
              message: `lua entry thread aborted: ${String(e)}`,
              requestId,
              phase: 'log',
            })
          }
        }
      })()
      this.pending.add(job)
      void job.finally(() => this.pending.delete(job))
    }
    res.once('finish', runLog)
    res.once('close', () => {
      if (!res.writableFinished) runLog()
    })

    // ---- nginx refused the head: /kong_error_handler has empty rewrite and access blocks, so
    // nothing is collected and Kong.log runs the global plugins (Kong PR #3533)
    if (refused) {
      this.sendNginxError(res, ctx, refused)
      return
    }

    // ---- rewrite: global configurations only
    for (const plugin of state.ordered) {
      const cfg = state.globals.get(plugin.name)
      if (!cfg || !plugin.phases.has('rewrite')) continue
      const outcome = await this.runPhaseOrLuaError(plugin, cfg, 'rewrite', ctx, state)
      if (outcome === 'exit') {
        this.sendExit(res, ctx)
        return
      }
      if (outcome === 'lua-error') {
        this.sendKongError(res, ctx, 500, 'An unexpected error occurred')
        return
      }
    }

    // ---- router
    const match = state.router.match({
      method: ctx.method,
      host: ctx.hostHeader,
      path: ctx.rawPath,
      headers: req.headers,
      protocol: 'http',
    })
    if (!match) {
      this.sendKongError(res, ctx, 404, 'no Route matched with those values')
      return
    }
    ctx.match = match
    ctx.route = match.route
    ctx.service = state.config.services.find((s) => s.id === match.route.service?.id)

    // ---- access: the collecting iterator
    ctx.phase = 'access'
    const collectedResponse: Array<[LoadedPlugin, PluginConfigInstance]> = []
    collectedLog = []
    let failed = false
    for (const plugin of state.ordered) {
      const cfg = lookupConfig(
        state.combos.get(plugin.name),
        ctx.route.id,
        ctx.service?.id,
        ctx.authenticatedConsumer?.id,
      )
      if (!cfg) continue
      if (plugin.phases.has('response')) collectedResponse.push([plugin, cfg])
      if (plugin.phases.has('log')) collectedLog.push([plugin, cfg])
      if (!plugin.phases.has('access') || ctx.exit || failed) continue
      if ((await this.runPhaseOrLuaError(plugin, cfg, 'access', ctx, state)) === 'lua-error') {
        failed = true
      }
    }
    ctx.phase = 'access'
    if (failed) {
      this.sendKongError(res, ctx, 500, 'An unexpected error occurred')
      return
    }
    if (ctx.exit) {
      this.sendExit(res, ctx)
      return
    }
    if (!ctx.service) {
      this.sendKongError(res, ctx, 503, 'no Service found with those values')
      return
    }

    // ---- proxy
    const upstream = await this.proxy(ctx, ctx.service, state)
    if (!upstream.ok) {
      this.sendKongError(res, ctx, upstream.status, upstream.message)
      return
    }
    ctx.proxied = true
    ctx.serviceResponse = upstream.response
    const headers = upstream.response.headers.filter((k) => !HOP_BY_HOP.has(k.toLowerCase()))
    for (const name of new Set(ctx.responseHeaders.lines().map(([k]) => k.toLowerCase()))) {
      headers.set(name, ctx.responseHeaders.getAll(name))
    }
    ctx.response = {
      status: upstream.response.status,
      headers,
      body: upstream.response.body,
      source: 'service',
    }

    // ---- response: only when proxied, collected plugins with a response handler
    for (const [plugin, cfg] of collectedResponse) {
      const outcome = await this.runPhaseOrLuaError(plugin, cfg, 'response', ctx, state)
      if (outcome === 'exit') {
        this.sendExit(res, ctx)
        return
      }
      if (outcome === 'lua-error') {
        this.sendKongError(res, ctx, 500, 'An unexpected error occurred')
        return
      }
    }
    const out = ctx.response
    out.headers.set('Content-Length', [String(out.body.length)])
    if (!out.headers.has('server')) out.headers.set('Server', [SERVER_HEADER])
    out.headers.set('X-Kong-Upstream-Latency', [String(ctx.upstreamLatencyMs ?? 0)])
    out.headers.set('X-Kong-Proxy-Latency', [
      String(Math.max(0, Date.now() - ctx.startTimeMs - (ctx.upstreamLatencyMs ?? 0))),
    ])
    out.headers.set('Via', [`1.1 ${SERVER_HEADER}`])
    out.headers.set('X-Kong-Request-Id', [requestId])
    this.write(res, out.status, out.headers, out.body)
  }

  private async proxy(
    ctx: RequestContext,
    service: ServiceEntity,
    state: ConfigState,
  ): Promise<
    | { ok: true; response: { status: number; headers: HeaderList; body: Buffer } }
    | { ok: false; status: number; message: string }
  > {
    const route = ctx.route
    const match = ctx.match
    if (!route || !match) return { ok: false, status: 500, message: 'An unexpected error occurred' }
    const target = this.pickTarget(service, state)
    if (!target)
      return { ok: false, status: 503, message: 'failure to get a peer from the ring-balancer' }
    const path = ctx.upstreamPath ?? upstreamPath(route, match.postfix, ctx.rawPath, service.path)
    const query = ctx.upstreamQuery ?? ctx.rawQuery
    const uri = path + (query !== undefined && query !== '' ? `?${query}` : '')
    ctx.upstreamUri = uri

    const clientHost = ctx.hostHeader
    const pluginHost = ctx.headers.get('host')
    const upstreamHost =
      pluginHost !== undefined && pluginHost !== clientHost
        ? pluginHost
        : route.preserve_host
          ? clientHost
          : target.port === (service.protocol === 'https' ? 443 : 80)
            ? target.host
            : `${target.host}:${target.port}`
    const xff = ctx.headers.get('x-forwarded-for')
    const via = ctx.headers.get('via')
    const out = new HeaderList([
      ['via', via ? `${via}, 1.1 ${SERVER_HEADER}` : `1.1 ${SERVER_HEADER}`],
      ['host', upstreamHost],
      ['connection', 'keep-alive'],
      ['x-forwarded-for', xff ? `${xff}, ${ctx.clientIp}` : ctx.clientIp],
      ['x-forwarded-proto', ctx.scheme],
      ['x-forwarded-host', ctx.host],
      ['x-forwarded-port', String(ctx.serverPort)],
      ['x-forwarded-path', ctx.rawPath],
      ...(match.strippedPrefix !== undefined && match.strippedPrefix !== '/'
        ? ([['x-forwarded-prefix', match.strippedPrefix]] as Array<[string, string]>)
        : []),
      ['x-real-ip', ctx.clientIp],
      ['x-kong-request-id', ctx.id],
    ])
    const replaced = new Set(out.lines().map(([k]) => k))
    // each line keeps its kind: a client's bytes go on unchanged, a plugin's string as UTF-8;
    // Expect is cleared as nginx's proxy module does by default (ngx_http_proxy_headers)
    for (const line of ctx.headers.headerLines()) {
      const n = line.name.toLowerCase()
      if (replaced.has(n) || HOP_BY_HOP.has(n) || n === 'expect') continue
      out.push(line)
    }
    const reqBody = ctx.upstreamBody ?? ctx.body
    const started = Date.now()
    return new Promise((resolve) => {
      const upstreamReq = http.request(
        {
          host: target.host,
          port: target.port,
          method: ctx.upstreamMethod ?? ctx.method,
          path: uri,
          headers: out.toNode(),
          setHost: false,
          ...(this.opts.upstreamAgent ? { agent: this.opts.upstreamAgent } : {}),
          timeout: service.read_timeout,
        },
        (upstreamRes) => {
          const parts: Buffer[] = []
          upstreamRes.on('data', (c: Buffer) => parts.push(c))
          upstreamRes.on('end', () => {
            ctx.upstreamLatencyMs = Date.now() - started
            resolve({
              ok: true,
              response: {
                status: upstreamRes.statusCode ?? 502,
                headers: HeaderList.fromRaw(upstreamRes.rawHeaders),
                body: Buffer.concat(parts),
              },
            })
          })
          upstreamRes.on('error', () =>
            resolve({
              ok: false,
              status: 502,
              message: 'An invalid response was received from the upstream server',
            }),
          )
        },
      )
      upstreamReq.on('timeout', () => {
        upstreamReq.destroy()
        resolve({ ok: false, status: 504, message: 'The upstream server is timing out' })
      })
      upstreamReq.on('error', () =>
        resolve({
          ok: false,
          status: 502,
          message: 'An invalid response was received from the upstream server',
        }),
      )
      upstreamReq.end(reqBody.length > 0 ? reqBody : undefined)
    })
  }

  /** Service host, or round-robin over an upstream's targets when the host names an upstream. */
  private pickTarget(
    service: ServiceEntity,
    state: ConfigState,
  ): { host: string; port: number } | undefined {
    const up = state.config.upstreams.find((u) => u.name === service.host)
    if (!up) return { host: service.host, port: service.port }
    const targets = up.targets.filter((t) => t.weight > 0)
    if (targets.length === 0) return undefined
    const i = this.rr.get(up.id) ?? 0
    this.rr.set(up.id, i + 1)
    return targets[i % targets.length]
  }

  private sendExit(res: http.ServerResponse, ctx: RequestContext): void {
    const exit = ctx.exit
    if (!exit) return
    const headers = exit.headers.clone()
    const body = exit.body ?? Buffer.alloc(0)
    headers.set('Content-Length', [String(body.length)])
    this.finishKongResponse(headers, ctx)
    ctx.response = { status: exit.status, headers, body, source: exit.source }
    this.write(res, exit.status, headers, body)
  }

  /** Kong's own error responses (404 no route, 500 unexpected, 502…) with request_id. */
  private sendKongError(
    res: http.ServerResponse,
    ctx: RequestContext,
    status: number,
    message: string,
  ): void {
    const rendered = kongErrorBody(message, ctx.id, ctx.headers.get('accept'))
    const headers = ctx.responseHeaders.clone()
    headers.set('Content-Type', [rendered.contentType])
    headers.set('Content-Length', [String(rendered.body.length)])
    this.finishKongResponse(headers, ctx)
    ctx.response = { status, headers, body: rendered.body, source: 'error' }
    this.write(res, status, headers, rendered.body)
  }

  /**
   * The answer to a head nginx refused: Kong.handle_error's page (kong/error_handlers.lua) for
   * the headers nginx had stored, Connection: close (nginx never set keepalive for it).
   */
  private sendNginxError(
    res: http.ServerResponse,
    ctx: RequestContext,
    refused: NginxRefusal,
  ): void {
    const rendered = kongErrorHandlerBody(
      refused.message,
      ctx.id,
      ctx.headers.get('accept') ?? ctx.headers.get('content-type'),
    )
    const headers = new HeaderList()
    if (rendered.contentType !== undefined) headers.set('Content-Type', [rendered.contentType])
    headers.set('Content-Length', [String(rendered.body.length)])
    headers.set('Connection', ['close'])
    this.finishKongResponse(headers, ctx)
    ctx.unexpected = true
    ctx.response = { status: refused.status, headers, body: rendered.body, source: 'error' }
    this.opts.onLog({
      level: 'info',
      plugin: 'nginx',
      message: refused.reason,
      requestId: ctx.id,
    })
    this.write(res, refused.status, headers, rendered.body)
  }

  /**
   * A request Node's parser refused (duplicate Content-Length or Transfer-Encoding, both of them
   * at once, a malformed line, a head beyond 1 MiB, a header timeout): what nginx answers for it,
   * written straight to the socket. No phase runs (Kong would run the global log handlers).
   */
  private onClientError(err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex): void {
    const inFlight = (socket as Duplex & { _httpMessage?: unknown })._httpMessage
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight) {
      socket.destroy()
      return
    }
    const head = headOfPacket(err.rawPacket)
    const refused =
      (head && nginxCheckHead(head)) ??
      (err.code === 'HPE_HEADER_OVERFLOW'
        ? refusal(494, 'client sent too large request', head?.headers.length ?? 0)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? { ...refusal(400, 'client timed out', 0), status: 408, message: 'Request timeout' }
          : refusal(400, `client sent invalid request (${err.code ?? err.message})`, 0))
    const visible = new HeaderList((head?.headers ?? []).slice(0, refused.visible))
    const id = crypto.randomBytes(16).toString('hex')
    const rendered = kongErrorHandlerBody(
      refused.message,
      id,
      visible.get('accept') ?? visible.get('content-type'),
    )
    this.opts.onLog({ level: 'info', plugin: 'nginx', message: refused.reason, requestId: id })
    const lines = [
      `HTTP/1.1 ${refused.status} ${REASONS[refused.status] ?? ''}`,
      `Date: ${new Date().toUTCString()}`,
      ...(rendered.contentType !== undefined ? [`Content-Type: ${rendered.contentType}`] : []),
      `Content-Length: ${rendered.body.length}`,
      'Connection: close',
      'X-Kong-Response-Latency: 0',
      `Server: ${SERVER_HEADER}`,
      `X-Kong-Request-Id: ${id}`,
    ]
    socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), rendered.body]))
  }

  private finishKongResponse(headers: HeaderList, ctx: RequestContext): void {
    headers.set('X-Kong-Response-Latency', [String(Date.now() - ctx.startTimeMs)])
    headers.set('Server', [SERVER_HEADER])
    headers.set('X-Kong-Request-Id', [ctx.id])
  }

  private write(res: http.ServerResponse, status: number, headers: HeaderList, body: Buffer): void {
    const reason = REASONS[status] ?? ''
    res.writeHead(status, reason, headers.toNode())
    res.end(body)
  }
}

function normalizeIp(ip: string | undefined): string {
  if (!ip) return '127.0.0.1'
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip
}

export function loadedPluginFromServer(server: PluginServer): LoadedPlugin {
  return {
    name: server.info.Name,
    priority: server.info.Priority,
    phases: new Set(server.info.Phases),
    server,
  }
}

export function builtinPlugins(): LoadedPlugin[] {
  return BUILTIN_PLUGINS.map((b) => ({
    name: b.name,
    priority: b.priority,
    phases: new Set(Object.keys(b.handlers)),
    builtin: b,
  }))
}
