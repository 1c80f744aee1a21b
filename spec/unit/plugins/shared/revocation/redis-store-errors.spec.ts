import { describe, expect, it } from '@jest/globals'
import { JwtRevocationHandler } from '../../../../../plugins/jwt-revocation/handler'
import { RedisRevocationStore } from '../../../../../plugins/shared/revocation/redis-revocation-store'
import { isRevocationUnavailable } from '../../../../../plugins/shared/revocation/revocation-store'
import { FakeKong } from '../../../../helpers/fake-kong'
import { MemoryLogger } from '../../../../helpers/logger'
import { mint, secretKey } from '../../../../helpers/tokens'

// Under on_unavailable = fail_open an unavailable Redis lets the request pass, so only an outage
// may count as "unavailable": a bug in the lookup must fail closed like any other bug.
/** A store whose read (the lookup script, one round trip) fails with what `fails` throws. */
function storeWhoseRead(fails: () => never): RedisRevocationStore {
  const client = { status: 'ready', eval: () => Promise.resolve().then(fails) }
  const redis = { client, subscribe: () => undefined } as unknown as ConstructorParameters<
    typeof RedisRevocationStore
  >[0]
  return new RedisRevocationStore(redis, { prefix: 'p:', timeoutMs: 200, cacheTtlMs: 0 })
}

const target = { kind: 'jti', jti: 'j1' } as const

describe('redis revocation store: (what counts as unavailable)', () => {
  it('reports an error of Redis or its client as unavailable', async () => {
    const store = storeWhoseRead(() => {
      throw Object.assign(new Error('Connection is closed.'), { name: 'Error' })
    })
    const error: unknown = await store.lookup([target]).catch((e: unknown) => e)
    expect(isRevocationUnavailable(error)).toBe(true)
  })

  it('lets a programming error through as itself, not as an outage', async () => {
    const store = storeWhoseRead(() => {
      throw new TypeError('cannot read properties of undefined')
    })
    const error: unknown = await store.lookup([target]).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TypeError)
    expect(isRevocationUnavailable(error)).toBe(false)
  })

  it('refuses with 500 under fail_open when the lookup has a bug, instead of passing the request', async () => {
    const store = storeWhoseRead(() => {
      throw new TypeError('bug in the lookup')
    })
    const handler = new JwtRevocationHandler(
      { on_unavailable: 'fail_open', check: ['jti'] },
      { logger: new MemoryLogger(), storeFor: () => store },
    )
    const kong = new FakeKong()
    kong.shared.set(
      'authenticated_jwt_token',
      await mint({ sub: 'u', jti: 'j1' }, { key: secretKey(), ttl: 300 }),
    )
    await handler.accessWith(kong)
    expect(kong.exitResult?.status).toBe(500)
    expect(kong.exitResult?.body.code).toBe('ERR_INTERNAL')
  })
})
