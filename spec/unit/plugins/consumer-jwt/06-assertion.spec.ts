import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from '@jest/globals'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { processConfig, type SchemaField } from '../../../../cli/kong/schema'
import { AssertionSigner } from '../../../../plugins/consumer-jwt/assertion'
import { ConsumerJwtHandler } from '../../../../plugins/consumer-jwt/handler'
import { parseConfig, Schema } from '../../../../plugins/consumer-jwt/schema'
import { createAssertionVerifier } from '../../../../middleware/verify'
import { FakeKong, type FakeRequest } from '../../../helpers/fake-kong'
import { MemoryLogger } from '../../../helpers/logger'
import { HS_SECRET, mint, secretKey } from '../../../helpers/tokens'

/**
 * consumer-jwt's `assertion`: a signed statement of who passed and for which request, set in
 * the same set_headers call as the identity headers, at the cost of one call (the request line).
 */
const NOW = 1_800_000_000
const clock = { now: () => NOW * 1000 }
const WEB = { id: '0a0a0a0a-0000-4000-8000-000000000001', username: 'web-app', custom_id: 'web-1' }
const ANON = { id: '0a0a0a0a-0000-4000-8000-0000000000ff', username: 'anonymous' }
const ASSERTION_SECRET = 'the-gateway-assertion-secret-of-32+-bytes'
const ASSERTION = { audience: 'orders', secret: ASSERTION_SECRET }

const CREDENTIALS = [{ key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET }]

function setup(config: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) {
  const logger = new MemoryLogger()
  const handler = new ConsumerJwtHandler(
    { credentials: CREDENTIALS, share_token: false, assertion: ASSERTION, ...config },
    { clock, env, logger },
  )
  const request = async (req: FakeRequest, consumers = [WEB, ANON]) => {
    const kong = new FakeKong(req)
    kong.consumers.push(...consumers)
    await handler.accessWith(kong)
    return kong
  }
  return { handler, logger, request }
}

const bearer = async (
  method = 'GET',
  path = '/orders/1?expand=items',
  claims: Record<string, unknown> = {},
): Promise<FakeRequest> => ({
  method,
  path,
  headers: {
    authorization: `Bearer ${await mint(
      { iss: 'web', sub: 'user-42', scope: 'orders:read orders:write', ...claims },
      { key: secretKey(), now: NOW, ttl: 300 },
    )}`,
  },
})

const verifier = (overrides: Record<string, unknown> = {}) =>
  createAssertionVerifier({
    audience: 'orders',
    algorithm: 'HS256',
    secret: ASSERTION_SECRET,
    now: clock.now,
    ...overrides,
  })

describe('consumer-jwt: the gateway assertion (handler)', () => {
  it('sends a signed assertion of consumer, credential, subject, scopes, method and path in the one set_headers call', async () => {
    const { request } = setup()
    const kong = await request(await bearer())
    expect(kong.exitResult).toBeUndefined()
    expect(kong.calls).toEqual([
      'kong.request.get_headers',
      'kong.client.load_consumer',
      'kong.nginx.get_var',
      'kong.service.request.set_headers',
      'kong.client.authenticate',
    ])
    const assertion = kong.upstreamHeader('X-Gateway-Assertion') ?? ''
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'HS256', typ: 'gateway-assertion+jwt' })
    expect(decodeJwt(assertion)).toEqual({
      iss: 'kong',
      aud: 'orders',
      iat: NOW,
      exp: NOW + 30,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      sub: 'user-42',
      consumer: { id: WEB.id, username: 'web-app' },
      credential: 'web',
      scope: 'orders:read orders:write',
      method: 'GET',
      path: '/orders/1',
    })
    const caller = await verifier().verify({
      method: 'GET',
      url: '/orders/1?expand=items',
      headers: { 'x-gateway-assertion': assertion },
    })
    expect(caller).toMatchObject({
      consumer: { id: WEB.id, username: 'web-app' },
      credential: 'web',
      subject: 'user-42',
      scopes: ['orders:read', 'orders:write'],
      anonymous: false,
    })
  })

  it('costs one round trip more than without it on the cached path: 5, the request line after the headers', async () => {
    const { request } = setup()
    const req = await bearer()
    await request(req)
    const kong = await request(req, [])
    expect(kong.exitResult).toBeUndefined()
    expect(kong.calls).toEqual([
      'kong.request.get_headers',
      'kong.nginx.get_var',
      'kong.service.request.set_headers',
      'kong.client.authenticate',
    ])
    expect(kong.roundTrips).toBe(5)
  })

  it('reads the method for scope rules by method from the request line: still 5 round trips, no get_method', async () => {
    const { request } = setup({
      scopes: {
        rules: [
          { methods: ['GET'], scopes: ['orders:read'] },
          { methods: ['DELETE'], scopes: ['orders:admin'] },
        ],
      },
    })
    const req = await bearer()
    await request(req)
    const kong = await request(req, [])
    expect(kong.exitResult).toBeUndefined()
    expect(kong.calls).not.toContain('kong.request.get_method')
    expect(kong.roundTrips).toBe(5)

    const refused = await request(await bearer('DELETE', '/orders/1'))
    expect(refused.exitResult?.body.code).toBe('ERR_SCOPE_INSUFFICIENT')
    expect(refused.calls).toEqual([
      'kong.request.get_headers',
      'kong.nginx.get_var',
      'kong.response.exit',
    ])
  })

  it('reads no request line when the route scope (kong.yml design) refuses: 2 round trips, as without an assertion', async () => {
    const { request } = setup({ scopes: { default_rule: { scopes: ['orders:admin'] } } })
    const kong = await request(await bearer())
    expect(kong.exitResult?.body.code).toBe('ERR_SCOPE_INSUFFICIENT')
    expect(kong.calls).toEqual([
      'kong.request.get_headers',
      'kong.client.load_consumer',
      'kong.response.exit',
    ])
  })

  it('reads no request line for a refused token: 2 round trips, as without an assertion', async () => {
    const { request } = setup()
    const forged = await mint(
      { iss: 'web', sub: 'user-42' },
      { key: secretKey('another-secret-that-is-at-least-32-bytes!!'), now: NOW, ttl: 300 },
    )
    const kong = await request({ headers: { authorization: `Bearer ${forged}` } })
    expect(kong.exitResult?.body.code).toBe('ERR_SIGNATURE_INVALID')
    expect(kong.roundTrips).toBe(2)
  })

  it('replaces an assertion the client sent with its own', async () => {
    const { request } = setup()
    const req = await bearer()
    const kong = await request({
      ...req,
      headers: { ...req.headers, 'x-gateway-assertion': 'forged.by.client' },
    })
    expect(kong.upstreamHeader('X-Gateway-Assertion')).not.toBe('forged.by.client')
    await expect(
      verifier().verify({
        method: 'GET',
        url: '/orders/1',
        headers: { 'x-gateway-assertion': kong.upstreamHeader('X-Gateway-Assertion') },
      }),
    ).resolves.toMatchObject({ credential: 'web' })
  })

  it('removes a client copy of the assertion when it authenticates nobody (preflight left alone)', async () => {
    const { request } = setup({ run_on_preflight: false, claims_to_headers: [] })
    const kong = await request({
      method: 'OPTIONS',
      headers: { 'x-gateway-assertion': 'forged.by.client' },
    })
    expect(kong.exitResult).toBeUndefined()
    expect(kong.upstreamHeaders['x-gateway-assertion']).toEqual([])
    expect(kong.calls).not.toContain('kong.nginx.get_var')
  })

  it('asserts the anonymous consumer of a failed authentication, marked anonymous and without credential', async () => {
    const { request } = setup({ anonymous: 'anonymous' })
    const kong = await request({ method: 'POST', path: '/orders' })
    expect(kong.authenticated?.consumer).toEqual(ANON)
    const claims = decodeJwt(kong.upstreamHeader('X-Gateway-Assertion') ?? '')
    expect(claims).toMatchObject({
      consumer: { id: ANON.id, username: 'anonymous' },
      anonymous: true,
      method: 'POST',
      path: '/orders',
    })
    expect(claims).not.toHaveProperty('credential')
    expect(claims).not.toHaveProperty('scope')
  })

  it('signs with an EdDSA, ES256 or RS256 private key, the algorithm taken from the key, with the configured kid, issuer and lifetime', async () => {
    for (const [pair, alg] of [
      [generateKeyPairSync('ed25519'), 'EdDSA'],
      [generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ES256'],
      [generateKeyPairSync('rsa', { modulusLength: 2048 }), 'RS256'],
    ] as const) {
      const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
      const { request } = setup({
        assertion: {
          audience: 'orders',
          issuer: 'edge',
          private_key: pem,
          key_id: 'k1',
          lifetime: 10,
        },
      })
      const kong = await request(await bearer())
      const assertion = kong.upstreamHeader('X-Gateway-Assertion') ?? ''
      expect(decodeProtectedHeader(assertion)).toEqual({
        alg,
        typ: 'gateway-assertion+jwt',
        kid: 'k1',
      })
      expect(decodeJwt(assertion)).toMatchObject({ iss: 'edge', exp: NOW + 10 })
      await expect(
        verifier({ algorithm: alg, secret: undefined, publicKey: pair.publicKey, issuer: 'edge' })
          .verify({
            method: 'GET',
            url: '/orders/1',
            headers: { 'x-gateway-assertion': assertion },
          })
          .then((c) => c.credential),
      ).resolves.toBe('web')
    }
  })

  it('is off when Kong sends the unset record ({}): no request line read, no header', async () => {
    const filled = processConfig(Schema as unknown as readonly SchemaField[], {
      credentials: CREDENTIALS,
      share_token: false,
    })
    expect(filled.assertion).toEqual({})
    const logger = new MemoryLogger()
    const handler = new ConsumerJwtHandler(filled, { clock, env: {}, logger })
    const kong = new FakeKong(await bearer())
    kong.consumers.push(WEB)
    await handler.accessWith(kong)
    expect(kong.exitResult).toBeUndefined()
    expect(kong.calls).not.toContain('kong.nginx.get_var')
    expect(kong.upstreamHeader('X-Gateway-Assertion')).toBeUndefined()
  })

  it('answers 500 ERR_CONFIG_INVALID to every request when the assertion settings are bad, naming the field', async () => {
    const { request, logger } = setup({ assertion: { audience: 'orders', secret: 'short' } })
    const kong = await request(await bearer())
    expect(kong.exitResult).toMatchObject({ status: 500, body: { code: 'ERR_CONFIG_INVALID' } })
    expect(logger.text()).toContain('assertion.secret: must be at least 32 bytes')
  })
})

describe('consumer-jwt: the assertion signer', () => {
  it('turns any signing failure into a PluginError ERR_INTERNAL (the boundary answers 500), never another error', async () => {
    const broken = new AssertionSigner(
      {
        audience: 'orders',
        issuer: 'kong',
        algorithm: 'EdDSA',
        key: { kind: 'private_key', pkcs8: 'not a key' },
        key_id: undefined,
        lifetime: 30,
        header: 'X-Gateway-Assertion',
      },
      clock,
    )
    await expect(
      broken.sign({
        consumer: WEB,
        credential: 'web',
        subject: undefined,
        scopes: [],
        method: 'GET',
        path: '/',
      }),
    ).rejects.toMatchObject({ name: 'PluginError', code: 'ERR_INTERNAL' })
  })

  it('refuses with ERR_INTERNAL a request line Kong did not give', async () => {
    const kong = new FakeKong()
    kong.nginx.getVar = () => Promise.resolve(undefined)
    await expect(AssertionSigner.readRequest(kong)).rejects.toMatchObject({
      code: 'ERR_INTERNAL',
    })
  })
})

describe('consumer-jwt: the assertion settings (schema)', () => {
  const parse = (assertion: unknown, env: NodeJS.ProcessEnv = {}, extra = {}) =>
    parseConfig({ credentials: CREDENTIALS, assertion, ...extra }, env).assertion

  const refusal = (assertion: unknown, env: NodeJS.ProcessEnv = {}, extra = {}): string => {
    try {
      parse(assertion, env, extra)
    } catch (e) {
      const err = e as { code: string; message: string }
      expect(err.code).toBe('ERR_CONFIG_INVALID')
      return err.message
    }
    throw new Error('expected a config error')
  }

  it('applies the documented defaults: issuer kong, HS256, 30 s, X-Gateway-Assertion', () => {
    expect(parse(ASSERTION)).toMatchObject({
      audience: 'orders',
      issuer: 'kong',
      algorithm: 'HS256',
      lifetime: 30,
      header: 'X-Gateway-Assertion',
      key_id: undefined,
    })
  })

  it('reads the secret from secret_env, and refuses an unset variable', () => {
    expect(parse({ audience: 'a', secret_env: 'GW' }, { GW: ASSERTION_SECRET })?.key).toEqual({
      kind: 'secret',
      secret: new TextEncoder().encode(ASSERTION_SECRET),
    })
    expect(refusal({ audience: 'a', secret_env: 'GW' })).toContain(
      'assertion.secret_env: environment variable GW is not set',
    )
  })

  it.each([
    [{ secret: ASSERTION_SECRET }, 'assertion.audience: is required'],
    [{ audience: 'a' }, 'exactly one of secret, secret_env, private_key must be set (got none)'],
    [
      { audience: 'a', secret: ASSERTION_SECRET, private_key: 'x' },
      'exactly one of secret, secret_env, private_key must be set (got secret, private_key)',
    ],
    [{ audience: 'a', secret: 'too-short' }, 'assertion.secret: must be at least 32 bytes'],
    [{ audience: 'a', secret: '{vault://env/gw}' }, 'assertion.secret: is an unresolved vault'],
    [
      { audience: 'a', private_key: 'not a key' },
      'assertion.private_key: is not a PEM private key',
    ],
    [
      { audience: 'a', secret: ASSERTION_SECRET, algorithm: 'ES256' },
      'assertion.algorithm: ES256 needs a private_key',
    ],
    [{ audience: 'a', secret: ASSERTION_SECRET, lifetime: 301 }, 'assertion.lifetime: must be'],
    [{ audience: 'a', secret: ASSERTION_SECRET, lifetime: 0 }, 'assertion.lifetime: must be'],
    [
      { audience: 'a', secret: ASSERTION_SECRET, header: 'X-Consumer-ID' },
      'assertion.header: X-Consumer-ID is reserved',
    ],
    [{ audience: 'a', secret: ASSERTION_SECRET, header: 'bad header' }, 'must be a header name'],
  ])('refuses %j: %s', (assertion, message) => {
    expect(refusal(assertion)).toContain(message)
  })

  it('refuses a header that claims_to_headers also writes', () => {
    expect(
      refusal(
        { ...ASSERTION, header: 'X-Subject' },
        {},
        {
          claims_to_headers: [{ claim: 'sub', header: 'x-subject' }],
        },
      ),
    ).toContain('assertion.header: X-Subject is also a claims_to_headers header')
  })

  it('refuses a private key that signs none of the algorithms, or not the one set', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString()
    expect(refusal({ audience: 'a', private_key: p384 })).toContain(
      'assertion.private_key: a ec key on secp384r1 signs none of',
    )
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs1', format: 'pem' })
      .toString()
    expect(refusal({ audience: 'a', private_key: rsa1024 })).toContain('2048 bits or more')
    const ed = generateKeyPairSync('ed25519')
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString()
    expect(refusal({ audience: 'a', private_key: ed, algorithm: 'RS256' })).toContain(
      'assertion.algorithm: RS256 does not fit the private key (EdDSA)',
    )
  })
})
