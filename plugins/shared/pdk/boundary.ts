import { isPluginError, PluginError, type ErrorCode } from '../errors'
import type { Logger } from '../logger'
import type { RefusalLog } from '../refusal-log'
import type { Pdk } from './port'
import { refusal } from './respond'

/** A config parsed once at instance start; a bad one is kept as an error, never thrown. */
export type ParsedConfig<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: PluginError }

export function tryParse<T>(parse: (raw: unknown) => T, raw: unknown): ParsedConfig<T> {
  try {
    return { ok: true, value: parse(raw) }
  } catch (error) {
    return {
      ok: false,
      error: isPluginError(error)
        ? error
        : new PluginError('ERR_CONFIG_INVALID', String(error), { cause: error }),
    }
  }
}

export interface PhaseOptions {
  readonly plugin: string
  readonly realm: string
  readonly logger: Logger
  /** Where refusals are counted or written (log_refusals); never a line per request by default. */
  readonly refusals: RefusalLog
  /** A phase still running after this many ms is ended with a 500 (Kong would proxy at 60 s). */
  readonly deadlineMs?: number
}

const DEFAULT_DEADLINE_MS = 10_000

class AfterExit extends Error {}

/** Bad configs already logged (one line per instance). */
const reported = new WeakSet()

/**
 * Every phase of every plugin runs through here (handlers pass `adaptKong(kong)`). kong-pdk swallows exceptions and Kong then
 * proxies the request (recordings F18), so this boundary turns everything that escapes `fn`
 * into our own response: a PluginError into its catalogue refusal, anything else into a 500
 * ERR_INTERNAL, a bad config into a 500 ERR_CONFIG_INVALID. Nothing runs after an exit: the
 * port handed to `fn` refuses further calls once the request has been ended.
 */
export async function runPhase<T>(
  real: Pdk,
  config: ParsedConfig<T>,
  options: PhaseOptions,
  fn: (pdk: Pdk, config: T) => Promise<void>,
): Promise<void> {
  let exited = false
  const end = (code: ErrorCode, error: PluginError | undefined): void => {
    if (exited) return
    exited = true
    const r = refusal(code, options.realm, error?.challenge)
    real.response.exit(r.status, r.body, r.headers)
  }
  const pdk = guard(
    real,
    () => exited,
    () => {
      exited = true
    },
  )

  if (!config.ok) {
    // Once per instance, not per request: every request of this instance gets the same 500.
    // Also in Kong's own error log, at [error], where operators look (one round trip, once).
    if (!reported.has(config)) {
      reported.add(config)
      const line = `${options.plugin}: refusing every request: ${config.error.message}`
      options.logger.error(line)
      try {
        await pdk.log.err(line)
      } catch {
        // The 500 below matters more than the log line.
      }
    }
    end('ERR_CONFIG_INVALID', config.error)
    return
  }

  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), options.deadlineMs ?? DEFAULT_DEADLINE_MS)
    timer.unref()
  })
  // Called inside a promise, so a callback that throws synchronously is caught like any other
  // error (were it thrown here, runPhase would reject without an exit and Kong would proxy).
  const work = Promise.resolve().then(() => fn(pdk, config.value))
  try {
    const outcome = await Promise.race([work.then(() => 'done' as const), deadline])
    if (outcome === 'deadline') {
      // The request is answered; whatever the late work does now is logged, never dropped.
      work.catch((error: unknown) => {
        if (error instanceof AfterExit) return
        options.logger.error(
          `${options.plugin}: error after the phase deadline: ${error instanceof Error ? error.message : String(error)}`,
        )
      })
      options.logger.error(
        `${options.plugin}: phase exceeded ${options.deadlineMs ?? DEFAULT_DEADLINE_MS} ms`,
      )
      end('ERR_INTERNAL', undefined)
    }
  } catch (error) {
    if (error instanceof AfterExit) return
    if (isPluginError(error)) {
      options.refusals.record(error)
      end(error.code, error)
      return
    }
    options.logger.error(
      `${options.plugin}: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    )
    end('ERR_INTERNAL', undefined)
  } finally {
    clearTimeout(timer)
  }
}

/** A port whose calls fail once the request has been ended, and whose exit marks it ended. */
function guard(real: Pdk, isExited: () => boolean, markExited: () => void): Pdk {
  // Each member is looked up when called, inside the phase's try: a port without it (a
  // hand-made one) then fails that call, closed, instead of failing runPhase before its try.
  const check =
    <A extends unknown[], R>(f: () => (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      isExited() ? Promise.reject(new AfterExit()) : f()(...args)
  return {
    request: {
      getHeaders: check(() => real.request.getHeaders),
      getHeader: check(() => real.request.getHeader),
      getQuery: check(() => real.request.getQuery),
      getMethod: check(() => real.request.getMethod),
    },
    client: {
      loadConsumer: check(() => real.client.loadConsumer),
      authenticate: check(() => real.client.authenticate),
      getConsumer: check(() => real.client.getConsumer),
      getCredential: check(() => real.client.getCredential),
    },
    router: { getRoute: check(() => real.router.getRoute) },
    nginx: { getVar: check(() => real.nginx.getVar) },
    serviceRequest: {
      setHeaders: check(() => real.serviceRequest.setHeaders),
      setRawQuery: check(() => real.serviceRequest.setRawQuery),
    },
    response: {
      exit: (status, body, headers) => {
        if (isExited()) return
        markExited()
        real.response.exit(status, body, headers)
      },
    },
    ctx: { get: check(() => real.ctx.get), set: check(() => real.ctx.set) },
    log: { err: check(() => real.log.err) },
  }
}
