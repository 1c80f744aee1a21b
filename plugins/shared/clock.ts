/** Time source, injected so that decisions about exp/nbf/iat never read the clock themselves. */
export interface Clock {
  /** Current time in milliseconds since the epoch. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** Seconds since the epoch, as JWT NumericDate values are (RFC 7519 §2). */
export function nowSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000)
}
