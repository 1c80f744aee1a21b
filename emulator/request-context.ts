/**
 * Per-request state the emulated Kong keeps (what nginx variables, ngx.ctx and kong.ctx hold in Kong).
 */
import type { ConsumerEntity, RouteEntity, ServiceEntity } from '../cli/kong/declarative-config'
import type { RouteMatch } from '../cli/kong/router'

export type Phase = 'rewrite' | 'access' | 'response' | 'log'

/**
 * One header line. nginx and Lua hold header values as bytes; Node hands the emulator strings, so
 * each line remembers which kind it holds:
 * - `wire`: the bytes as they came off a socket (client request, upstream response), one char
 *   per byte — Node's latin1 view of them;
 * - text (`wire: false`): a string set by a plugin (MessagePack str) or by Kong itself; Kong sends
 *   such a Lua string as its UTF-8 bytes.
 */
export interface HeaderLine {
  readonly name: string
  readonly value: string
  readonly wire: boolean
}

/** The UTF-8 bytes of `text`, one char per byte: what Node must be given to write those bytes. */
export function utf8AsLatin1(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1')
}

/** Bytes held one char per byte, decoded as UTF-8 (what a plugin server reads from a Lua string). */
export function latin1AsUtf8(bytes: string): string {
  // plain ASCII needs no decoding
  return /^[\x00-\x7f]*$/.test(bytes) ? bytes : Buffer.from(bytes, 'latin1').toString('utf8')
}

/** Ordered header lines, like nginx keeps them; names compared case-insensitively. */
export class HeaderList {
  private entries: HeaderLine[]

  /** Lines set by Kong or a plugin (text); `fromRaw` for lines read off a socket. */
  constructor(entries: ReadonlyArray<readonly [string, string]> = []) {
    this.entries = entries.map(([name, value]) => ({ name, value, wire: false }))
  }

  /** Node's rawHeaders (name, value, name, value, …): wire bytes. */
  static fromRaw(raw: readonly string[]): HeaderList {
    const out = new HeaderList()
    for (let i = 0; i + 1 < raw.length; i += 2)
      out.entries.push({ name: raw[i] ?? '', value: raw[i + 1] ?? '', wire: true })
    return out
  }

  get(name: string): string | undefined {
    const n = name.toLowerCase()
    return this.entries.find((e) => e.name.toLowerCase() === n)?.value
  }

  getAll(name: string): string[] {
    const n = name.toLowerCase()
    return this.entries.filter((e) => e.name.toLowerCase() === n).map((e) => e.value)
  }

  /** get(), as a plugin reads it through the PDK: wire bytes decoded as UTF-8. */
  getText(name: string): string | undefined {
    const n = name.toLowerCase()
    const line = this.entries.find((e) => e.name.toLowerCase() === n)
    return line === undefined ? undefined : textOf(line)
  }

  has(name: string): boolean {
    return this.get(name) !== undefined
  }

  /** Replaces every value of `name` (in place of the first occurrence); an empty list removes it. */
  set(name: string, values: readonly string[]): void {
    const n = name.toLowerCase()
    const idx = this.entries.findIndex((e) => e.name.toLowerCase() === n)
    const fresh: HeaderLine[] = values.map((value) => ({ name, value, wire: false }))
    if (idx < 0) {
      this.entries.push(...fresh)
      return
    }
    const after = this.entries.slice(idx + 1).filter((e) => e.name.toLowerCase() !== n)
    this.entries = [...this.entries.slice(0, idx), ...fresh, ...after]
  }

  add(name: string, value: string): void {
    this.entries.push({ name, value, wire: false })
  }

  /** Appends a line as it is (keeps its kind). */
  push(line: HeaderLine): void {
    this.entries.push(line)
  }

  delete(name: string): void {
    this.set(name, [])
  }

  lines(): ReadonlyArray<readonly [string, string]> {
    return this.entries.map((e) => [e.name, e.value] as const)
  }

  /** The lines with their kind. */
  headerLines(): readonly HeaderLine[] {
    return this.entries
  }

  clone(): HeaderList {
    return this.filter(() => true)
  }

  /** The lines whose name passes `keep`, each keeping its kind. */
  filter(keep: (name: string) => boolean): HeaderList {
    const out = new HeaderList()
    out.entries = this.entries.filter((e) => keep(e.name))
    return out
  }

  /** ngx.req.get_headers(max): lower-cased names, a value list per name, at most `max` lines. */
  toMultimap(max?: number): Record<string, string[]> {
    return this.multimap(max, (e) => e.value)
  }

  /** toMultimap(), as a plugin reads it through the PDK: wire bytes decoded as UTF-8. */
  toTextMultimap(max?: number): Record<string, string[]> {
    return this.multimap(max, textOf)
  }

  private multimap(
    max: number | undefined,
    view: (e: HeaderLine) => string,
  ): Record<string, string[]> {
    const out: Record<string, string[]> = {}
    const lines = max !== undefined && max > 0 ? this.entries.slice(0, max) : this.entries
    for (const e of lines) {
      const n = e.name.toLowerCase()
      ;(out[n] ??= []).push(view(e))
    }
    return out
  }

  /**
   * Node's OutgoingHttpHeaders shape (one entry per name, arrays for repeats), with every value in
   * the form Node writes byte for byte (latin1): wire lines as they came, text lines as their
   * UTF-8 bytes — what nginx sends for a Lua string. Node would otherwise refuse characters above
   * U+00FF (ERR_INVALID_CHAR) and write U+0080–U+00FF as one Latin-1 byte.
   */
  toNode(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {}
    const canonical = new Map<string, string>()
    for (const e of this.entries) {
      const n = e.name.toLowerCase()
      const key = canonical.get(n) ?? e.name
      canonical.set(n, key)
      const v = e.wire ? e.value : utf8AsLatin1(e.value)
      const prev = out[key]
      out[key] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
    }
    return out
  }
}

function textOf(line: HeaderLine): string {
  return line.wire ? latin1AsUtf8(line.value) : line.value
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
