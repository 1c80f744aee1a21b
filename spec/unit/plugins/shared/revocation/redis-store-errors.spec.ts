import { describe, expect, it } from '@jest/globals'
import { ReplyError } from 'ioredis'
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

/** An error reply of Redis as ioredis raises it (its type is untyped upstream). */
const replyError = (message: string): Error =>
  new (ReplyError as unknown as new (m: string) => Error)(message)

describe('redis revocation store: (what counts as unavailable)', () => {
  it('reports an error of Redis or its client as unavailable', async () => {
    const store = storeWhoseRead(() => {
      throw Object.assign(new Error('Connection is closed.'), { name: 'Error' })
    })
    const error: unknown = await store.lookup([target]).catch((e: unknown) => e)
    expect(isRevocationUnavailable(error)).toBe(true)
  })

  it.each([
    'LOADING Redis is loading the dataset in memory',
    "READONLY You can't write against a read only replica.",
    'MASTERDOWN Link with MASTER is down',
    'BUSY Redis is busy running a script',
    'ERR max number of clients reached',
  ])('reports the reply %s as unavailable: the deployment is down or moving', async (reply) => {
    const store = storeWhoseRead(() => {
      throw replyError(reply)
    })
    const error: unknown = await store.lookup([target]).catch((e: unknown) => e)
    expect(isRevocationUnavailable(error)).toBe(true)
  })

  it.each([
    "NOPERM User reader has no permissions to run the 'eval' command",
    'WRONGPASS invalid username-password pair or user is disabled.',
    'NOAUTH Authentication required.',
    'ERR user_script:1: Script attempted to access nonexistent global variable',
  ])(
    'reports the reply %s as a config error, never as an outage fail_open would pass',
    async (reply) => {
      const store = storeWhoseRead(() => {
        throw replyError(reply)
      })
      const error: unknown = await store.lookup([target]).catch((e: unknown) => e)
      expect(isRevocationUnavailable(error)).toBe(false)
      expect(error).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
    },
  )

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
