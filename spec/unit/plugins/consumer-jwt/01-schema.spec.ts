import { describe, expect, it } from '@jest/globals'
import { labelled } from '../../../helpers/labelled'
import { parseConfig, Schema } from '../../../../plugins/consumer-jwt/schema'
import { HS_SECRET } from '../../../helpers/tokens'

const valid = () => ({
  credentials: [
    {
      key: 'https://idp.web.example',
      consumer: 'web-app',
      algorithms: ['HS256'],
      secret: HS_SECRET,
    },
  ],
})

function codeOf(f: () => unknown): { code: string; message: string } {
  try {
    f()
  } catch (e) {
    return e as { code: string; message: string }
  }
  throw new Error('expected parseConfig to throw')
}

describe('consumer-jwt: (schema)', () => {
  it('accepts a minimal config and fills the documented defaults', () => {
    const c = parseConfig(valid(), {})
    expect(c.key_claim_name).toBe('iss')
    expect(c.header_names).toEqual(['authorization'])
    expect(c.required_claims).toEqual(['exp'])
    expect(c.leeway).toBe(30)
    expect(c.credentials.get('https://idp.web.example')?.consumer).toBe('web-app')
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('gives every credential a stable UUID-shaped id derived from its key', () => {
    const a = parseConfig(valid(), {}).credentials.get('https://idp.web.example')?.id
    const b = parseConfig(valid(), {}).credentials.get('https://idp.web.example')?.id
    expect(a).toBe(b)
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it.each([
    ['no credentials', { credentials: [] }, 'credentials'],
    [
      'duplicate keys',
      { credentials: [valid().credentials[0], valid().credentials[0]] },
      'credentials[1].key',
    ],
    [
      'mixed HS and RS algorithms',
      { credentials: [{ ...valid().credentials[0], algorithms: ['HS256', 'RS256'] }] },
      'credentials[0].algorithms',
    ],
    [
      'an unknown algorithm',
      { credentials: [{ ...valid().credentials[0], algorithms: ['none'] }] },
      'credentials[0].algorithms',
    ],
    [
      'a secret for RS algorithms',
      { credentials: [{ ...valid().credentials[0], algorithms: ['RS256'] }] },
      'credentials[0].algorithms',
    ],
    [
      'no key material',
      { credentials: [{ key: 'k', consumer: 'c', algorithms: ['HS256'] }] },
      'credentials[0].secret',
    ],
    [
      'two key sources',
      { credentials: [{ ...valid().credentials[0], jwks_uri: 'https://x.example/jwks' }] },
      'credentials[0].secret',
    ],
    [
      'a short secret',
      { credentials: [{ ...valid().credentials[0], secret: 'short' }] },
      'credentials[0].secret',
    ],
    [
      'an unresolved vault reference',
      { credentials: [{ ...valid().credentials[0], secret: '{vault://env/missing}' }] },
      'credentials[0].secret',
    ],
    [
      'a non-PEM public key',
      { credentials: [{ key: 'k', consumer: 'c', algorithms: ['RS256'], public_key: 'abc' }] },
      'credentials[0].public_key',
    ],
    [
      'an inline JWKS that is not JSON',
      { credentials: [{ key: 'k', consumer: 'c', algorithms: ['RS256'], jwks: '{' }] },
      'credentials[0].jwks',
    ],
    [
      'an inline JWKS with a private key',
      {
        credentials: [
          {
            key: 'k',
            consumer: 'c',
            algorithms: ['ES256'],
            jwks: '{"keys":[{"kty":"EC","d":"x"}]}',
          },
        ],
      },
      'credentials[0].jwks',
    ],
    [
      'a jwks_uri that is not http(s)',
      {
        credentials: [
          { key: 'k', consumer: 'c', algorithms: ['RS256'], jwks_uri: 'file:///etc/passwd' },
        ],
      },
      'credentials[0].jwks_uri',
    ],
    [
      'no token source at all',
      { ...valid(), header_names: [], cookie_names: [], uri_param_names: [] },
      'header_names',
    ],
    ['a leeway out of range', { ...valid(), leeway: 100000 }, 'leeway'],
    [
      'a claim header that would spoof the identity',
      { ...valid(), claims_to_headers: [{ claim: 'sub', header: 'X-Consumer-ID' }] },
      'claims_to_headers[0].header',
    ],
    [
      'a claim header with an invalid name',
      { ...valid(), claims_to_headers: [{ claim: 'sub', header: 'X Sub' }] },
      'claims_to_headers[0].header',
    ],
  ])('refuses %s with ERR_CONFIG_INVALID naming the field', (_name, raw, field) => {
    const e = codeOf(() => parseConfig(raw, {}))
    expect(e.code).toBe('ERR_CONFIG_INVALID')
    expect(e.message).toContain(field)
  })

  it.each(['Host', 'Transfer-Encoding', 'X-Forwarded-For', 'Cookie', 'X-Kong-Request-Id'])(
    'refuses a claim header that would overwrite %s',
    (header) => {
      const e = codeOf(() =>
        parseConfig({ ...valid(), claims_to_headers: [{ claim: 'sub', header }] }, {}),
      )
      expect(e.code).toBe('ERR_CONFIG_INVALID')
      expect(e.message).toContain('claims_to_headers[0].header')
    },
  )

  it('refuses a plain http jwks_uri unless jwks_allow_http is set', () => {
    const cred = {
      key: 'k',
      consumer: 'c',
      algorithms: ['RS256'],
      jwks_uri: 'http://idp.internal/jwks',
    }
    const e = codeOf(() => parseConfig({ credentials: [cred] }, {}))
    expect(e.code).toBe('ERR_CONFIG_INVALID')
    expect(e.message).toContain('https')
    const c = parseConfig({ credentials: [{ ...cred, jwks_allow_http: true }] }, {})
    expect(c.credentials.get('k')?.keySource).toEqual({
      kind: 'jwks_uri',
      uri: 'http://idp.internal/jwks',
    })
  })

  it('reads the secret from the environment variable named by secret_env', () => {
    const raw = {
      credentials: [
        { key: 'k', consumer: 'c', algorithms: ['HS512'], secret_env: 'PARTNER_SECRET' },
      ],
    }
    const c = parseConfig(raw, { PARTNER_SECRET: HS_SECRET })
    const src = c.credentials.get('k')?.keySource
    expect(src?.kind).toBe('secret')
    const e = codeOf(() => parseConfig(raw, {}))
    expect(e.code).toBe('ERR_CONFIG_INVALID')
    expect(e.message).toContain('PARTNER_SECRET')
  })

  it('decodes a base64url secret when secret_is_base64 is set', () => {
    const b64 = Buffer.from(HS_SECRET).toString('base64url')
    const c = parseConfig(
      { credentials: [{ ...valid().credentials[0], secret: b64, secret_is_base64: true }] },
      {},
    )
    const src = c.credentials.get('https://idp.web.example')?.keySource
    expect(src?.kind === 'secret' && Buffer.from(src.secret).toString()).toBe(HS_SECRET)
  })

  it('requires iat once maximum_lifetime is set', () => {
    expect(parseConfig({ ...valid(), maximum_lifetime: 600 }, {}).required_claims).toEqual([
      'exp',
      'iat',
    ])
  })

  it('describes every schema field in 10 to 500 characters, as Kong requires', () => {
    const walk = (fields: readonly Record<string, unknown>[], path: string): void => {
      for (const entry of fields) {
        for (const [name, f] of Object.entries(entry)) {
          const field = f as {
            description?: string
            fields?: Record<string, unknown>[]
            elements?: { fields?: Record<string, unknown>[] }
          }
          labelled(field.description?.length ?? 0, `${path}${name}`).toBeGreaterThanOrEqual(10)
          labelled(field.description?.length ?? 0, `${path}${name}`).toBeLessThanOrEqual(500)
          if (field.elements?.fields) walk(field.elements.fields, `${path}${name}[].`)
          if (field.fields) walk(field.fields, `${path}${name}.`)
        }
      }
    }
    walk(Schema, '')
  })
})
