import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, importPKCS8 } from 'jose'
import { parse, stringify } from 'yaml'
import { mint, secretKey } from '../../helpers/tokens'
import {
  cli,
  consumerJwtConfig,
  GLOBEX_SECRET,
  KEYS,
  KONG_YML,
  pluginVerifier,
  tempDir,
} from './helpers'

const NOW = 1_900_000_000
const at = { nowMs: NOW * 1000 }
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey']
const pem = (name: string, alg: string): Promise<PrivateKey> =>
  importPKCS8(readFileSync(join(KEYS, name), 'utf8'), alg)
const WEB = 'https://login.example.com/web'
const API = 'https://api.example.com'

/** A web-app token signed with web-app's demo key; `claims` override (null removes). */
const webToken = async (
  claims: Record<string, unknown> = {},
  o: { now?: number; ttl?: number } = {},
) =>
  mint(
    { iss: WEB, aud: API, sub: 'u1', scope: 'orders:read', jti: 'j1', ...claims },
    {
      alg: 'ES256',
      key: await pem('web-app.private.pem', 'ES256'),
      now: o.now ?? NOW,
      ttl: o.ttl ?? 300,
    },
  )

const verifier = pluginVerifier(consumerJwtConfig(KONG_YML), {
  ...at,
  env: { PARTNER_GLOBEX_SECRET: GLOBEX_SECRET },
})

interface Row {
  check: string
  status: string
  detail: string
  code?: string
}
async function verdicts(token: string, env: NodeJS.ProcessEnv = {}) {
  const r = await cli(['token', 'inspect', token, '--config', KONG_YML, '--json'], { ...at, env })
  const parsed = JSON.parse(r.out) as {
    checks: { verdicts: Row[]; refusal: { code: string; status: number } | null }[]
  }
  const [only] = parsed.checks
  const rows = only!.verdicts
  return {
    code: r.code,
    rows,
    refusal: only!.refusal,
    failed: rows.filter((v) => v.status === 'fail').map((v) => [v.check, v.code]),
    row: (check: string) => rows.find((v) => v.check === check),
  }
}

describe('kong-jwt-toolkit token inspect: (cli)', () => {
  it('decodes a token without --config: header, claims, times, and says it did not verify', async () => {
    const r = await cli(['token', 'inspect', `Bearer ${await webToken()}`], at)
    expect(r.code).toBe(0)
    expect(r.out).toContain('"alg": "ES256"')
    expect(r.out).toContain(`"iss": "${WEB}"`)
    expect(r.out).toContain(`exp: ${new Date((NOW + 300) * 1000).toISOString()} (in 5m)`)
    expect(r.out).toContain('iat: 2030-03-17T17:46:40.000Z (now)')
    expect(r.out).toContain('(decoded, not verified;')
  })

  it('passes a valid token on every check, the signature verified with the inline key', async () => {
    const token = await webToken()
    const v = await verdicts(token)
    expect(v.code).toBe(0)
    expect(v.failed).toEqual([])
    expect(v.rows.map((r) => r.check)).toEqual([
      'token',
      'credential',
      'algorithm',
      'signature',
      'required claims',
      'issuer',
      'audience',
      'exp/nbf',
      'iat',
      'lifetime',
      'scope ceiling',
    ])
    expect(v.row('signature')).toMatchObject({ status: 'pass', detail: 'verified (pem)' })
    expect(await verifier.verify(token)).toBe('PASSED')
    const text = await cli(['token', 'inspect', token, '--config', KONG_YML], at)
    expect(text.out).toMatch(
      /consumer-jwt on route orders-read, route orders-write, route orders-admin and 4 more:/,
    )
    expect(text.out).toContain('=> PASSES every check')
  })

  // Each fixture: the failed checks, and the plugin's own answer for the same token.
  const cases: [string, () => Promise<string>, [string, string][]][] = [
    ['expired', () => webToken({}, { now: NOW - 3600 }), [['exp/nbf', 'ERR_TOKEN_EXPIRED']]],
    [
      'wrong audience',
      () => webToken({ aud: 'https://other.example' }),
      [['audience', 'ERR_AUDIENCE_INVALID']],
    ],
    [
      'an algorithm the credential does not allow',
      () =>
        mint(
          { iss: WEB, aud: API, sub: 'u', scope: 'orders:read' },
          { alg: 'HS256', key: secretKey(), now: NOW },
        ),
      [['algorithm', 'ERR_ALGORITHM_NOT_ALLOWED']],
    ],
    [
      'an unknown issuer',
      () => webToken({ iss: 'https://evil.example' }),
      [['credential', 'ERR_CREDENTIAL_UNKNOWN']],
    ],
    [
      'a scope above the ceiling',
      () => webToken({ scope: 'orders:read admin:all' }),
      [['scope ceiling', 'ERR_SCOPE_CEILING_EXCEEDED']],
    ],
    [
      'a forged signature (web-app claims, another ES256 key)',
      async () =>
        mint(
          { iss: WEB, aud: API, sub: 'u', scope: 'orders:read' },
          { alg: 'ES256', key: (await generateKeyPair('ES256')).privateKey, now: NOW },
        ),
      [['signature', 'ERR_SIGNATURE_INVALID']],
    ],
    [
      'a payload altered after signing',
      async () => {
        const [h, , s] = (await webToken()).split('.')
        const body = Buffer.from(
          JSON.stringify({ iss: WEB, aud: API, sub: 'admin', iat: NOW, exp: NOW + 60 }),
        ).toString('base64url')
        return `${h}.${body}.${s}`
      },
      [['signature', 'ERR_SIGNATURE_INVALID']],
    ],
    [
      'a missing required claim (sub)',
      () => webToken({ sub: null }),
      [['required claims', 'ERR_CLAIM_MISSING']],
    ],
    [
      'a lifetime above the cap',
      () => webToken({}, { ttl: 3600 }),
      [['lifetime', 'ERR_TOKEN_LIFETIME_EXCEEDED']],
    ],
    [
      'an iat in the future',
      () => webToken({}, { now: NOW + 120 }),
      [['iat', 'ERR_TOKEN_NOT_YET_VALID']],
    ],
    [
      'a wrong audience AND expired: both shown, the plugin answers the first in its order',
      () => webToken({ aud: 'x' }, { now: NOW - 3600 }),
      [
        ['audience', 'ERR_AUDIENCE_INVALID'],
        ['exp/nbf', 'ERR_TOKEN_EXPIRED'],
      ],
    ],
  ]

  it.each(cases)(
    '%s: fails exactly those checks, with the code the plugin answers',
    async (_name, make, expected) => {
      const token = await make()
      const v = await verdicts(token)
      expect(v.failed).toEqual(expected)
      expect(v.code).toBe(1)
      const answer = await verifier.verify(token)
      expect(v.refusal?.code).toBe(answer)
      expect(v.refusal?.status).toBe(401)
    },
  )

  it('prints each check with its code, and the refusal', async () => {
    const r = await cli(
      ['token', 'inspect', await webToken({}, { now: NOW - 3600 }), '--config', KONG_YML],
      at,
    )
    expect(r.code).toBe(1)
    expect(r.out).toContain(
      `FAIL  exp/nbf          "exp" claim timestamp check failed (exp ${new Date((NOW - 3300) * 1000).toISOString()}, now ${new Date(NOW * 1000).toISOString()}, leeway 30 s)  [ERR_TOKEN_EXPIRED]`,
    )
    expect(r.out).toContain('pass  signature        verified (pem)')
    expect(r.out).toContain(
      '=> REFUSED: 401 ERR_TOKEN_EXPIRED (Token expired), at the exp/nbf check',
    )
  })

  it('HS credential: checks the signature with the secret from the environment, skips it without', async () => {
    const token = await mint(
      { iss: 'globex', aud: API, sub: 'p', scope: 'catalog:read' },
      { alg: 'HS256', key: new TextEncoder().encode(GLOBEX_SECRET), now: NOW },
    )
    const withEnv = await verdicts(token, { PARTNER_GLOBEX_SECRET: GLOBEX_SECRET })
    expect(withEnv.row('signature')).toMatchObject({ status: 'pass' })
    expect(withEnv.code).toBe(0)
    const wrong = await verdicts(token, { PARTNER_GLOBEX_SECRET: 'x'.repeat(40) })
    expect(wrong.failed).toEqual([['signature', 'ERR_SIGNATURE_INVALID']])
    const without = await verdicts(token)
    expect(without.row('signature')).toEqual({
      check: 'signature',
      status: 'skip',
      detail:
        'not checked: the secret {vault://env/partner-globex-secret} needs PARTNER_GLOBEX_SECRET in the environment',
    })
    expect(without.code).toBe(0)
  })

  describe('a credential with a jwks_uri', () => {
    let server: Server
    let t: ReturnType<typeof tempDir>
    let yml: string
    let hits = 0
    beforeAll(async () => {
      t = tempDir()
      server = createServer((_req, res) => {
        hits++
        res.setHeader('content-type', 'application/json')
        res.end(readFileSync(join(KEYS, 'partner-acme.jwks.json')))
      })
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const doc = parse(readFileSync(KONG_YML, 'utf8'), { merge: true }) as Record<string, unknown>
      yml = join(t.dir, 'kong.yml')
      // The demo file with the JWKS URL pointed at the local server (as the e2e suite does).
      writeFileSync(
        yml,
        stringify(doc).replaceAll(
          'http://acme-idp:8080/.well-known/jwks.json',
          `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
        ),
      )
    })
    afterAll(async () => {
      await new Promise((r) => server.close(r))
      t.dispose()
    })

    const acme = (key: PrivateKey) =>
      mint(
        { iss: 'https://idp.acme.example', aud: API, sub: 's', scope: 'catalog:read' },
        { alg: 'RS256', key, now: NOW, kid: 'acme-2026-11' },
      )

    it("says 'not fetched' without --fetch, and fetches nothing", async () => {
      const r = await cli(
        [
          'token',
          'inspect',
          await acme(await pem('partner-acme.private.pem', 'RS256')),
          '--config',
          yml,
          '--json',
        ],
        at,
      )
      const rows = (JSON.parse(r.out) as { checks: { verdicts: Row[] }[] }).checks[0]!.verdicts
      expect(rows.find((v) => v.check === 'signature')).toMatchObject({
        status: 'skip',
        detail: expect.stringMatching(
          /^not fetched: keys at http:\/\/127\.0\.0\.1:\d+\/jwks \(add --fetch\)$/,
        ),
      })
      expect(hits).toBe(0)
    })

    it('with --fetch, verifies the signature with the fetched keys, and refuses a forged one', async () => {
      const good = await cli(
        [
          'token',
          'inspect',
          await acme(await pem('partner-acme.private.pem', 'RS256')),
          '--config',
          yml,
          '--fetch',
        ],
        at,
      )
      expect(good.out).toMatch(/pass {2}signature +verified \(jwks uri\)/)
      expect(good.code).toBe(0)
      expect(hits).toBeGreaterThan(0)
      const forged = await cli(
        [
          'token',
          'inspect',
          await acme((await generateKeyPair('RS256')).privateKey),
          '--config',
          yml,
          '--fetch',
        ],
        at,
      )
      expect(forged.code).toBe(1)
      expect(forged.out).toContain('=> REFUSED: 401 ERR_SIGNATURE_INVALID')
    })
  })

  describe('malformed tokens: a clear usage error (exit 2)', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64url')
    it.each([
      [
        'abc.def',
        'not a signed JWT: 2 dot-separated parts, a JWT has 3 (header.payload.signature)',
      ],
      [
        'a.b.c.d.e',
        'not a signed JWT: 5 dot-separated parts, a JWT has 3 (header.payload.signature): 5 parts is an encrypted JWT (JWE), which consumer-jwt does not take',
      ],
      [
        `${b64('{"alg":"ES256"}')}.ab+c/.sig`,
        'the payload (part 2) is not base64url: it holds "+" at position 3',
      ],
      [`${b64('{"alg":')}.${b64('{}')}.sig`, 'the header (part 1) is base64url but not JSON'],
      [
        `${b64('{"alg":"ES256"}')}.${b64('[1,2]')}.sig`,
        'the payload (part 2) is JSON but not an object',
      ],
      [`.${b64('{}')}.sig`, 'the header (part 1) is empty'],
    ])('%s', async (token, message) => {
      for (const extra of [[], ['--config', KONG_YML]]) {
        const r = await cli(['token', 'inspect', token, ...extra], at)
        expect(r).toMatchObject({ code: 2, out: '' })
        expect(r.err).toBe(`error: ${message}`)
      }
      // The plugin refuses all of them as malformed.
      expect(await verifier.verify(token)).toBe('ERR_TOKEN_MALFORMED')
    })
  })

  it('refuses --fetch without --config, and a missing config file', async () => {
    const token = await webToken()
    expect((await cli(['token', 'inspect', token, '--fetch'], at)).err).toBe(
      'error: --fetch needs --config: the JWKS URL comes from the credential',
    )
    expect((await cli(['token', 'inspect', token, '--config', '/nope.yml'], at)).err).toBe(
      'error: --config /nope.yml: no such file',
    )
  })
})
