import type {
  HeaderPatch,
  KongConsumer,
  KongCredential,
  KongRoute,
  MultiMap,
  Pdk,
} from '../../plugins/shared/pdk/port'

export interface FakeRequest {
  method?: string
  /** The request target as the client sent it (path and query), `/` by default. */
  path?: string
  /** Header names are lower-cased like Kong's get_headers; values are lists. */
  headers?: Record<string, string | string[]>
  query?: Record<string, string | string[]>
}

export interface FakeExit {
  status: number
  body: Record<string, unknown>
  headers: Record<string, string>
}

/**
 * A typed fake of the PDK calls our plugins make (plugins/shared/pdk/port.ts), so it cannot
 * drift from what handlers call. It records every call (one call = one Kong round trip),
 * the exit, the upstream header patches, the authenticated consumer and kong.ctx.shared.
 * Like real Kong it answers nothing after an exit: later calls never resolve.
 */
export class FakeKong implements Pdk {
  readonly calls: string[] = []
  exitResult: FakeExit | undefined
  readonly upstreamHeaders: Record<string, string | readonly string[]> = {}
  rawQuery: string | undefined
  authenticated: { consumer: KongConsumer | null; credential: KongCredential | null } | undefined
  readonly shared = new Map<string, unknown>()
  readonly consumers: KongConsumer[] = []
  route: KongRoute | undefined
  /** Set to make the named call throw, e.g. to prove a phase fails closed. */
  failOn: string | undefined
  private readonly req: Required<FakeRequest>

  constructor(req: FakeRequest = {}) {
    this.req = {
      method: req.method ?? 'GET',
      path: req.path ?? '/',
      headers: req.headers ?? {},
      query: req.query ?? {},
    }
  }

  /**
   * Kong-to-server requests of the phase: the HandleEvent plus one Step per answered call.
   * An exit is the last reply and is never answered (protocol doc §2.7).
   */
  get roundTrips(): number {
    return this.calls.filter((c) => c !== 'kong.response.exit').length + 1
  }

  private async call<T>(name: string, result: () => T): Promise<T> {
    this.calls.push(name)
    if (this.exitResult !== undefined) return new Promise<T>(() => undefined)
    if (this.failOn === name) throw new Error(`fake failure in ${name}`)
    return result()
  }

  private static multi(map: Record<string, string | string[]>): MultiMap {
    return Object.fromEntries(
      Object.entries(map).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v : [v]]),
    )
  }

  readonly request = {
    getHeaders: (max = 100) =>
      this.call('kong.request.get_headers', () => {
        // Like Kong: at most `max` header lines, the rest silently dropped.
        let budget = max
        const out: Record<string, string[]> = {}
        for (const [name, values] of Object.entries(FakeKong.multi(this.req.headers))) {
          const kept = values.slice(0, Math.max(0, budget))
          budget -= kept.length
          if (kept.length > 0) out[name] = kept
        }
        return out
      }),
    getHeader: (name: string) =>
      this.call(
        'kong.request.get_header',
        () => FakeKong.multi(this.req.headers)[name.toLowerCase()]?.[0],
      ),
    getQuery: () => this.call('kong.request.get_query', () => FakeKong.multi(this.req.query)),
    getMethod: () => this.call('kong.request.get_method', () => this.req.method),
  }

  readonly client = {
    loadConsumer: (idOrUsername: string, byUsername: boolean) =>
      this.call('kong.client.load_consumer', () =>
        this.consumers.find(
          (c) => c.id === idOrUsername || (byUsername && c.username === idOrUsername),
        ),
      ),
    authenticate: (consumer: KongConsumer, credential: KongCredential | null) =>
      this.call('kong.client.authenticate', () => {
        this.authenticated = { consumer, credential }
      }),
    getConsumer: () =>
      this.call('kong.client.get_consumer', () => this.authenticated?.consumer ?? undefined),
    getCredential: (): Promise<unknown> =>
      this.call('kong.client.get_credential', () => this.authenticated?.credential ?? undefined),
  }

  readonly router = {
    getRoute: () => this.call('kong.router.get_route', () => this.route),
  }

  /** nginx variables as Kong's `kong.nginx.get_var` answers them (the ones our plugins read). */
  readonly nginx = {
    getVar: (name: string) =>
      this.call('kong.nginx.get_var', (): string | undefined => {
        const target = this.req.path
        switch (name) {
          case 'request':
            return `${this.req.method} ${target} HTTP/1.1`
          case 'request_method':
            return this.req.method
          case 'request_uri':
            return target
          case 'uri':
            return target.split('?')[0]
          default:
            return undefined
        }
      }),
  }

  readonly serviceRequest = {
    setHeaders: (headers: HeaderPatch) =>
      this.call('kong.service.request.set_headers', () => {
        for (const [k, v] of Object.entries(headers)) this.upstreamHeaders[k.toLowerCase()] = v
      }),
    setRawQuery: (query: string) =>
      this.call('kong.service.request.set_raw_query', () => {
        this.rawQuery = query
      }),
  }

  readonly response = {
    exit: (
      status: number,
      body: Record<string, unknown>,
      headers: Record<string, string>,
    ): void => {
      this.calls.push('kong.response.exit')
      if (this.exitResult === undefined) this.exitResult = { status, body, headers }
    },
  }

  readonly ctx = {
    get: (key: string) => this.call('kong.ctx.shared.get', () => this.shared.get(key)),
    set: (key: string, value: unknown) =>
      this.call('kong.ctx.shared.set', () => {
        this.shared.set(key, value)
      }),
  }

  /** Lines written to Kong's error log with kong.log.err. */
  readonly kongErrors: string[] = []

  readonly log = {
    err: (message: string) =>
      this.call('kong.log.err', () => {
        this.kongErrors.push(message)
      }),
  }

  /** What the upstream would receive for a header: undefined when cleared or never set. */
  upstreamHeader(name: string): string | undefined {
    const v = this.upstreamHeaders[name.toLowerCase()]
    if (v === undefined) return undefined
    if (typeof v === 'string') return v
    return v.length === 0 ? undefined : v.join(', ')
  }
}
