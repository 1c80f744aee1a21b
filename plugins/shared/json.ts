/**
 * `JSON.stringify` typed as it behaves: undefined for undefined, a function or a symbol, where
 * lib.d.ts says it always returns a string.
 */
export function jsonText(value: unknown): string | undefined {
  return JSON.stringify(value)
}
