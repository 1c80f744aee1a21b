import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from '@jest/globals'
import { SignJWT } from 'jose'
import { AssertionSigner, parseAssertion } from '../../../plugins/consumer-jwt/assertion'
import { ASSERTION_TYP } from '../../../plugins/shared/gateway-assertion'
import {
  createAssertionVerifier,
  GatewayAssertionError,
  type AssertionVerifierOptions,
} from '../../../middleware/verify'
import { unsigned } from '../../helpers/tokens'

const NOW = 1_800_000_000
const SECRET = 'the-gateway-assertion-secret-of-32+-bytes'
const WEB = { id: '0a0a0a0a-0000-4000-8000-000000000001', username: 'web-app' }

/** An assertion exactly as consumer-jwt signs it. */
async function gatewaySigned(
  facts: { method?: string; path?: string; scopes?: string[] } = {},
  settings: Record<string, unknown> = {},
  at = NOW,
): Promise<string> {
  const config = parseAssertion(
    { assertion: { audience: 'orders', secret: SECRET, ...settings } },
    {},
  )
  if (config === undefined) throw new Error('assertion off')
  return new AssertionSigner(config, { now: () => at * 1000 }).sign({
    consumer: WEB,
    credential: 'web',
    subject: 'user-42',
    scopes: facts.scopes ?? ['orders:read'],
    method: facts.method ?? 'GET',
    path: facts.path ?? '/orders/1',
  })
}

/** Any JWS, for the shapes consumer-jwt never signs. */
async function handMade(
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
  key: Uint8Array | Parameters<SignJWT['sign']>[0] = new TextEncoder().encode(SECRET),
): Promise<string> {
  return new SignJWT({
    iss: 'kong',
    aud: 'orders',
    iat: NOW,
    exp: NOW + 30,
    jti: 'j-1',
    consumer: WEB,
    method: 'GET',
    path: '/orders/1',
    ...claims,
  })
    .setProtectedHeader({ alg: 'HS256', typ: ASSERTION_TYP, ...header })
    .sign(key)
}

function verifier(options: Partial<AssertionVerifierOptions> = {}, at = NOW) {
  return createAssertionVerifier({
    audience: 'orders',
    algorithm: 'HS256',
    secret: SECRET,
    now: () => at * 1000,
    ...options,
  })
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayAssertionError)
    return (e as GatewayAssertionError).code
  }
  throw new Error('expected a refusal')
}

const facts = (assertion: string | undefined, method = 'GET', url = '/orders/1') => ({
  method,
  url,
  headers: assertion === undefined ? {} : { 'x-gateway-assertion': assertion },
})

describe('middleware: verifying the gateway assertion', () => {
  it('passes a valid assertion and hands over the caller consumer-jwt authenticated', async () => {
    const caller = await verifier().verify(facts(await gatewaySigned(), 'GET', '/orders/1?x=1'))
    expect(caller).toEqual({
      consumer: { id: WEB.id, username: 'web-app' },
      credential: 'web',
      subject: 'user-42',
      scopes: ['orders:read'],
      anonymous: false,
      assertionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    })
  })

  it('refuses a request without an assertion with 401 ERR_ASSERTION_MISSING', async () => {
    const error = await verifier()
      .verify(facts(undefined))
      .catch((e: unknown) => e as GatewayAssertionError)
    expect(error).toMatchObject({
      code: 'ERR_ASSERTION_MISSING',
      status: 401,
      body: { message: 'Gateway assertion missing', code: 'ERR_ASSERTION_MISSING' },
    })
  })

  it('refuses an expired assertion (past exp beyond the clock tolerance) with ERR_ASSERTION_EXPIRED', async () => {
    const assertion = await gatewaySigned()
    await expect(verifier({}, NOW + 34).verify(facts(assertion))).resolves.toBeDefined()
    expect(await codeOf(verifier({}, NOW + 36).verify(facts(assertion)))).toBe(
      'ERR_ASSERTION_EXPIRED',
    )
  })

  it('refuses an assertion older than maxAge whatever its exp', async () => {
    const long = await handMade({ exp: NOW + 3600 })
    expect(await codeOf(verifier({ maxAge: 60 }, NOW + 120).verify(facts(long)))).toBe(
      'ERR_ASSERTION_EXPIRED',
    )
  })

  it('refuses another audience or issuer with ERR_ASSERTION_INVALID', async () => {
    const billing = await gatewaySigned({}, { audience: 'billing' })
    expect(await codeOf(verifier().verify(facts(billing)))).toBe('ERR_ASSERTION_INVALID')
    const other = await gatewaySigned({}, { issuer: 'another-gateway' })
    expect(await codeOf(verifier().verify(facts(other)))).toBe('ERR_ASSERTION_INVALID')
  })

  it('refuses an assertion made for another method with ERR_ASSERTION_MISMATCH', async () => {
    const get = await gatewaySigned({ method: 'GET' })
    expect(await codeOf(verifier().verify(facts(get, 'DELETE')))).toBe('ERR_ASSERTION_MISMATCH')
  })

  it('refuses an assertion replayed on another path with ERR_ASSERTION_MISMATCH', async () => {
    const one = await gatewaySigned({ path: '/orders/1' })
    await expect(verifier().verify(facts(one, 'GET', '/orders/1'))).resolves.toBeDefined()
    expect(await codeOf(verifier().verify(facts(one, 'GET', '/orders/2')))).toBe(
      'ERR_ASSERTION_MISMATCH',
    )
    expect(await codeOf(verifier().verify(facts(one, 'GET', '/orders/1/items')))).toBe(
      'ERR_ASSERTION_MISMATCH',
    )
  })

  it('refuses a tampered assertion (payload changed, signature kept) with ERR_ASSERTION_INVALID', async () => {
    const [h, p, s] = (await gatewaySigned({ scopes: ['orders:read'] })).split('.')
    const claims = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >
    const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'orders:admin' })).toString(
      'base64url',
    )
    expect(await codeOf(verifier().verify(facts(`${h}.${forged}.${s}`)))).toBe(
      'ERR_ASSERTION_INVALID',
    )
  })

  it('refuses alg none, and an assertion signed with another secret', async () => {
    const none = unsigned(
      {
        iss: 'kong',
        aud: 'orders',
        iat: NOW,
        exp: NOW + 30,
        jti: 'j',
        consumer: WEB,
        method: 'GET',
        path: '/orders/1',
      },
      { alg: 'none', typ: ASSERTION_TYP },
    )
    expect(await codeOf(verifier().verify(facts(none)))).toBe('ERR_ASSERTION_INVALID')
    const other = await handMade({}, {}, new TextEncoder().encode('x'.repeat(40)))
    expect(await codeOf(verifier().verify(facts(other)))).toBe('ERR_ASSERTION_INVALID')
  })

  it('refuses an HS256 assertion when EdDSA is pinned, even signed with the public key bytes (algorithm confusion)', async () => {
    const { publicKey } = generateKeyPairSync('ed25519')
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const confused = await handMade({}, {}, new TextEncoder().encode(pem))
    const pinned = verifier({ algorithm: 'EdDSA', secret: undefined, publicKey: pem })
    expect(await codeOf(pinned.verify(facts(confused)))).toBe('ERR_ASSERTION_INVALID')
  })

  it("refuses another kind of token signed with the same secret (typ is not the assertion's)", async () => {
    const accessToken = await handMade({}, { typ: 'JWT' })
    expect(await codeOf(verifier().verify(facts(accessToken)))).toBe('ERR_ASSERTION_INVALID')
  })

  it('refuses a signed payload not shaped as an assertion (no consumer id)', async () => {
    const odd = await handMade({ consumer: { username: 'x' } })
    expect(await codeOf(verifier().verify(facts(odd)))).toBe('ERR_ASSERTION_INVALID')
  })

  it('refuses two assertion headers (Node joins them into one value)', async () => {
    const a = await gatewaySigned()
    expect(await codeOf(verifier().verify(facts(`${a}, ${a}`)))).toBe('ERR_ASSERTION_INVALID')
  })

  it('refuses the anonymous consumer by default: 401 ERR_ASSERTION_ANONYMOUS', async () => {
    const anon = await handMade({ anonymous: true, consumer: { id: 'a-1' } })
    expect(await codeOf(verifier().verify(facts(anon)))).toBe('ERR_ASSERTION_ANONYMOUS')
    expect(await codeOf(verifier({ allowAnonymous: false }).verify(facts(anon)))).toBe(
      'ERR_ASSERTION_ANONYMOUS',
    )
    // Still about this request first: a replayed anonymous assertion is a mismatch.
    expect(await codeOf(verifier().verify(facts(anon, 'GET', '/orders/2')))).toBe(
      'ERR_ASSERTION_MISMATCH',
    )
  })

  it('passes the anonymous consumer with allowAnonymous, marked, with no credential and no scopes', async () => {
    const anon = await handMade({ anonymous: true, consumer: { id: 'a-1' } })
    await expect(verifier({ allowAnonymous: true }).verify(facts(anon))).resolves.toMatchObject({
      consumer: { id: 'a-1', username: undefined },
      credential: undefined,
      scopes: [],
      anonymous: true,
    })
  })

  it('checks the path as Kong rewrote it: a stripped route prefix and a service path', async () => {
    const a = await gatewaySigned({ path: '/api/orders/1' })
    const stripped = verifier({ routePrefix: '/api' })
    await expect(stripped.verify(facts(a, 'GET', '/orders/1'))).resolves.toBeDefined()
    expect(await codeOf(stripped.verify(facts(a, 'GET', '/api/orders/1')))).toBe(
      'ERR_ASSERTION_MISMATCH',
    )
    const withService = verifier({ routePrefix: ['/v2', '/api'], servicePath: '/internal' })
    await expect(withService.verify(facts(a, 'GET', '/internal/orders/1'))).resolves.toBeDefined()
  })

  it('fails at start, with a TypeError naming the option, on bad options', () => {
    const bad: [Partial<AssertionVerifierOptions>, RegExp][] = [
      [{ audience: '' }, /"audience" option is required/],
      [{ secret: 'short' }, /"secret" option must be at least 32 bytes/],
      [{ algorithm: 'HS512' as 'HS256' }, /"algorithm" option must be one of/],
      [{ algorithm: 'EdDSA' }, /"publicKey" option is required for EdDSA/],
      [{ publicKey: 'x' }, /"secret" option or "publicKey" must be given, not both/],
      [{ clockTolerance: 120 }, /"clockTolerance" option must be between 0 and 60/],
      [{ maxAge: 0 }, /"maxAge" option must be between 1 and 600/],
      [
        { allowAnonymous: 'yes' as unknown as boolean },
        /"allowAnonymous" option must be a boolean/,
      ],
      [
        {
          algorithm: 'RS256',
          secret: undefined,
          publicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
        },
        /"publicKey" option does not fit RS256 \(an RSA key must have 2048 bits or more\)/,
      ],
      [
        {
          algorithm: 'ES256',
          secret: undefined,
          publicKey: generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey,
        },
        /"publicKey" option does not fit ES256 \(a ec key on secp384r1 signs none of/,
      ],
      [
        {
          algorithm: 'ES256',
          secret: undefined,
          publicKey: generateKeyPairSync('ed25519').publicKey,
        },
        /"publicKey" option does not fit ES256 \(an EdDSA key\)/,
      ],
    ]
    for (const [options, message] of bad) {
      expect(() => verifier(options)).toThrow(message)
    }
  })
})
