import { beforeAll, describe, expect, it } from '@jest/globals'
import { buildRuntime } from '../../../../plugins/consumer-jwt/handler'
import type { Clock } from '../../../../plugins/shared/clock'
import { HS_SECRET, keyPair, mint, secretKey, unsigned } from '../../../helpers/tokens'

const NOW = 1_800_000_000
const clock: Clock = { now: () => NOW * 1000 }

let rsa: Awaited<ReturnType<typeof keyPair>>
let ec: Awaited<ReturnType<typeof keyPair>>
let ed: Awaited<ReturnType<typeof keyPair>>
let other: Awaited<ReturnType<typeof keyPair>>

beforeAll(async () => {
  ;[rsa, ec, ed, other] = await Promise.all([
    keyPair('RS256'),
    keyPair('ES256', 'ec-1'),
    keyPair('EdDSA'),
    keyPair('RS256'),
  ])
})

function runtime(extra: Record<string, unknown> = {}, credExtra: Record<string, unknown> = {}) {
  return buildRuntime(
    {
      credentials: [
        {
          key: 'web',
          consumer: 'web-app',
          issuer: 'web',
          algorithms: ['HS256'],
          secret: HS_SECRET,
          audiences: ['orders'],
          scope_ceiling: ['orders:read', 'orders:write'],
          ...credExtra,
        },
        {
          key: 'partner',
          consumer: 'partner-acme',
          algorithms: ['RS256', 'PS256'],
          public_key: rsa.pem,
        },
        {
          key: 'mobile',
          consumer: 'mobile-app',
          algorithms: ['ES256'],
          jwks: JSON.stringify({ keys: [ec.jwk] }),
        },
        { key: 'edge', consumer: 'edge', algorithms: ['EdDSA'], public_key: ed.pem },
      ],
      ...extra,
    },
    { clock, env: {} },
  )
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (e) {
    return (e as { code: string }).code
  }
  return 'PASSED'
}

const web = (claims: Record<string, unknown> = {}, o: Record<string, unknown> = {}) =>
  mint(
    { iss: 'web', aud: 'orders', sub: 'u1', scope: 'orders:read', ...claims },
    { key: secretKey(), now: NOW, ...o },
  )

describe('consumer-jwt: (core)', () => {
  it('verifies an HS256 token of its credential and returns its claims', async () => {
    const v = await runtime().verifier.verify(await web())
    expect(v.credential.consumer).toBe('web-app')
    expect(v.claims.sub).toBe('u1')
  })

  it('verifies RS256 and PS256 against a PEM, ES256 through an inline JWKS, EdDSA against a PEM', async () => {
    const rt = runtime()
    for (const alg of ['RS256', 'PS256']) {
      const t = await mint({ iss: 'partner' }, { alg, key: rsa.pair.privateKey, now: NOW })
      expect((await rt.verifier.verify(t)).credential.key).toBe('partner')
    }
    const m = await mint(
      { iss: 'mobile' },
      { alg: 'ES256', kid: 'ec-1', key: ec.pair.privateKey, now: NOW },
    )
    expect((await rt.verifier.verify(m)).credential.key).toBe('mobile')
    const e = await mint({ iss: 'edge' }, { alg: 'EdDSA', key: ed.pair.privateKey, now: NOW })
    expect((await rt.verifier.verify(e)).credential.key).toBe('edge')
  })

  it('refuses garbage with ERR_TOKEN_MALFORMED', async () => {
    const rt = runtime()
    expect(await codeOf(rt.verifier.verify('not-a-jwt'))).toBe('ERR_TOKEN_MALFORMED')
    expect(await codeOf(rt.verifier.verify('a.b.c'))).toBe('ERR_TOKEN_MALFORMED')
    expect(await codeOf(rt.verifier.verify('a.b.c.d.e'))).toBe('ERR_TOKEN_MALFORMED')
  })

  it('refuses a token whose key claim selects no credential with ERR_CREDENTIAL_UNKNOWN', async () => {
    expect(await codeOf(runtime().verifier.verify(await web({ iss: 'nobody' })))).toBe(
      'ERR_CREDENTIAL_UNKNOWN',
    )
    expect(await codeOf(runtime().verifier.verify(await web({ iss: null })))).toBe(
      'ERR_CREDENTIAL_UNKNOWN',
    )
  })

  it('never accepts alg none, even with a valid-looking payload', async () => {
    const t = unsigned({ iss: 'web', aud: 'orders', exp: NOW + 60 })
    expect(await codeOf(runtime().verifier.verify(t))).toBe('ERR_ALGORITHM_NOT_ALLOWED')
  })

  it('refuses an algorithm its credential does not allow (RS384 for an RS256/PS256 credential)', async () => {
    const t = await mint({ iss: 'partner' }, { alg: 'RS384', key: rsa.pair.privateKey, now: NOW })
    expect(await codeOf(runtime().verifier.verify(t))).toBe('ERR_ALGORITHM_NOT_ALLOWED')
  })

  it('refuses the public key used as an HMAC secret (algorithm confusion)', async () => {
    const t = await mint(
      { iss: 'partner' },
      { alg: 'HS256', key: new TextEncoder().encode(rsa.pem), now: NOW },
    )
    expect(await codeOf(runtime().verifier.verify(t))).toBe('ERR_ALGORITHM_NOT_ALLOWED')
  })

  it('refuses a token signed by another key with ERR_SIGNATURE_INVALID', async () => {
    const t = await mint({ iss: 'partner' }, { alg: 'RS256', key: other.pair.privateKey, now: NOW })
    expect(await codeOf(runtime().verifier.verify(t))).toBe('ERR_SIGNATURE_INVALID')
    const h = await web({}, { key: secretKey('another-secret-of-at-least-thirty-two-bytes') })
    expect(await codeOf(runtime().verifier.verify(h))).toBe('ERR_SIGNATURE_INVALID')
  })

  it('refuses an expired token past the leeway, accepts it within the leeway', async () => {
    const rt = runtime({ leeway: 30 })
    expect(await codeOf(rt.verifier.verify(await web({ exp: NOW - 31 })))).toBe('ERR_TOKEN_EXPIRED')
    expect(await codeOf(rt.verifier.verify(await web({ exp: NOW - 29 })))).toBe('PASSED')
  })

  it('refuses a token before its nbf past the leeway with ERR_TOKEN_NOT_YET_VALID', async () => {
    expect(await codeOf(runtime({ leeway: 0 }).verifier.verify(await web({ nbf: NOW + 10 })))).toBe(
      'ERR_TOKEN_NOT_YET_VALID',
    )
  })

  it('caps the lifetime exp - iat with ERR_TOKEN_LIFETIME_EXCEEDED and needs iat then', async () => {
    const rt = runtime({ maximum_lifetime: 600 })
    expect(await codeOf(rt.verifier.verify(await web({}, { ttl: 601 })))).toBe(
      'ERR_TOKEN_LIFETIME_EXCEEDED',
    )
    expect(await codeOf(rt.verifier.verify(await web({}, { ttl: 600 })))).toBe('PASSED')
    expect(await codeOf(rt.verifier.verify(await web({ iat: null })))).toBe('ERR_CLAIM_MISSING')
  })

  it('refuses a token issued in the future beyond the leeway, lifetime cap or not', async () => {
    const rt = runtime({ leeway: 30 })
    expect(await codeOf(rt.verifier.verify(await web({ iat: NOW + 31 })))).toBe(
      'ERR_TOKEN_NOT_YET_VALID',
    )
    expect(await codeOf(rt.verifier.verify(await web({ iat: NOW + 29 })))).toBe('PASSED')
  })

  it('refuses scope claims of any other shape than a string or an array of scope tokens', async () => {
    const rt = runtime({}, { scope_ceiling: undefined })
    for (const scope of [['orders:read', 'a b'], { x: 'orders:admin' }, 42, ['orders:read', 7]]) {
      expect(await codeOf(rt.verifier.verify(await web({ scope })))).toBe('ERR_CLAIM_INVALID')
    }
    expect(await codeOf(rt.verifier.verify(await web({ scope: null, scp: ['orders:read'] })))).toBe(
      'PASSED',
    )
  })

  it('checks iss and aud when the credential sets them', async () => {
    const rt = runtime({ key_claim_name: 'sub' }, { key: 'u1' })
    expect(await codeOf(rt.verifier.verify(await web({ iss: 'elsewhere' })))).toBe(
      'ERR_ISSUER_INVALID',
    )
    expect(await codeOf(runtime().verifier.verify(await web({ aud: 'billing' })))).toBe(
      'ERR_AUDIENCE_INVALID',
    )
    expect(await codeOf(runtime().verifier.verify(await web({ aud: ['billing', 'orders'] })))).toBe(
      'PASSED',
    )
  })

  it('refuses a token without a required claim with ERR_CLAIM_MISSING', async () => {
    expect(await codeOf(runtime().verifier.verify(await web({ exp: null })))).toBe(
      'ERR_CLAIM_MISSING',
    )
    expect(
      await codeOf(runtime({ required_claims: ['exp', 'jti'] }).verifier.verify(await web())),
    ).toBe('ERR_CLAIM_MISSING')
  })

  it('refuses a non-numeric exp with ERR_CLAIM_INVALID', async () => {
    expect(await codeOf(runtime().verifier.verify(await web({ exp: 'tomorrow' })))).toBe(
      'ERR_CLAIM_INVALID',
    )
  })

  it('checks typ when configured (RFC 9068 at+jwt)', async () => {
    const rt = runtime({ typ: 'at+jwt' })
    expect(await codeOf(rt.verifier.verify(await web({}, { typ: 'JWT' })))).toBe('ERR_TYP_INVALID')
    expect(await codeOf(rt.verifier.verify(await web({}, { typ: 'at+jwt' })))).toBe('PASSED')
  })

  it('refuses scopes above the consumer ceiling, from scope and scp alike', async () => {
    const rt = runtime()
    expect(await codeOf(rt.verifier.verify(await web({ scope: 'orders:read orders:admin' })))).toBe(
      'ERR_SCOPE_CEILING_EXCEEDED',
    )
    expect(
      await codeOf(rt.verifier.verify(await web({ scope: null, scp: ['orders:admin'] }))),
    ).toBe('ERR_SCOPE_CEILING_EXCEEDED')
    expect(await codeOf(rt.verifier.verify(await web({ scope: 'orders:read orders:write' })))).toBe(
      'PASSED',
    )
  })

  it('selects the credential by kid from the header when key_claim_name is kid', async () => {
    const rt = buildRuntime(
      {
        key_claim_name: 'kid',
        credentials: [
          {
            key: 'ec-1',
            consumer: 'mobile-app',
            algorithms: ['ES256'],
            jwks: JSON.stringify({ keys: [ec.jwk] }),
          },
        ],
      },
      { clock, env: {} },
    )
    const t = await mint(
      { iss: 'whoever' },
      { alg: 'ES256', kid: 'ec-1', key: ec.pair.privateKey, now: NOW },
    )
    expect((await rt.verifier.verify(t)).credential.consumer).toBe('mobile-app')
  })

  it('tries every key of a JWKS whose keys carry no kid', async () => {
    const a = await keyPair('ES256')
    const b = await keyPair('ES256')
    const rt = buildRuntime(
      {
        credentials: [
          {
            key: 'm',
            consumer: 'c',
            algorithms: ['ES256'],
            jwks: JSON.stringify({ keys: [a.jwk, b.jwk] }),
          },
        ],
      },
      { clock, env: {} },
    )
    const t = await mint({ iss: 'm' }, { alg: 'ES256', key: b.pair.privateKey, now: NOW })
    expect((await rt.verifier.verify(t)).credential.key).toBe('m')
  })

  it('caches a verified token, but never past its exp', async () => {
    let now = NOW * 1000
    const rt = buildRuntime(
      {
        leeway: 0,
        credentials: [
          { key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET },
        ],
      },
      { clock: { now: () => now }, env: {} },
    )
    const t = await mint({ iss: 'web' }, { key: secretKey(), now: NOW, ttl: 60 })
    await rt.verifier.verify(t)
    expect(rt.verifier.cacheSize).toBe(1)
    now += 61_000
    expect(await codeOf(rt.verifier.verify(t))).toBe('ERR_TOKEN_EXPIRED')
  })

  it('keeps the token cache within token_cache_size', async () => {
    const rt = runtime({ token_cache_size: 2 })
    for (const sub of ['a', 'b', 'c']) await rt.verifier.verify(await web({ sub }))
    expect(rt.verifier.cacheSize).toBe(2)
  })
})
