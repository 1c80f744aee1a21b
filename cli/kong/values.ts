/** A plain record (not null, not an array, not bytes), as Kong's Lua `type(v) == "table"` map. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}
