import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { quietCli } from '../integration/revocation/helpers/cli'
import { demoToken } from '../../emulator/demo-kit'
import {
  cleanupTestKeys,
  noRedisReason,
  PrivateRedis,
  sharedRedisUrl,
  testPrefix,
} from '../integration/revocation/helpers/redis-server'
import type { KongTarget } from './helpers/kong-target'
import { startToolkitTarget, type ToolkitTarget } from './helpers/toolkit-target'

// Revocation on every API route of kong.yml, checked by consumer-jwt in the same event as the
// token (its `revocation` setting): revoke with the CLI, the next request through Kong is refused.
const skip = noRedisReason()

;(skip !== undefined ? describe.skip : describe)(
  `consumer-jwt revocation: (e2e: revoke with the CLI, the next request is refused) ${skip ?? ''}`.trim(),
  () => {
    let target: ToolkitTarget
    let kong: KongTarget
    let server: PrivateRedis | undefined
    let url: string
    // kong.yml uses the default key prefix; a private server keeps it, a shared REDIS_URL gets its own.
    let prefix = 'jwt-revocation:'

    beforeAll(async () => {
      const shared = sharedRedisUrl()
      url = shared ?? (server = await PrivateRedis.start()).url
      if (shared !== undefined) prefix = testPrefix('e2e')
      target = await startToolkitTarget({ url, keyPrefix: prefix })
      kong = target.kong
    })

    afterAll(async () => {
      await target?.stop()
      if (server === undefined && url !== undefined) await cleanupTestKeys(url)
      await server?.dispose()
    })

    const cli = (...args: string[]): Promise<number> => quietCli(url, prefix)(...args)
    const get = (token: string): Promise<Response> =>
      kong.proxy('/orders/1', { headers: { Authorization: `Bearer ${token}` } })
    const scope = 'orders:read'

    it('refuses a token on the next request once its jti is revoked', async () => {
      const token = await demoToken('web-app', { scope, jti: randomUUID() })
      expect((await get(token)).status).toBe(200)
      expect(await cli('revoke', 'jti', '--token', token)).toBe(0)
      const res = await get(token)
      expect(res.status).toBe(401)
      expect(await res.json()).toEqual({ message: 'Token revoked', code: 'ERR_TOKEN_REVOKED' })
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"')
      expect(kong.upstreamRequestFor(res)).toBeUndefined()
    })

    it('cuts a partner off by consumer username, and lets it back in once lifted', async () => {
      const token = await demoToken(
        'partner-acme',
        { scope, jti: randomUUID() },
        { now: Math.floor(Date.now() / 1000) - 5 },
      )
      expect((await get(token)).status).toBe(200)
      expect(await cli('revoke', 'consumer', 'partner-acme', '--username')).toBe(0)
      expect((await get(token)).status).toBe(401)
      expect(await cli('revoke', 'lift', 'consumer', 'partner-acme', '--username')).toBe(0)
      expect((await get(token)).status).toBe(200)
    })

    it('logs a user out everywhere: old tokens refused, a new login works', async () => {
      const now = Math.floor(Date.now() / 1000)
      const old = await demoToken('mobile-app', { scope, jti: randomUUID() }, { now: now - 10 })
      expect((await get(old)).status).toBe(200)
      expect(await cli('revoke', 'subject', 'mobile-app-user', '--at', String(now - 1))).toBe(0)
      expect((await get(old)).status).toBe(401)
      const fresh = await demoToken('mobile-app', { scope, jti: randomUUID() }, { now })
      expect((await get(fresh)).status).toBe(200)
    })
  },
)
