/**
 * Corrections to kong-pdk 0.6.0's plugin server, applied at start by pluginserver/main.ts. The
 * server Kong talks to stays kong-pdk's own (`server.js`, `listener.js`, pinned at 0.6.0):
 * these wrap two of its methods and change nothing on the wire. Each is written as the change
 * we would propose upstream (docs/kong-pdk-event-leak.patch is the same fix as a diff of
 * server.js).
 *
 * The event leak (protocol doc §10). `Server.step` deletes an event's entry from `this.events`
 * only when a Step returns the final "ret". Two kinds of event never get such a Step, so their
 * entry (a PipePair with its two queues, about 1.8 kB) stays forever:
 * - an event that ends in `kong.response.exit` or `kong.response.error`: Kong runs the exit and
 *   never steps that event again (protocol doc §2.7);
 * - an event whose very first message is "ret" (a phase that made no PDK call): HandleEvent
 *   returns it, Kong stops, and HandleEvent never deletes.
 * The fix: whenever HandleEvent or a Step hands Kong a message after which Kong sends nothing
 * more for that event, the entry is deleted there and then.
 */

/** The messages after which Kong sends no further Step for the event. */
const NON_RETURN_METHODS: ReadonlySet<string> = new Set([
  'kong.response.exit',
  'kong.response.error',
])

export function endsEvent(data: unknown): boolean {
  if (data === 'ret') return true
  if (typeof data !== 'object' || data === null) return false
  const method = (data as { Method?: unknown }).Method
  return typeof method === 'string' && NON_RETURN_METHODS.has(method)
}

/** The part of kong-pdk's `Server` the fix touches. */
export interface PdkServerClass {
  prototype: PdkServer
}
interface Reply {
  readonly Data: unknown
  readonly EventId: number
}
interface PdkServer {
  events: Map<number, unknown>
  HandleEvent: (this: PdkServer, event: unknown) => Promise<Reply>
  step: (this: PdkServer, data: unknown, isError: boolean) => Promise<Reply>
}

const FIXED = Symbol.for('kong-jwt-toolkit.event-leak-fixed')

/** Wraps HandleEvent and step so that a finished event's entry is deleted. Idempotent. */
export function fixEventLeak(Server: PdkServerClass): void {
  const proto = Server.prototype as PdkServer & { [FIXED]?: true }
  if (proto[FIXED] === true) return
  const handleEvent = proto.HandleEvent
  const step = proto.step
  proto.HandleEvent = async function (event) {
    const reply = await handleEvent.call(this, event)
    if (endsEvent(reply.Data)) this.events.delete(reply.EventId)
    return reply
  }
  proto.step = async function (data, isError) {
    const reply = await step.call(this, data, isError)
    if (endsEvent(reply.Data)) this.events.delete(reply.EventId)
    return reply
  }
  proto[FIXED] = true
}

/**
 * The per-message debug string. kong-pdk's listener builds `JSON.stringify(args)` of every RPC
 * for `logger.debug` whatever the log level, so every Step carrying a header map or a token is
 * serialized for nothing (about 7 % of the plugin server's CPU on consumer-jwt's allowed path).
 * Unless debug logging is on (`-v`), each decoded request's argument list gets a `toJSON` that
 * stands in for the serialization. The arguments passed to the server are untouched: `toJSON`
 * is a non-enumerable own property, invisible to the spread that passes them on.
 * Upstream, the fix is to guard that line with the logger's level.
 */
export interface MsgpackModule {
  Decoder: { prototype: { decode: (this: unknown, buffer: unknown) => unknown } }
}

const QUIET = Symbol.for('kong-jwt-toolkit.rpc-debug-quiet')
const elided = (): string => '(args not logged below debug level)'

export function skipDebugSerialization(msgpack: MsgpackModule): void {
  const proto = msgpack.Decoder.prototype as MsgpackModule['Decoder']['prototype'] & {
    [QUIET]?: true
  }
  if (proto[QUIET] === true) return
  const decode = proto.decode
  proto.decode = function (buffer) {
    const message = decode.call(this, buffer)
    // A request is [0, msgid, method, params]; only its params are serialized by the listener.
    if (Array.isArray(message) && message[0] === 0 && Array.isArray(message[3])) {
      Object.defineProperty(message[3], 'toJSON', { value: elided })
    }
    return message
  }
  proto[QUIET] = true
}

/**
 * Instance ids that a respawned server never hands out again. kong-pdk numbers instances from
 * 0 in every process, and Kong keeps the ids it was given per nginx worker; after a respawn a
 * worker that has not yet met "no plugin instance" (the reset reaches other workers through an
 * asynchronous worker event) may send an old id that now names ANOTHER configuration, e.g. the
 * consumer-jwt of another route with other scopes (protocol doc §2.5, "restart hazard"). Ids
 * that start at a random offset in each process make an old id unknown to the new process, so
 * Kong restarts the instance instead. Kong keeps ids as Lua numbers: exact below 2^53.
 */
export interface PdkServerIds {
  instanceID: number
}

export function startIdsAt(server: PdkServerIds, first: number): void {
  if (!Number.isSafeInteger(first) || first < 0) throw new RangeError(`bad first id ${first}`)
  server.instanceID = first
}
