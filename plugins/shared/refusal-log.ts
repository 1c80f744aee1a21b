import { CATALOGUE, type ErrorCode, type PluginError } from './errors'
import type { Logger } from './logger'
import { logRefusalsField } from './schema/kong-fields'
import { readRecord } from './schema/read'

/**
 * How refusals reach Kong's log. Each line a plugin server prints costs Kong's worker a read
 * and a log write, so a flood of bad tokens must not print a line per request:
 * - `summary` (default): counted per code, one line per interval per plugin, with the detail
 *   of the first refusal of each code in that interval (a sample);
 * - `every`: one line per refusal with its detail, for debugging a client.
 */
export const REFUSAL_LOG_MODES = logRefusalsField.one_of
export type RefusalLogMode = (typeof REFUSAL_LOG_MODES)[number]

export const REFUSAL_SUMMARY_INTERVAL_MS = 60_000

export interface RefusalLog {
  record(error: PluginError): void
}

export interface Scheduler {
  /** Runs `fn` once after `ms`; must not keep the process alive. */
  after(ms: number, fn: () => void): void
}

const unrefTimer: Scheduler = {
  after: (ms, fn) => {
    setTimeout(fn, ms).unref()
  },
}

/** The least time between two immediate lines for one 5xx code (an outage under load). */
export const OUTAGE_LINE_INTERVAL_MS = 10_000

/**
 * Counts per code over one interval, then writes one line and starts over on the next refusal.
 * A 5xx refusal (Redis or a JWKS endpoint down, a broken config, a bug) is not the client's
 * doing: it is also written at once as a warning, at most once per 10 s per code, so an outage
 * shows in Kong's log without waiting for the minute's summary.
 */
export class RefusalSummary implements RefusalLog {
  #counts = new Map<ErrorCode, { n: number; sample: string }>()
  #open = false
  readonly #lastOutageLine = new Map<ErrorCode, { at: number; suppressed: number }>()

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = REFUSAL_SUMMARY_INTERVAL_MS,
    private readonly scheduler: Scheduler = unrefTimer,
    private readonly now: () => number = Date.now,
  ) {}

  record(error: PluginError): void {
    if (CATALOGUE[error.code].status >= 500) this.#outageLine(error)
    const entry = this.#counts.get(error.code)
    if (entry !== undefined) entry.n++
    else this.#counts.set(error.code, { n: 1, sample: error.message })
    if (this.#open) return
    this.#open = true
    this.scheduler.after(this.intervalMs, () => this.flush())
  }

  #outageLine(error: PluginError): void {
    const t = this.now()
    const last = this.#lastOutageLine.get(error.code)
    if (last !== undefined && t - last.at < OUTAGE_LINE_INTERVAL_MS) {
      last.suppressed++
      return
    }
    const more =
      last !== undefined && last.suppressed > 0 ? ` [+${last.suppressed} more since]` : ''
    this.#lastOutageLine.set(error.code, { at: t, suppressed: 0 })
    this.logger.warn(`refused ${error.message}${more}`)
  }

  /** Writes the line for the interval so far (nothing when there was no refusal). */
  flush(): void {
    this.#open = false
    const counts = [...this.#counts.entries()].sort((a, b) => b[1].n - a[1].n)
    this.#counts = new Map()
    if (counts.length === 0) return
    const total = counts.reduce((n, [, e]) => n + e.n, 0)
    const seconds = Math.round(this.intervalMs / 1000)
    this.logger.info(
      `refused ${total} request(s) in ${seconds} s: ${counts.map(([code, e]) => `${code} ${e.n}`).join(', ')}; first of each: ${counts.map(([, e]) => e.sample).join(' | ')}`,
    )
  }
}

/** One line per refusal, with its detail. */
export class EveryRefusal implements RefusalLog {
  constructor(private readonly logger: Logger) {}
  record(error: PluginError): void {
    this.logger.info(`denied ${error.message}`)
  }
}

const summaries = new Map<string, RefusalSummary>()

/**
 * The refusal log of a plugin in this process. Summaries are per plugin, not per instance:
 * Kong starts an instance per plugin configuration (route-level instances, every config push),
 * and one line per plugin and interval is what an operator reads.
 */
export function refusalLog(plugin: string, mode: RefusalLogMode, logger: Logger): RefusalLog {
  if (mode === 'every') return new EveryRefusal(logger)
  let summary = summaries.get(plugin)
  if (summary === undefined) {
    summary = new RefusalSummary(logger)
    summaries.set(plugin, summary)
  }
  return summary
}

/**
 * Reads `log_refusals` from a config Kong sent (default summary).
 * @throws PluginError ERR_CONFIG_INVALID for any other value.
 */
export function parseLogRefusals(raw: Readonly<Record<string, unknown>>): RefusalLogMode {
  return readRecord(raw, { log_refusals: logRefusalsField }).read('log_refusals')
}
