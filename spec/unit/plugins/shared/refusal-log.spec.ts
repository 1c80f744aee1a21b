import { describe, expect, it } from '@jest/globals'
import { ConsumerJwtHandler } from '../../../../plugins/consumer-jwt/handler'
import { PluginError } from '../../../../plugins/shared/errors'
import {
  EveryRefusal,
  parseLogRefusals,
  refusalLog,
  RefusalSummary,
  type Scheduler,
} from '../../../../plugins/shared/refusal-log'
import { FakeKong } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'
import { HS_SECRET } from '../../../helpers/tokens'

/** A scheduler whose timers run only when the test says so. */
class ManualScheduler implements Scheduler {
  readonly pending: (() => void)[] = []
  after(_ms: number, fn: () => void): void {
    this.pending.push(fn)
  }
  runAll(): void {
    for (const fn of this.pending.splice(0)) fn()
  }
}

const refusal = (code: 'ERR_SIGNATURE_INVALID' | 'ERR_TOKEN_EXPIRED', detail: string) =>
  new PluginError(code, detail)

describe('refusal log: (summary by default, every on request)', () => {
  it('writes nothing while refusals are counted, then one line with counts per code and the first detail of each', () => {
    const logger = new MemoryLogger()
    const timers = new ManualScheduler()
    const summary = new RefusalSummary(logger, 60_000, timers)
    for (let i = 0; i < 5; i++) summary.record(refusal('ERR_SIGNATURE_INVALID', `forged #${i}`))
    summary.record(refusal('ERR_TOKEN_EXPIRED', 'exp 12 is past'))
    expect(logger.lines).toEqual([])
    expect(timers.pending).toHaveLength(1)
    timers.runAll()
    expect(logger.lines).toHaveLength(1)
    expect(logger.lines[0]?.message).toBe(
      'refused 6 request(s) in 60 s: ERR_SIGNATURE_INVALID 5, ERR_TOKEN_EXPIRED 1; first of each: ERR_SIGNATURE_INVALID: forged #0 | ERR_TOKEN_EXPIRED: exp 12 is past',
    )
  })

  it('starts a new interval with the next refusal and writes nothing for a quiet one', () => {
    const logger = new MemoryLogger()
    const timers = new ManualScheduler()
    const summary = new RefusalSummary(logger, 1000, timers)
    summary.record(refusal('ERR_TOKEN_EXPIRED', 'a'))
    timers.runAll()
    summary.flush()
    expect(logger.lines).toHaveLength(1)
    summary.record(refusal('ERR_TOKEN_EXPIRED', 'b'))
    expect(timers.pending).toHaveLength(1)
    timers.runAll()
    expect(logger.lines[1]?.message).toContain('refused 1 request(s) in 1 s: ERR_TOKEN_EXPIRED 1')
  })

  it('writes one line per refusal, detail included, in every mode', () => {
    const logger = new MemoryLogger()
    const every = new EveryRefusal(logger)
    every.record(refusal('ERR_TOKEN_EXPIRED', 'exp 12 is past'))
    expect(logger.text()).toBe('info: denied ERR_TOKEN_EXPIRED: exp 12 is past')
  })

  it('reads log_refusals, summary by default, and refuses anything else', () => {
    expect(parseLogRefusals({})).toBe('summary')
    expect(parseLogRefusals({ log_refusals: 'every' })).toBe('every')
    expect(() => parseLogRefusals({ log_refusals: 'all' })).toThrow(/log_refusals/)
  })

  it('writes no line per refused request with a default consumer-jwt config', async () => {
    const logger = new MemoryLogger()
    const handler = new ConsumerJwtHandler(
      {
        credentials: [
          { key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET },
        ],
      },
      { env: {}, logger },
    )
    for (let i = 0; i < 20; i++) {
      const kong = new FakeKong({ headers: { authorization: 'Bearer not.a.token' } })
      await handler.accessWith(kong)
      expect(kong.exitResult?.status).toBe(401)
    }
    expect(logger.lines.filter((l) => l.message.includes('denied'))).toEqual([])
    // ...and counts them in the plugin's summary, written by the next flush.
    const summary = refusalLog('consumer-jwt', 'summary', new MemoryLogger())
    if (!(summary instanceof RefusalSummary)) throw new Error('summary mode gives a RefusalSummary')
    summary.flush()
    expect(logger.lines.map((l) => l.message)).toEqual([
      expect.stringMatching(
        /^refused 20 request\(s\) in 60 s: ERR_TOKEN_MALFORMED 20; first of each: /,
      ),
    ])
  })

  it('also writes a 5xx refusal at once, at most once per 10 s per code, with the count suppressed meanwhile', () => {
    const logger = new MemoryLogger()
    let now = 0
    const summary = new RefusalSummary(logger, 60_000, new ManualScheduler(), () => now)
    const outage = new PluginError('ERR_REVOCATION_UNAVAILABLE', 'redis timeout')
    summary.record(outage)
    summary.record(outage)
    summary.record(refusal('ERR_TOKEN_EXPIRED', 'not an outage'))
    now = 10_000
    summary.record(outage)
    expect(logger.lines).toEqual([
      { level: 'warn', message: 'refused ERR_REVOCATION_UNAVAILABLE: redis timeout' },
      {
        level: 'warn',
        message: 'refused ERR_REVOCATION_UNAVAILABLE: redis timeout [+1 more since]',
      },
    ])
  })
})
