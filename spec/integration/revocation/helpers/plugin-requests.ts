import { defaultStore, JwtRevocationHandler } from '../../../../plugins/jwt-revocation/handler'
import type { Logger } from '../../../../plugins/shared/logger'
import type { KongConsumer } from '../../../../plugins/shared/pdk/port'
import { RedisRevocationStore } from '../../../../plugins/shared/revocation/redis-revocation-store'
import { FakeKong } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'

/**
 * Config these tests give the plugin: they exercise the store (Redis, its outages, its cache),
 * so tokens and requests carry only what each case needs; missing_subject's refusal of a token
 * without sub or iss, or a request without a consumer, is covered by the unit tests.
 */
export const STORE_TESTS = { missing_subject: 'allow' } as const

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

/** A token as the authentication plugin shares it; jwt-revocation only decodes it. */
export function token(claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000)
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iat: now - 5, exp: now + 300, ...claims })}.c2ln`
}

/** One access phase through FakeKong: the status the client would see (200 = proxied). */
export async function request(
  handler: JwtRevocationHandler,
  jwt: string,
  consumer?: KongConsumer,
): Promise<{ status: number; code: unknown; ms: number }> {
  const kong = new FakeKong()
  kong.shared.set('authenticated_jwt_token', jwt)
  if (consumer !== undefined) kong.authenticated = { consumer, credential: null }
  const t0 = performance.now()
  await handler.accessWith(kong)
  return {
    status: kong.exitResult?.status ?? 200,
    code: kong.exitResult?.body['code'],
    ms: performance.now() - t0,
  }
}

/** Polls `probe` until it returns true; resolves to the milliseconds it took, or throws. */
export async function within(
  ms: number,
  probe: () => Promise<boolean>,
  intervalMs = 10,
): Promise<number> {
  const t0 = performance.now()
  while (performance.now() - t0 < ms) {
    if (await probe()) return performance.now() - t0
    await new Promise((r) => setTimeout(r, intervalMs))
  }
  throw new Error(`condition not met within ${ms} ms`)
}

/**
 * A jwt-revocation handler on the process-wide Redis store, as in production, with a view of that
 * store (created on the first request) so a test can wait until its cache is live instead of
 * sleeping and hoping it is.
 */
export function observedPlugin(
  config: Record<string, unknown>,
  logger: Logger = new MemoryLogger(),
): { handler: JwtRevocationHandler; cacheLive: () => boolean } {
  let store: RedisRevocationStore | undefined
  const handler = new JwtRevocationHandler(config, {
    logger,
    storeFor: (parsed, log) => {
      const s = defaultStore(parsed, log)
      if (!(s instanceof RedisRevocationStore)) throw new Error('not the Redis store')
      store = s
      return s
    },
  })
  return { handler, cacheLive: () => store?.cacheLive === true }
}

/** Resolves once the handler's absence cache is live (subscribed); throws past `ms`. */
export async function cacheLiveWithin(
  ms: number,
  plugin: { cacheLive: () => boolean },
): Promise<void> {
  await within(ms, () => Promise.resolve(plugin.cacheLive()))
}
