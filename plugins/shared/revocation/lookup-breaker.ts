import type { Clock } from '../clock'
import type { Logger } from '../logger'
import { CircuitBreaker, type BreakerPolicy, type BreakerState } from './circuit-breaker'
import { isRevocationUnavailable } from './revocation-store'

/** Runs `fn` once after `ms`; must not keep the process alive. */
export type Schedule = (fn: () => void, ms: number) => void

const unrefTimeout: Schedule = (fn, ms) => {
  setTimeout(fn, ms).unref()
}

export interface LookupBreakerDeps {
  readonly clock: Clock
  readonly logger: Logger
  /** Names the Redis deployment in log lines (never with credentials). */
  readonly redis: string
  /** Tests step the probes themselves; default: an unref'd setTimeout. */
  readonly schedule?: Schedule
}

/**
 * The {@link CircuitBreaker} of one shared Redis connection, driven: it runs the probes in the
 * background (one at a time, never on a request's time), tells lookups in flight that the
 * circuit opened, and logs each transition once.
 *
 * A probe is the read of the last lookup that failed, under the same `timeout_ms`: it asks
 * Redis exactly what the requests need. Its answer is thrown away (never cached). A probe that
 * fails with a programming error closes the circuit and logs the error: a bug must reach the
 * request path as a 500, never hide behind an open circuit (which under fail_open passes).
 */
export class LookupBreaker {
  readonly #machine: CircuitBreaker
  readonly #schedule: Schedule
  readonly #onOpen = new Set<() => void>()
  #probe: (() => Promise<unknown>) | undefined
  #lastFailure = ''
  #refused = 0
  #scheduled = false

  constructor(
    policy: BreakerPolicy,
    private readonly deps: LookupBreakerDeps,
  ) {
    this.#machine = new CircuitBreaker(policy, deps.clock)
    this.#schedule = deps.schedule ?? unrefTimeout
  }

  get state(): BreakerState {
    return this.#machine.state
  }

  /**
   * Whether a lookup may go to Redis now. false: the circuit is open, answer by the failure
   * policy at once ({@link openReason} says why).
   */
  admit(): boolean {
    if (this.#machine.state === 'closed') return true
    this.#refused++
    return false
  }

  /** Why lookups are being answered without Redis, for the unavailable error's message. */
  get openReason(): string {
    const since = this.#machine.openedAt
    const ms = since === undefined ? 0 : this.deps.clock.now() - since
    return `Redis circuit open for ${ms} ms after ${this.#machine.policy.tripAfter} slow failures in a row (last: ${this.#lastFailure}); probing in the background`
  }

  /** A lookup got its answer from Redis. */
  answered(): void {
    if (this.#machine.recordAnswer()) this.logClosed('a lookup answered')
  }

  /**
   * A lookup failed as an outage after `elapsedMs`. `probe` repeats its read under the time
   * bound; the latest one is what the probes run.
   */
  failed(elapsedMs: number, reason: string, probe: () => Promise<unknown>): void {
    if (this.#machine.state === 'open') return
    this.#probe = probe
    this.#lastFailure = reason
    if (!this.#machine.recordFailure(elapsedMs)) return
    this.#refused = 0
    const { tripAfter, coolDownMs } = this.#machine.policy
    this.deps.logger.warn(
      `revocation lookups to ${this.deps.redis}: circuit open after ${tripAfter} slow failures in a row (last: ${reason}); answering by on_unavailable at once, probing Redis in the background (${coolDownMs} ms after each failed probe)`,
    )
    for (const listener of [...this.#onOpen]) listener()
    this.scheduleProbe()
  }

  /** Calls `listener` if the circuit opens before the returned function is called. */
  onOpen(listener: () => void): () => void {
    this.#onOpen.add(listener)
    return () => this.#onOpen.delete(listener)
  }

  private scheduleProbe(): void {
    const delay = this.#machine.probeDelayMs()
    if (delay === undefined || this.#scheduled) return
    this.#scheduled = true
    this.#schedule(() => {
      this.#scheduled = false
      this.runProbe()
    }, delay)
  }

  private runProbe(): void {
    const probe = this.#probe
    if (probe === undefined || !this.#machine.tryStartProbe()) {
      this.scheduleProbe()
      return
    }
    Promise.resolve()
      .then(probe)
      .then(
        () => {
          if (this.#machine.probeAnswered()) this.logClosed('a probe answered')
        },
        (error: unknown) => {
          if (isRevocationUnavailable(error)) {
            this.#lastFailure = error.message
            this.#machine.probeFailed()
            this.scheduleProbe()
            return
          }
          this.#machine.probeAnswered()
          const detail = error instanceof Error ? (error.stack ?? error.message) : String(error)
          this.deps.logger.error(
            `revocation lookups to ${this.deps.redis}: circuit closed because the probe failed with a bug, not an outage: ${detail}`,
          )
        },
      )
  }

  private logClosed(why: string): void {
    this.deps.logger.info(
      `revocation lookups to ${this.deps.redis}: circuit closed, ${why}; ${this.#refused} lookup(s) were answered by on_unavailable meanwhile`,
    )
  }
}
