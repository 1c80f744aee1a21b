/**
 * The narrow, honestly typed subset of Kong's PDK that our plugins call. Every method here is
 * one RPC round trip to Kong (protocol doc §2.3), so handlers call as few as they can.
 *
 * Types follow what Kong 3.x really sends (protocol doc §2.6, recordings' PDK-RESULTS.md):
 * only the first return value arrives, `nil` arrives as `undefined`, header maps are
 * `{lower-cased name: string[]}`.
 */

/** `{name: [values]}` as Kong's fixed-up `get_headers`/`get_query` return it. */
export type MultiMap = Readonly<Record<string, readonly string[]>>

/** A Kong consumer entity as `kong.client.load_consumer` returns it. */
export interface KongConsumer {
  readonly id: string
  readonly username?: string | null
  readonly custom_id?: string | null
  readonly tags?: readonly string[] | null
  readonly [key: string]: unknown
}

/**
 * The consumer in what `kong.client.load_consumer`/`get_consumer` returned, or undefined when
 * there is none: `nil` arrives as undefined (or as null, a decoded MessagePack nil), and anything
 * without a string `id` is not a consumer we can use.
 */
export function asKongConsumer(value: unknown): KongConsumer | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const consumer = value as { readonly id?: unknown }
  return typeof consumer.id === 'string' ? (value as KongConsumer) : undefined
}

/** The credential table handed to `kong.client.authenticate`. */
export interface KongCredential {
  readonly id: string
  readonly consumer_id?: string
  readonly [key: string]: unknown
}

/**
 * The credential another auth plugin authenticated with, as Lua tests it (`if
 * kong.client.get_credential() then`): any table is one; nil (undefined or null once decoded)
 * and anything else is none. A null read as a credential would skip our authentication.
 */
export function asKongCredential(value: unknown): Readonly<Record<string, unknown>> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Readonly<Record<string, unknown>>)
    : undefined
}

/** Route entity fields we read (`kong.router.get_route`). */
export interface KongRoute {
  readonly id: string
  readonly name?: string | null
  readonly [key: string]: unknown
}

/**
 * Header values for `kong.service.request.set_headers`: a string sets, an empty array removes
 * the header (lua-nginx-module's `ngx.req.set_header` with an empty table clears it), so one
 * call can both set and clear.
 */
export type HeaderPatch = Record<string, string | readonly string[]>

export interface Pdk {
  readonly request: {
    /**
     * At most `max` header lines (Kong's default, and the cap without an argument, is 100;
     * the largest is 1000). Kong drops the rest and its "truncated" flag never reaches JS.
     */
    getHeaders: (max?: number) => Promise<MultiMap>
    getHeader: (name: string) => Promise<string | undefined>
    getQuery: () => Promise<MultiMap>
    getMethod: () => Promise<string>
  }
  readonly client: {
    /** The entity as Kong sent it (nil: undefined or null); {@link asKongConsumer} reads it. */
    loadConsumer: (idOrUsername: string, byUsername: boolean) => Promise<unknown>
    /** Access phase only. A null credential authenticates an anonymous consumer. */
    authenticate: (consumer: KongConsumer, credential: KongCredential | null) => Promise<void>
    /** The entity as Kong sent it (nil: undefined or null); {@link asKongConsumer} reads it. */
    getConsumer: () => Promise<unknown>
    /** The entity as Kong sent it (nil: undefined or null); {@link asKongCredential} reads it. */
    getCredential: () => Promise<unknown>
  }
  readonly router: {
    getRoute: () => Promise<KongRoute | undefined>
  }
  readonly nginx: {
    /**
     * An nginx variable (`kong.nginx.get_var`, i.e. `ngx.var[name]`), undefined when unset.
     * `request` is the raw request line, `GET /orders/1?x=y HTTP/1.1`: method and path in one
     * round trip.
     */
    getVar: (name: string) => Promise<string | undefined>
  }
  readonly serviceRequest: {
    setHeaders: (headers: HeaderPatch) => Promise<void>
    setRawQuery: (query: string) => Promise<void>
  }
  readonly response: {
    /**
     * Ends the request. Kong never answers this call and runs nothing more of the phase
     * (protocol doc §2.7): callers must `return` right after it.
     */
    exit: (status: number, body: Record<string, unknown>, headers: Record<string, string>) => void
  }
  readonly ctx: {
    get: (key: string) => Promise<unknown>
    set: (key: string, value: unknown) => Promise<void>
  }
  readonly log: {
    /**
     * Kong's own error log at [error] (`kong.log.err`), where operators look; the plugin
     * server's stderr lands at [info], hidden at Kong's default `notice` level. One round trip:
     * used only once per instance, for a broken config.
     */
    err: (message: string) => Promise<void>
  }
}
