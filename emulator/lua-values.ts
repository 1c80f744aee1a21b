/**
 * How values look after a round trip through Kong's Lua side.
 *
 * Kong decodes the plugin server's MessagePack into Lua tables and encodes its answers with
 * lua-MessagePack. That loses information a JS value has: a nil map value disappears, an empty
 * table has no "array or map" flag and is packed as an empty array (PDK-RESULTS.md "Encoding rules").
 * These helpers reproduce that so values stored through the PDK (ctx.shared, authenticate) come back
 * the way Kong would return them.
 */

/** A Lua-side error raised while Kong serves a PDK call (phase check, bad argument, unencodable result). */
export class LuaError extends Error {
  override readonly name = 'LuaError'
}

/** Marker: the PDK result cannot be packed by Kong (a nil where Kong forces a msgpack bin). */
export const UNENCODABLE: unique symbol = Symbol('unencodable')

/** A value that went from the plugin server (msgpack) into a Lua table and back. */
export function viaLua(value: unknown): unknown {
  if (value === null || value === undefined) return undefined
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8')
  if (Array.isArray(value)) {
    // unpack() of a Lua sequence stops at the first nil (a "border"); keep that prefix
    const out: unknown[] = []
    for (const v of value) {
      if (v === null || v === undefined) break
      out.push(viaLua(v))
    }
    return out
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(
      ([, v]) => v !== null && v !== undefined,
    )
    if (entries.length === 0) return []
    const out: Record<string, unknown> = {}
    for (const [k, v] of entries) out[k] = viaLua(v)
    return out
  }
  return value
}

/** A JSON document decoded by cjson: null stays (cjson.null is packed as nil), empty objects become []. */
export function jsonViaLua(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(jsonViaLua)
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
    if (entries.length === 0) return []
    const out: Record<string, unknown> = {}
    for (const [k, v] of entries) out[k] = jsonViaLua(v)
    return out
  }
  return value
}

/** `unpack(args)`: Kong spreads Args positionally; a nil in the middle truncates the call (doc §2.6). */
export function unpackArgs(args: unknown): unknown[] {
  if (!Array.isArray(args)) return args === undefined || args === null ? [] : [args]
  const out: unknown[] = []
  for (const a of args) {
    if (a === null || a === undefined) break
    out.push(a)
  }
  return out
}

export { isPlainObject } from '../cli/kong/values'
