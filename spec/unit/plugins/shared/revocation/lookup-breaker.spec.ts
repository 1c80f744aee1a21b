import { describe, expect, it } from '@jest/globals'
import { JwtRevocationHandler } from '../../../../../plugins/jwt-revocation/handler'
import { breakerPolicy } from '../../../../../plugins/shared/revocation/circuit-breaker'
import { LookupBreaker } from '../../../../../plugins/shared/revocation/lookup-breaker'
import { RedisRevocationStore } from '../../../../../plugins/shared/revocation/redis-revocation-store'
import { isRevocationUnavailable } from '../../../../../plugins/shared/revocation/revocation-store'
import { FakeKong } from '../../../../helpers/fake-kong'
import { MemoryLogger } from '../../../../helpers/logger'
import { mint, secretKey } from '../../../../helpers/tokens'

/**
 * What the fake Redis does with each read, in order (then 'answer'):
 * - slow: fails after timeout_ms (the fake clock moves on by it), as a timeout does;
 * - answer: nothing revoked;
 * - hang: never answers;
 * - bug: a TypeError, as a programming error in the read would.
 */
type Behaviour = 'slow' | 'answer' | 'hang' | 'bug'

const TIMEOUT_MS = 250

/** A store on a fake Redis, with a breaker on a fake clock whose probes the test runs itself. */
function rig(options: { cacheTtlMs?: number; timeoutMs?: number } = {}) {
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS
  const t = { now: 1_000_000 }
  const clock = { now: () => t.now }
  const plan: Behaviour[] = []
  const reads: string[][] = []
  const client = {
    status: 'ready',
    eval: (_script: string, _n: number, ...keys: string[]): Promise<(string | null)[]> => {
      reads.push(keys)
      switch (plan.shift() ?? 'answer') {
        case 'slow':
          t.now += timeoutMs
          return Promise.reject(new Error('Command timed out'))
        case 'answer':
          return Promise.resolve(keys.map(() => null))
        case 'hang':
          return new Promise(() => undefined)
        case 'bug':
          return Promise.reject(new TypeError('bug in the read'))
      }
    },
  }
  const redis = {
    client,
    subscribe: (_channel: string, listener: { onLive(live: boolean): void }) =>
      listener.onLive(true),
  } as unknown as ConstructorParameters<typeof RedisRevocationStore>[0]
  const probes: { fn: () => void; ms: number }[] = []
  const logger = new MemoryLogger()
  const breaker = new LookupBreaker(breakerPolicy(timeoutMs), {
    clock,
    logger,
    redis: 'redis://fake',
    schedule: (fn, ms) => probes.push({ fn, ms }),
  })
  const store = new RedisRevocationStore(redis, {
    prefix: 'p:',
    timeoutMs,
    cacheTtlMs: options.cacheTtlMs ?? 0,
    clock,
    breaker,
  })
  /** Runs the scheduled probe and lets it settle. */
  const runProbe = async (): Promise<number> => {
    const next = probes.shift()
    if (next === undefined) throw new Error('no probe scheduled')
    next.fn()
    await new Promise((r) => setImmediate(r))
    return next.ms
  }
  return { store, breaker, client, plan, reads, probes, runProbe, logger, t }
}

const jti = (id: string) => ({ kind: 'jti', jti: id }) as const

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected the lookup to fail')
    },
    (e: unknown) => e,
  )
}

/** Opens the breaker the way a frozen Redis does: two lookups in a row time out. */
async function open(r: ReturnType<typeof rig>): Promise<void> {
  r.plan.push('slow', 'slow')
  await failure(r.store.lookup([jti('a')]))
  await failure(r.store.lookup([jti('b')]))
  expect(r.breaker.state).toBe('open')
}

describe('revocation lookup breaker: (store and probes)', () => {
  it('answers unavailable at once, without asking Redis, after two lookups in a row timed out', async () => {
    const r = rig()
    r.plan.push('slow')
    await failure(r.store.lookup([jti('a')]))
    expect(r.breaker.state).toBe('closed')
    await open(r)
    const before = r.reads.length
    const error = await failure(r.store.lookup([jti('c')]))
    expect(isRevocationUnavailable(error)).toBe(true)
    expect((error as Error).message).toMatch(/circuit open/)
    expect(r.reads.length).toBe(before)
    expect(r.logger.lines).toContainEqual({
      level: 'warn',
      message: expect.stringMatching(/redis:\/\/fake: circuit open after 2 slow failures/),
    })
  })

  it('does not open on failures that were answered at once (a lost connection)', async () => {
    const r = rig()
    expect(await r.store.lookup([jti('a')])).toEqual([undefined])
    // Once connected, a client that lost its connection fails a lookup before any read.
    r.client.status = 'reconnecting'
    for (let i = 0; i < 5; i++) {
      expect(isRevocationUnavailable(await failure(r.store.lookup([jti(`x${i}`)])))).toBe(true)
    }
    expect(r.breaker.state).toBe('closed')
  })

  it('keeps serving what the live absence cache already knows, and only that, while open', async () => {
    const r = rig({ cacheTtlMs: 60_000 })
    expect(await r.store.lookup([jti('known')])).toEqual([undefined])
    await open(r)
    const before = r.reads.length
    expect(await r.store.lookup([jti('known')])).toEqual([undefined])
    expect(isRevocationUnavailable(await failure(r.store.lookup([jti('known'), jti('new')])))).toBe(
      true,
    )
    expect(r.reads.length).toBe(before)
  })

  it('abandons lookups in flight when the circuit opens instead of letting them wait out timeout_ms', async () => {
    // A minute of timeout_ms: the unit test times out long before, unless the lookup is abandoned.
    const r = rig({ timeoutMs: 60_000 })
    r.plan.push('hang', 'slow', 'slow')
    const inFlight = failure(r.store.lookup([jti('h')]))
    await failure(r.store.lookup([jti('a')]))
    await failure(r.store.lookup([jti('b')]))
    const error = await inFlight
    expect(isRevocationUnavailable(error)).toBe(true)
    expect((error as Error).message).toMatch(/abandoned, Redis circuit open/)
  })

  it('probes one at a time in the background, the read that failed, a cool-down after each failed probe', async () => {
    const r = rig()
    await open(r)
    expect(r.probes.map((p) => p.ms)).toEqual([0])
    r.plan.push('slow')
    const reads = r.reads.length
    await r.runProbe()
    expect(r.reads.slice(reads)).toEqual([['p:jti:b']])
    expect(r.breaker.state).toBe('open')
    expect(r.probes.map((p) => p.ms)).toEqual([1000])
    r.t.now += 1000
    r.plan.push('hang')
    await r.runProbe()
    expect(r.probes).toEqual([]) // nothing more while this one hangs
    expect(r.breaker.state).toBe('open')
  })

  it('closes when a probe answers, logs it, and lookups go to Redis again', async () => {
    const r = rig()
    await open(r)
    await r.runProbe()
    expect(r.breaker.state).toBe('closed')
    expect(r.probes).toEqual([])
    const reads = r.reads.length
    expect(await r.store.lookup([jti('z')])).toEqual([undefined])
    expect(r.reads.length).toBe(reads + 1)
    expect(r.logger.lines).toContainEqual({
      level: 'info',
      message: expect.stringMatching(/circuit closed, a probe answered/),
    })
  })

  it('closes when a probe fails with a bug, so the bug reaches requests as a 500 even under fail_open', async () => {
    const r = rig()
    const logger = new MemoryLogger()
    const handler = new JwtRevocationHandler(
      { on_unavailable: 'fail_open', check: ['jti'], timeout_ms: TIMEOUT_MS },
      { logger, storeFor: () => r.store },
    )
    const send = async (id: string) => {
      const kong = new FakeKong()
      kong.shared.set(
        'authenticated_jwt_token',
        await mint({ sub: 'u', jti: id }, { key: secretKey(), ttl: 300 }),
      )
      await handler.accessWith(kong)
      return kong.exitResult?.status ?? 200
    }
    r.plan.push('slow', 'slow')
    expect(await send('a')).toBe(200)
    expect(await send('b')).toBe(200)
    expect(r.breaker.state).toBe('open')
    r.plan.push('bug')
    await r.runProbe()
    expect(r.breaker.state).toBe('closed')
    expect(r.logger.lines).toContainEqual({
      level: 'error',
      message: expect.stringMatching(/circuit closed because the probe failed with a bug/),
    })
    r.plan.push('bug')
    expect(await send('c')).toBe(500)
  })

  it('answers by the policy at once while open: 503 under fail_closed, a pass under fail_open', async () => {
    const r = rig()
    await open(r)
    const reads = r.reads.length
    for (const [policy, status] of [
      ['fail_closed', 503],
      ['fail_open', 200],
    ] as const) {
      const handler = new JwtRevocationHandler(
        { on_unavailable: policy, check: ['jti'], timeout_ms: TIMEOUT_MS },
        { logger: new MemoryLogger(), storeFor: () => r.store },
      )
      const kong = new FakeKong()
      kong.shared.set(
        'authenticated_jwt_token',
        await mint({ sub: 'u', jti: 'x' }, { key: secretKey(), ttl: 300 }),
      )
      await handler.accessWith(kong)
      expect(kong.exitResult?.status ?? 200).toBe(status)
      if (status === 503) expect(kong.exitResult?.body.code).toBe('ERR_REVOCATION_UNAVAILABLE')
    }
    expect(r.reads.length).toBe(reads)
  })
})
