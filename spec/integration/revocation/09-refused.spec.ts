import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import { JwtRevocationHandler } from '../../../plugins/jwt-revocation/handler'
import { closeSharedRedis } from '../../../plugins/shared/revocation/redis-clients'
import { forgetSharedRevocationStores } from '../../../plugins/shared/revocation/redis-revocation-store'
import { MemoryLogger } from '../../helpers/logger'
import { request, STORE_TESTS, token } from './helpers/plugin-requests'
import { command } from './helpers/redis-deployments'
import { noPrivateRedisReason, PrivateRedis, testPrefix } from './helpers/redis-server'

/**
 * A Redis that answers but refuses us (a wrong password, an ACL user without EVAL) is a
 * misconfiguration, not an outage: under on_unavailable = fail_open an outage passes the
 * request, so such a refusal must be a 500 instead, on every request, at once.
 */
const skip = noPrivateRedisReason()

;(skip !== undefined ? describe.skip : describe)(
  `jwt-revocation: (integration, a Redis that refuses the plugin) ${skip ?? ''}`.trim(),
  () => {
    let server: PrivateRedis

    beforeAll(async () => {
      server = await PrivateRedis.start()
      await command(server.port, 'ACL', 'SETUSER', 'no-eval', 'on', '>reader-pw', '~*', '+get')
      await command(server.port, 'ACL', 'SETUSER', 'default', 'on', '>right-pw')
    })
    afterEach(async () => {
      await closeSharedRedis()
      forgetSharedRevocationStores()
    })
    afterAll(async () => {
      await server?.dispose()
    })

    const plugin = (redis: Record<string, unknown>) =>
      new JwtRevocationHandler(
        {
          ...STORE_TESTS,
          check: ['jti'],
          redis: { url: server.url, ...redis },
          key_prefix: testPrefix('refused'),
          timeout_ms: 300,
          on_unavailable: 'fail_open',
        },
        { logger: new MemoryLogger() },
      )

    it('answers 500 ERR_CONFIG_INVALID under fail_open when Redis refuses the password, never passing the request', async () => {
      const handler = plugin({ password: 'wrong-pw' })
      const statuses = new Set<number>()
      const codes = new Set<unknown>()
      // The first requests may still be waiting for the connection's first answer; within a
      // few the refusal is known and every request gets it at once.
      for (let i = 0; i < 20; i++) {
        const r = await request(handler, token({ jti: `j${i}`, sub: 'u' }))
        statuses.add(r.status)
        codes.add(r.code)
      }
      expect(statuses.has(200)).toBe(false)
      expect(codes.has('ERR_CONFIG_INVALID')).toBe(true)
      const last = await request(handler, token({ jti: 'last', sub: 'u' }))
      expect(last).toMatchObject({ status: 500, code: 'ERR_CONFIG_INVALID' })
      expect(last.ms).toBeLessThan(100)
    })

    it('answers 500 ERR_CONFIG_INVALID under fail_open when the ACL user may not run the lookup (NOPERM)', async () => {
      const handler = plugin({ username: 'no-eval', password: 'reader-pw' })
      const r = await request(handler, token({ jti: 'j', sub: 'u' }))
      expect(r).toMatchObject({ status: 500, code: 'ERR_CONFIG_INVALID' })
    })

    it('still checks revocations with the right password (the refusal is about the settings)', async () => {
      const handler = plugin({ password: 'right-pw' })
      expect((await request(handler, token({ jti: 'fine', sub: 'u' }))).status).toBe(200)
    })
  },
)
