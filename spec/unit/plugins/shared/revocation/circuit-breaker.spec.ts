import { describe, expect, it } from '@jest/globals'
import {
  breakerPolicy,
  CircuitBreaker,
  COOL_DOWN_MS,
  TRIP_WINDOW_MS,
} from '../../../../../plugins/shared/revocation/circuit-breaker'

/** timeout_ms 250: a failure is slow from 125 ms on. */
function breaker() {
  const t = { now: 1_000_000 }
  const b = new CircuitBreaker(breakerPolicy(250), { now: () => t.now })
  return { b, t }
}

describe('revocation circuit breaker: (state machine)', () => {
  it('derives its thresholds from timeout_ms and fixed constants', () => {
    expect(breakerPolicy(250)).toEqual({
      slowMs: 125,
      tripAfter: 2,
      tripWindowMs: 5250,
      coolDownMs: 1000,
    })
    expect(breakerPolicy(11).slowMs).toBe(6)
  })

  it('rejects a timeout that is not a positive integer with a TypeError naming it', () => {
    for (const bad of [0, -5, 2.5, Number.NaN]) {
      expect(() => breakerPolicy(bad)).toThrow(
        new TypeError(`timeoutMs must be a positive integer, got ${String(bad)}`),
      )
    }
  })

  it('stays closed after one slow failure and opens on the second in a row', () => {
    const { b, t } = breaker()
    expect(b.recordFailure(250)).toBe(false)
    expect(b.state).toBe('closed')
    t.now += 10
    expect(b.recordFailure(250)).toBe(true)
    expect(b.state).toBe('open')
    expect(b.openedAt).toBe(t.now)
  })

  it('never opens on fast failures (a refused connection is answered at once anyway)', () => {
    const { b } = breaker()
    for (let i = 0; i < 10; i++) expect(b.recordFailure(124)).toBe(false)
    expect(b.state).toBe('closed')
  })

  it('counts a failure as slow from half of timeout_ms on', () => {
    const { b } = breaker()
    b.recordFailure(125)
    expect(b.recordFailure(125)).toBe(true)
  })

  it('does not let a fast failure between two slow ones break the streak: no answer came', () => {
    const { b } = breaker()
    b.recordFailure(250)
    b.recordFailure(1)
    expect(b.recordFailure(250)).toBe(true)
  })

  it('starts over after an answer between two slow failures', () => {
    const { b } = breaker()
    b.recordFailure(250)
    expect(b.recordAnswer()).toBe(false)
    expect(b.recordFailure(250)).toBe(false)
    expect(b.state).toBe('closed')
  })

  it('starts over when the second slow failure comes more than the window after the first', () => {
    const { b, t } = breaker()
    b.recordFailure(250)
    t.now += TRIP_WINDOW_MS + 250 + 1
    expect(b.recordFailure(250)).toBe(false)
    t.now += TRIP_WINDOW_MS + 250
    expect(b.recordFailure(250)).toBe(true)
  })

  it('lets the first probe start as soon as it opens, and only one at a time', () => {
    const { b } = breaker()
    expect(b.tryStartProbe()).toBe(false) // closed: nothing to probe
    b.recordFailure(250)
    b.recordFailure(250)
    expect(b.probeDelayMs()).toBe(0)
    expect(b.tryStartProbe()).toBe(true)
    expect(b.probing).toBe(true)
    expect(b.probeDelayMs()).toBeUndefined()
    expect(b.tryStartProbe()).toBe(false)
  })

  it('waits the cool-down after a failed probe before the next one', () => {
    const { b, t } = breaker()
    b.recordFailure(250)
    b.recordFailure(250)
    b.tryStartProbe()
    t.now += 250
    b.probeFailed()
    expect(b.state).toBe('open')
    expect(b.probeDelayMs()).toBe(COOL_DOWN_MS)
    t.now += COOL_DOWN_MS - 1
    expect(b.tryStartProbe()).toBe(false)
    expect(b.probeDelayMs()).toBe(1)
    t.now += 1
    expect(b.tryStartProbe()).toBe(true)
  })

  it('closes when a probe answers, and then needs two new slow failures to open again', () => {
    const { b } = breaker()
    b.recordFailure(250)
    b.recordFailure(250)
    b.tryStartProbe()
    expect(b.probeAnswered()).toBe(true)
    expect(b.state).toBe('closed')
    expect(b.openedAt).toBeUndefined()
    expect(b.probeDelayMs()).toBeUndefined()
    expect(b.recordFailure(250)).toBe(false)
    expect(b.recordFailure(250)).toBe(true)
  })

  it('closes when a lookup that was still in flight gets its answer', () => {
    const { b } = breaker()
    b.recordFailure(250)
    b.recordFailure(250)
    b.tryStartProbe()
    expect(b.recordAnswer()).toBe(true)
    expect(b.state).toBe('closed')
    // The probe reports late: it changes nothing.
    b.probeFailed()
    expect(b.state).toBe('closed')
    expect(b.tryStartProbe()).toBe(false)
  })

  it('ignores failures reported while open: they neither reopen nor delay the probe', () => {
    const { b, t } = breaker()
    b.recordFailure(250)
    b.recordFailure(250)
    const opened = b.openedAt
    t.now += 100
    expect(b.recordFailure(250)).toBe(false)
    expect(b.openedAt).toBe(opened)
    expect(b.probeDelayMs()).toBe(0)
  })
})
