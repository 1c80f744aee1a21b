import type { Clock } from '../clock'

/**
 * When the revocation lookup's circuit opens and how it closes again, in milliseconds. There is
 * no setting for it: everything follows from `timeout_ms` and the constants below.
 */
export interface BreakerPolicy {
  /** A failed lookup counts towards opening only when it cost at least this long. */
  readonly slowMs: number
  /** Slow failures in a row (no answer between them) that open the circuit… */
  readonly tripAfter: number
  /** …each at most this long after the previous one. */
  readonly tripWindowMs: number
  /** While open: the pause after a failed probe before the next one. */
  readonly coolDownMs: number
}

/** Two slow failures in a row open the circuit: one can be a GC pause or a lost packet. */
export const TRIP_AFTER = 2
/**
 * …when the second fails within 5 s (plus `timeout_ms`: a failure is known only that long after
 * its lookup started) of the first.
 */
export const TRIP_WINDOW_MS = 5000
/** One probe at a time, and at most one per second after a failed one. */
export const COOL_DOWN_MS = 1000

/**
 * The policy for lookups bounded by `timeoutMs`. A failure "costs" when it took at least half
 * of `timeoutMs` (a timeout, the first connection never coming, an error that came late); a
 * refused connection is already answered at once and does not count.
 * @throws TypeError when `timeoutMs` is not a positive integer.
 */
export function breakerPolicy(timeoutMs: number): BreakerPolicy {
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError(`timeoutMs must be a positive integer, got ${String(timeoutMs)}`)
  }
  return {
    slowMs: Math.ceil(timeoutMs / 2),
    tripAfter: TRIP_AFTER,
    tripWindowMs: TRIP_WINDOW_MS + timeoutMs,
    coolDownMs: COOL_DOWN_MS,
  }
}

export type BreakerState = 'closed' | 'open'

/**
 * The circuit breaker of the revocation lookup, as a state machine with no I/O and no timers:
 * the caller reports what happened and asks what to do, the clock is injected.
 *
 * - closed: lookups go to Redis. {@link BreakerPolicy.tripAfter} slow failures in a row, each
 *   within {@link BreakerPolicy.tripWindowMs} of the previous, open it.
 * - open: lookups are answered by the failure policy at once. One probe at a time asks Redis;
 *   the first may start as soon as the circuit opens, the next one
 *   {@link BreakerPolicy.coolDownMs} after a failed one. The first answer, from a probe or from
 *   a lookup that was still in flight, closes it.
 */
export class CircuitBreaker {
  #state: BreakerState = 'closed'
  #streak = 0
  #lastSlowAt = Number.NEGATIVE_INFINITY
  #openedAt: number | undefined
  #probing = false
  #nextProbeAt = 0

  constructor(
    readonly policy: BreakerPolicy,
    private readonly clock: Clock,
  ) {}

  get state(): BreakerState {
    return this.#state
  }

  /** When the circuit opened (clock milliseconds); undefined while closed. */
  get openedAt(): number | undefined {
    return this.#openedAt
  }

  /** Whether a probe has been started and not yet reported. */
  get probing(): boolean {
    return this.#probing
  }

  /** Redis answered (a lookup or a probe). Returns true when this closed an open circuit. */
  recordAnswer(): boolean {
    this.#streak = 0
    this.#lastSlowAt = Number.NEGATIVE_INFINITY
    if (this.#state === 'closed') return false
    this.#state = 'closed'
    this.#openedAt = undefined
    return true
  }

  /**
   * A lookup failed as an outage after `elapsedMs`. Returns true when this failure opened the
   * circuit. Failures reported while open (lookups that were in flight) change nothing.
   */
  recordFailure(elapsedMs: number): boolean {
    if (this.#state === 'open' || elapsedMs < this.policy.slowMs) return false
    const now = this.clock.now()
    this.#streak = now - this.#lastSlowAt <= this.policy.tripWindowMs ? this.#streak + 1 : 1
    this.#lastSlowAt = now
    if (this.#streak < this.policy.tripAfter) return false
    this.#state = 'open'
    this.#openedAt = now
    this.#nextProbeAt = now
    return true
  }

  /**
   * Claims the probe: true when the circuit is open, no probe is in flight and the cool-down
   * after the last failed probe has passed. The caller then runs one probe and reports it with
   * {@link probeAnswered} or {@link probeFailed}.
   */
  tryStartProbe(): boolean {
    if (this.#state === 'closed' || this.#probing) return false
    if (this.clock.now() < this.#nextProbeAt) return false
    this.#probing = true
    return true
  }

  /** The probe got an answer: closes the circuit. Returns true when it was open. */
  probeAnswered(): boolean {
    this.#probing = false
    return this.recordAnswer()
  }

  /** The probe failed: the next one is due a cool-down from now. */
  probeFailed(): void {
    this.#probing = false
    this.#nextProbeAt = this.clock.now() + this.policy.coolDownMs
  }

  /**
   * Milliseconds until {@link tryStartProbe} will succeed (0: now); undefined while closed or
   * while a probe is in flight.
   */
  probeDelayMs(): number | undefined {
    if (this.#state === 'closed' || this.#probing) return undefined
    return Math.max(0, this.#nextProbeAt - this.clock.now())
  }
}
