/**
 * Per-request state the emulated Kong keeps (what nginx variables, ngx.ctx and kong.ctx hold in Kong).
 */
import type { ConsumerEntity, RouteEntity, ServiceEntity } from './declarative-config'
import type { RouteMatch } from './router'

export type Phase = 'rewrite' | 'access' | 'response' | 'log'

/** Ordered header lines, like nginx keeps them; names compared case-insensitively. */
export class HeaderList {
  private entries: Array<[string, string]>

  constructor(entries: ReadonlyArray<readonly [string, string]> = []) {
    this.entries = entries.map(([k, v]) => [k, v])
  }

  static fromRaw(raw: readonly string[]): HeaderList {
    const out: Array<[string, string]> = []
    for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] ?? '', raw[i + 1] ?? ''])
    return new HeaderList(out)
  }

  get(name: string): string | undefined {
    const n = name.toLowerCase()
    return this.entries.find(([k]) => k.toLowerCase() === n)?.[1]
  }

  getAll(name: string): string[] {
    const n = name.toLowerCase()
    return this.entries.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v)
  }

  has(name: string): boolean {
    return this.get(name) !== undefined
  }

  /** Replaces every value of `name` (in place of the first occurrence); an empty list removes it. */
  set(name: string, values: readonly string[]): void {
    const n = name.toLowerCase()
    const idx = this.entries.findIndex(([k]) => k.toLowerCase() === n)
    const fresh: Array<[string, string]> = values.map((v) => [name, v])
    if (idx < 0) {
      this.entries.push(...fresh)
      return
    }
    const after = this.entries.slice(idx + 1).filter(([k]) => k.toLowerCase() !== n)
    this.entries = [...this.entries.slice(0, idx), ...fresh, ...after]
  }

  add(name: string, value: string): void {
    this.entries.push([name, value])
  }

  delete(name: string): void {
    this.set(name, [])
  }

  lines(): ReadonlyArray<readonly [string, string]> {
    return this.entries
  }

  clone(): HeaderList {
    return new HeaderList(this.entries)
  }

  /** ngx.req.get_headers(max): lower-cased names, a value list per name, at most `max` lines. */
  toMultimap(max?: number): Record<string, string[]> {
    const out: Record<string, string[]> = {}
    const lines = max !== undefined && max > 0 ? this.entries.slice(0, max) : this.entries
    for (const [k, v] of lines) {
      const n = k.toLowerCase()
      ;(out[n] ??= []).push(v)
    }
    return out
  }

  /** Node's OutgoingHttpHeaders shape (one entry per name, arrays for repeats). */
  toNode(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {}
    const canonical = new Map<string, string>()
    for (const [k, v] of this.entries) {
      const n = k.toLowerCase()
      const key = canonical.get(n) ?? k
      canonical.set(n, key)
      const prev = out[key]
      out[key] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
    }
    return out
  }
}

export interface ExitResponse {
  readonly status: number
  readonly body?: Buffer
  readonly headers: HeaderList
  readonly source: 'exit' | 'error'
}

export interface ServiceResponse {
  readonly status: number
  readonly headers: HeaderList
  readonly body: Buffer
}

export interface LogEntry {
  readonly level: string
  readonly plugin: string
  readonly message: string
  readonly requestId?: string
  readonly phase?: Phase
}

export interface CurrentPlugin {
  readonly id: string
  readonly name: string
}

export class RequestContext {
  phase: Phase = 'rewrite'
  match?: RouteMatch
  route?: RouteEntity
  service?: ServiceEntity
  /** kong.client.authenticate: the consumer / credential tables as Kong stored them. */
  consumer?: unknown
  credential?: unknown
  authenticatedConsumer?: ConsumerEntity
  /** Set by kong.service.request.* */
  upstreamPath?: string
  upstreamQuery?: string
  upstreamMethod?: string
  upstreamScheme?: string
  upstreamBody?: Buffer
  /** Headers to send to the client, set through kong.response.set_header & co. before the response. */
  readonly responseHeaders = new HeaderList()
  exit?: ExitResponse
  serviceResponse?: ServiceResponse
  /** The response as it stands (after response-phase changes): status, headers, source. */
  response?: {
    status: number
    headers: HeaderList
    body: Buffer
    source: 'service' | 'exit' | 'error'
  }
  readonly ctxShared = new Map<string, unknown>()
  readonly ngxCtx = new Map<string, unknown>()
  currentPlugin?: CurrentPlugin
  proxied = false
  /** A Lua error or failed instance start produced Kong's 500 (get_source → "error"). */
  unexpected = false
  upstreamUri?: string
  upstreamLatencyMs?: number

  constructor(
    readonly id: string,
    readonly startTimeMs: number,
    readonly method: string,
    readonly rawPath: string,
    readonly rawQuery: string | undefined,
    readonly httpVersion: number,
    /** The request headers; kong.service.request.* changes them, as ngx.req.set_header does. */
    readonly headers: HeaderList,
    readonly body: Buffer,
    readonly clientIp: string,
    readonly clientPort: number,
    readonly serverPort: number,
    readonly scheme: 'http' | 'https',
    /** The Host header as the client sent it. */
    readonly hostHeader: string,
  ) {}

  get host(): string {
    const h = this.hostHeader
    if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1)
    return (h.split(':')[0] ?? '').toLowerCase()
  }
}
