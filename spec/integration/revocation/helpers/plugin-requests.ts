import type { JwtRevocationHandler } from '../../../../plugins/jwt-revocation/handler'
import type { KongConsumer } from '../../../../plugins/shared/pdk/port'
import { FakeKong } from '../../../helpers/fake-kong'

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
