import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { PluginError } from '../../../../plugins/shared/errors'
import { runPhase, tryParse, type PhaseOptions } from '../../../../plugins/shared/pdk/boundary'
import type { Pdk } from '../../../../plugins/shared/pdk/port'
import { refusal } from '../../../../plugins/shared/pdk/respond'
import { EveryRefusal } from '../../../../plugins/shared/refusal-log'
import { FakeKong } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'

// runPhase is the fail-closed boundary of every phase: kong-pdk swallows what escapes a phase
// and Kong then proxies the request, so nothing may escape it without an exit.
function options(extra: Partial<PhaseOptions> = {}) {
  const logger = new MemoryLogger()
  return {
    logger,
    options: {
      plugin: 'test',
      realm: 'kong',
      logger,
      refusals: new EveryRefusal(logger),
      ...extra,
    } satisfies PhaseOptions,
  }
}

const ok = tryParse(() => ({ n: 1 }), {})

describe('boundary: (runPhase fails closed)', () => {
  it('answers a callback that throws synchronously with 500 ERR_INTERNAL instead of rejecting', async () => {
    const kong = new FakeKong()
    const { options: o, logger } = options()
    await expect(
      runPhase(kong, ok, o, () => {
        throw new Error('thrown before any await')
      }),
    ).resolves.toBeUndefined()
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body.code).toBe('ERR_INTERNAL')
    expect(logger.text()).toContain('thrown before any await')
  })

  it('answers 500 when the port lacks a member the phase calls, instead of rejecting before its try', async () => {
    const kong = new FakeKong()
    const partial = {
      request: kong.request,
      client: kong.client,
      router: kong.router,
      serviceRequest: kong.serviceRequest,
      response: kong.response,
      ctx: kong.ctx,
      log: kong.log,
      nginx: undefined,
    } as unknown as Pdk
    const { options: o } = options()
    await expect(
      runPhase(partial, ok, o, async (pdk) => {
        await pdk.nginx.getVar('request')
      }),
    ).resolves.toBeUndefined()
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body.code).toBe('ERR_INTERNAL')
  })

  it('answers a PluginError with its catalogue refusal and records it', async () => {
    const kong = new FakeKong()
    const { options: o, logger } = options()
    await runPhase(kong, ok, o, async () => {
      await Promise.resolve()
      throw new PluginError('ERR_TOKEN_EXPIRED', 'exp 1 is past')
    })
    expect(kong.exitResult?.status).toBe(401)
    expect(kong.exitResult?.body).toEqual({ message: 'Token expired', code: 'ERR_TOKEN_EXPIRED' })
    expect(logger.text()).toContain('denied ERR_TOKEN_EXPIRED: exp 1 is past')
  })

  it('ends a phase still running at the deadline with 500, and logs an error it throws later', async () => {
    const kong = new FakeKong()
    const { options: o, logger } = options({ deadlineMs: 20 })
    let fail: (e: Error) => void = () => undefined
    await runPhase(
      kong,
      ok,
      o,
      () =>
        new Promise<void>((_, reject) => {
          fail = reject
        }),
    )
    expect(kong.exitResult?.status).toBe(500)
    expect(logger.text()).toContain('phase exceeded 20 ms')
    fail(new Error('late failure'))
    await new Promise((r) => setImmediate(r))
    expect(logger.text()).toContain('error after the phase deadline: late failure')
  })

  it('answers a PluginError thrown synchronously with its catalogue refusal, not a 500', async () => {
    const kong = new FakeKong()
    const { options: o } = options()
    await expect(
      runPhase(kong, ok, o, () => {
        throw new PluginError('ERR_TOKEN_MISSING', 'no Authorization header')
      }),
    ).resolves.toBeUndefined()
    expect(kong.exitResult?.status).toBe(401)
    expect(kong.exitResult?.body.code).toBe('ERR_TOKEN_MISSING')
  })

  it('answers at the deadline without waiting for the work, and refuses the PDK to work that goes on after it', async () => {
    const kong = new FakeKong()
    const { options: o, logger } = options({ deadlineMs: 20 })
    let resume: () => void = () => undefined
    let late: Promise<unknown> | undefined
    const t0 = performance.now()
    await runPhase(kong, ok, o, async (pdk: Pdk) => {
      await new Promise<void>((r) => {
        resume = r
      })
      pdk.response.exit(403, { message: 'too late' }, {})
      late = pdk.request.getHeaders()
      await late
    })
    // Resolved at the deadline, the work still parked: a 500, not the work's answer.
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body.code).toBe('ERR_INTERNAL')
    resume()
    await new Promise((r) => setImmediate(r))
    // The late exit is ignored and the late call rejects without reaching Kong…
    await expect(late).rejects.toBeInstanceOf(Error)
    expect(kong.calls).toEqual(['kong.response.exit'])
    expect(kong.exitResult?.status).toBe(500)
    // …and that refusal is not reported as an error of its own.
    await new Promise((r) => setImmediate(r))
    expect(logger.lines.map((l) => l.message)).toEqual(['test: phase exceeded 20 ms'])
  })

  it('lets nothing run after an exit: the next PDK call rejects and the phase ends quietly', async () => {
    const kong = new FakeKong()
    const { options: o, logger } = options()
    let after: unknown
    await runPhase(kong, ok, o, async (pdk: Pdk) => {
      pdk.response.exit(418, { message: 'teapot' }, {})
      try {
        await pdk.request.getHeaders()
      } catch (error) {
        after = error
        throw error
      }
    })
    expect(after).toBeInstanceOf(Error)
    expect(kong.calls).toEqual(['kong.response.exit'])
    expect(kong.exitResult?.status).toBe(418)
    expect(logger.lines).toEqual([])
  })

  it('exits once even when the callback exits and then throws', async () => {
    const kong = new FakeKong()
    const { options: o } = options()
    await runPhase(kong, ok, o, (pdk: Pdk) => {
      pdk.response.exit(403, { message: 'no' }, {})
      throw new Error('after the exit')
    })
    expect(kong.calls.filter((c) => c === 'kong.response.exit')).toHaveLength(1)
    expect(kong.exitResult?.status).toBe(403)
  })

  it('answers every request of a broken config with 500 ERR_CONFIG_INVALID, logging it once', async () => {
    const broken = tryParse(() => {
      throw new PluginError('ERR_CONFIG_INVALID', 'rules: nope')
    }, {})
    const { options: o, logger } = options()
    const requests: FakeKong[] = []
    for (let i = 0; i < 3; i++) {
      const kong = new FakeKong()
      await runPhase(kong, broken, o, () => Promise.resolve())
      expect(kong.exitResult?.body.code).toBe('ERR_CONFIG_INVALID')
      requests.push(kong)
    }
    expect(logger.lines.filter((l) => l.message.includes('rules: nope'))).toHaveLength(1)
    // In Kong's own error log too, once: one kong.log.err on the first request only.
    expect(requests.map((k) => k.calls)).toEqual([
      ['kong.log.err', 'kong.response.exit'],
      ['kong.response.exit'],
      ['kong.response.exit'],
    ])
    expect(requests[0]?.kongErrors).toEqual([
      'test: refusing every request: ERR_CONFIG_INVALID: rules: nope',
    ])
  })
})

describe('respond: (RFC 6750 challenges)', () => {
  it('quotes realm and scope as safe printable ASCII: no quote, backslash or control character gets through', () => {
    const r = refusal('ERR_SCOPE_INSUFFICIENT', 'a"b\\c\r\nd€', { scope: 'orders:read "x"' })
    expect(r.headers['WWW-Authenticate']).toBe(
      'Bearer realm="abcd", error="insufficient_scope", error_description="Insufficient scope", scope="orders:read x"',
    )
  })

  it('keeps every challenge a valid quoted-string whatever the realm and scope hold (any string)', () => {
    // RFC 9110 §5.6.4 quoted-string without quoted-pairs: printable ASCII except " and \.
    const param = '[a-z_]+="[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"'
    const header = new RegExp(`^Bearer ${param}(, ${param})*$`)
    // Any character, with the ones quoting must handle drawn often.
    const unit = fc.oneof(
      fc.constantFrom('"', '\\', '\t', '\r', '\n', '\0', '\x7f', '€', '😀'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }),
    )
    const text = fc.string({ unit })
    fc.assert(
      fc.property(text, text, (realm, scope) => {
        const value = refusal('ERR_SCOPE_INSUFFICIENT', realm, { scope }).headers[
          'WWW-Authenticate'
        ]
        expect(value).toMatch(header)
        // What is kept of the realm is its printable ASCII, in order, minus " and \.
        const kept = realm.replace(/[^\x20-\x7e]|["\\]/g, '')
        expect(value?.startsWith(`Bearer realm="${kept}", `)).toBe(true)
      }),
    )
  })

  it('drops tab, DEL and other controls from a quoted value', () => {
    expect(refusal('ERR_TOKEN_MISSING', 'a\tb\x7fc\x00d\x1be').headers['WWW-Authenticate']).toBe(
      'Bearer realm="abcde"',
    )
  })

  it('sends a challenge without error when no token was presented, and none at all for a 5xx', () => {
    expect(refusal('ERR_TOKEN_MISSING', 'kong').headers).toEqual({
      'WWW-Authenticate': 'Bearer realm="kong"',
    })
    expect(refusal('ERR_REVOCATION_UNAVAILABLE', 'kong').headers).toEqual({})
  })
})
