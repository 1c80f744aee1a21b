import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { run } from '../../../cli/index'
import type { CliIO } from '../../../cli/common'
import { token } from './helpers/plugin-requests'
import {
  cleanupTestKeys,
  noRedisReason,
  PrivateRedis,
  sharedRedisUrl,
  testPrefix,
} from './helpers/redis-server'

const skip = noRedisReason()
const CLI = resolve(__dirname, '../../../dist/cli/index.js')

;(skip !== undefined ? describe.skip : describe)(
  `kong-jwt-toolkit revoke: (integration, real Redis) ${skip ?? ''}`.trim(),
  () => {
    let server: PrivateRedis | undefined
    let url: string
    let raw: Redis

    beforeAll(async () => {
      url = sharedRedisUrl() ?? (server = await PrivateRedis.start()).url
      raw = new Redis(url)
    })
    afterAll(async () => {
      if (server === undefined && url !== undefined) await cleanupTestKeys(url)
      await raw?.quit()
      await server?.dispose()
    })

    async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
      const out: string[] = []
      const err: string[] = []
      const io: CliIO = {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
        env: { REDIS_URL: url },
        now: () => Date.now(),
      }
      const code = await run(args, io)
      return { code, out: out.join('\n'), err: err.join('\n') }
    }

    it("revokes a pasted token's jti until its exp plus leeway", async () => {
      const prefix = testPrefix('cli-token')
      const exp = Math.floor(Date.now() / 1000) + 120
      const r = await cli(
        'revoke',
        'jti',
        '--token',
        `Bearer ${token({ jti: 'pasted', exp })}`,
        '--key-prefix',
        prefix,
        '--reason',
        'stolen',
      )
      expect(r).toMatchObject({ code: 0 })
      expect(r.out).toMatch(/^revoked jti pasted/)
      const ttl = await raw.ttl(`${prefix}jti:pasted`)
      expect(ttl).toBeGreaterThan(120 + 300 - 5)
      expect(ttl).toBeLessThanOrEqual(120 + 300)
      expect(JSON.parse((await raw.get(`${prefix}jti:pasted`)) ?? '{}')).toMatchObject({
        reason: 'stolen',
      })
    })

    it('revokes a jti with an explicit --exp, or forever with --exp never', async () => {
      const prefix = testPrefix('cli-exp')
      const exp = new Date(Date.now() + 60_000).toISOString()
      expect(
        (await cli('revoke', 'jti', 'j1', '--exp', exp, '--leeway', '400', '--key-prefix', prefix))
          .code,
      ).toBe(0)
      expect(await raw.ttl(`${prefix}jti:j1`)).toBeGreaterThan(455)
      expect(
        (await cli('revoke', 'jti', 'j2', '--exp', 'never', '--key-prefix', prefix)).code,
      ).toBe(0)
      expect(await raw.ttl(`${prefix}jti:j2`)).toBe(-1)
    })

    it('refuses a --leeway shorter than the margin past exp the plugin still accepts, storing nothing', async () => {
      const prefix = testPrefix('cli-leeway')
      const exp = new Date(Date.now() + 60_000).toISOString()
      const r = await cli(
        'revoke',
        'jti',
        'j3',
        '--exp',
        exp,
        '--leeway',
        '0',
        '--key-prefix',
        prefix,
      )
      expect(r.code).not.toBe(0)
      expect(r.err).toContain('--leeway 0 is shorter than the 300 s')
      expect(await raw.exists(`${prefix}jti:j3`)).toBe(0)
    })

    it('stores nothing for a token that already expired', async () => {
      const prefix = testPrefix('cli-expired')
      const r = await cli('revoke', 'jti', 'old', '--exp', '1000', '--key-prefix', prefix)
      expect(r.code).toBe(0)
      expect(r.out).toMatch(/expired.*nothing stored/)
      expect(await raw.exists(`${prefix}jti:old`)).toBe(0)
    })

    it('revokes a subject as of a given time, with a TTL, and reports a later cutoff it keeps', async () => {
      const prefix = testPrefix('cli-sub')
      expect(
        (
          await cli(
            'revoke',
            'subject',
            'alice',
            '--at',
            '2030-01-01T00:00:00Z',
            '--ttl',
            '1d',
            '--key-prefix',
            prefix,
          )
        ).code,
      ).toBe(0)
      expect(JSON.parse((await raw.get(`${prefix}sub:alice`)) ?? '{}')).toMatchObject({
        at: 1_893_456_000,
      })
      const r = await cli(
        'revoke',
        'subject',
        'alice',
        '--at',
        '2029-01-01T00:00:00Z',
        '--key-prefix',
        prefix,
      )
      expect(r.code).toBe(0)
      expect(r.out).toMatch(/already revoked before 2030-01-01T00:00:00.000Z.*kept/)
    })

    it('status: exit 1 and the reason when revoked, exit 0 when not; JSON on request', async () => {
      const prefix = testPrefix('cli-status')
      const now = Math.floor(Date.now() / 1000)
      const jwt = token({ jti: 's1', sub: 'bob', iss: 'https://idp', iat: now - 100 })
      expect((await cli('revoke', 'status', '--token', jwt, '--key-prefix', prefix)).code).toBe(0)
      expect(
        (
          await cli(
            'revoke',
            'subject',
            'bob',
            '--issuer',
            'https://idp',
            '--at',
            String(now - 50),
            '--reason',
            'logout everywhere',
            '--key-prefix',
            prefix,
          )
        ).code,
      ).toBe(0)
      const text = await cli('revoke', 'status', '--token', jwt, '--key-prefix', prefix)
      expect(text.code).toBe(1)
      expect(text.out).toMatch(
        /REVOKED: subject bob of issuer https:\/\/idp revoked before .* \(logout everywhere\)/,
      )
      const json = await cli('revoke', 'status', '--token', jwt, '--key-prefix', prefix, '--json')
      expect(json.code).toBe(1)
      const parsed = JSON.parse(json.out) as {
        revoked: boolean
        checked: { target: string; revokes_token: boolean }[]
      }
      expect(parsed.revoked).toBe(true)
      expect(parsed.checked.filter((c) => c.revokes_token).map((c) => c.target)).toEqual([
        'subject bob of issuer https://idp',
      ])
      // A token issued after the cutoff is fine.
      const newer = token({ jti: 's2', sub: 'bob', iss: 'https://idp', iat: now })
      expect((await cli('revoke', 'status', '--token', newer, '--key-prefix', prefix)).code).toBe(0)
    })

    it('lift removes the revocation; lifting twice says there was nothing', async () => {
      const prefix = testPrefix('cli-lift')
      await cli('revoke', 'consumer', 'c-1', '--key-prefix', prefix)
      expect((await cli('revoke', 'lift', 'consumer', 'c-1', '--key-prefix', prefix)).out).toMatch(
        /^lifted/,
      )
      expect((await cli('revoke', 'lift', 'consumer', 'c-1', '--key-prefix', prefix)).out).toMatch(
        /was not revoked/,
      )
      expect(await raw.exists(`${prefix}consumer:id:c-1`)).toBe(0)
    })

    it('usage errors exit 2 and write nothing', async () => {
      const prefix = testPrefix('cli-usage')
      expect(
        await cli('revoke', 'jti', '--token', 'not.a.jwt', '--key-prefix', prefix),
      ).toMatchObject({ code: 2, err: expect.stringMatching(/not a decodable JWT/) })
      expect((await cli('revoke', 'jti', 'j', '--key-prefix', prefix)).code).toBe(2)
      expect(
        (await cli('revoke', 'jti', '--token', token({ sub: 'no-jti' }), '--key-prefix', prefix))
          .err,
      ).toMatch(/no jti/)
      expect(
        (await cli('revoke', 'subject', 'x', '--at', 'tomorrow', '--key-prefix', prefix)).code,
      ).toBe(2)
      expect((await cli('revoke', 'lift', 'aud', 'x', '--key-prefix', prefix)).code).toBe(2)
      expect((await cli('revoke', 'status', '--key-prefix', prefix)).code).toBe(2)
      expect((await cli('revoke', 'nope')).code).toBe(2)
      expect(await raw.keys(`${prefix}*`)).toEqual([])
    })

    it('Redis down: exit 3 with a clear message, within the timeout', async () => {
      const t0 = Date.now()
      const r = await cli(
        'revoke',
        'subject',
        'x',
        '--redis-url',
        'redis://127.0.0.1:1',
        '--timeout-ms',
        '500',
      )
      expect(r.code).toBe(3)
      expect(r.err).toMatch(/Redis redis:\/\/127\.0\.0\.1:1 unavailable: .*ECONNREFUSED/)
      expect(Date.now() - t0).toBeLessThan(2000)
    })

    const noDist = existsSync(CLI) ? undefined : 'SKIPPED: dist/ not built (npm run build)'
    ;(noDist !== undefined ? it.skip : it)(
      `runs as the built binary: node dist/cli/index.js ${noDist ?? ''}`.trim(),
      () => {
        const prefix = testPrefix('cli-bin')
        const env = { ...process.env, REDIS_URL: url }
        const jwt = token({ jti: 'bin-1', sub: 'zed' })
        const revoke = spawnSync(
          process.execPath,
          [CLI, 'revoke', 'jti', '--token', jwt, '--key-prefix', prefix],
          { env, encoding: 'utf8' },
        )
        expect(revoke.status).toBe(0)
        expect(revoke.stdout).toMatch(/^revoked jti bin-1/)
        const status = spawnSync(
          process.execPath,
          [CLI, 'revoke', 'status', '--token', jwt, '--key-prefix', prefix],
          { env, encoding: 'utf8' },
        )
        expect(status.status).toBe(1)
        expect(status.stdout).toMatch(/REVOKED: jti bin-1/)
        const down = spawnSync(
          process.execPath,
          [
            CLI,
            'revoke',
            'status',
            '--jti',
            'x',
            '--redis-url',
            'redis://127.0.0.1:1',
            '--timeout-ms',
            '300',
          ],
          { env, encoding: 'utf8' },
        )
        expect(down.status).toBe(3)
        const help = spawnSync(process.execPath, [CLI, 'revoke', '--help'], {
          env,
          encoding: 'utf8',
        })
        expect(help.status).toBe(0)
        expect(help.stdout).toMatch(/jti.*\n.*subject.*\n.*consumer/s)
      },
    )
  },
)
