import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { JWK, JWTVerifyGetKey } from 'jose'
import { afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import { RemoteJwks } from '../../../../../plugins/shared/token/jwks'
import { keyPair } from '../../../../helpers/tokens'
import { until } from '../../../../helpers/poll'

let k1: JWK
let k2: JWK
beforeAll(async () => {
  k1 = (await keyPair('ES256', 'k1')).jwk
  k2 = (await keyPair('ES256', 'k2')).jwk
})

/** A JWKS endpoint on loopback whose behaviour each test steers. */
class Endpoint {
  hits = 0
  mode: 'ok' | 'error' | 'hang' = 'ok'
  keys: JWK[] = []
  server: Server | undefined
  async start(): Promise<string> {
    const server = createServer((_req, res) => {
      this.hits++
      if (this.mode === 'hang') return
      if (this.mode === 'error') return void res.writeHead(503).end()
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: this.keys }))
    })
    this.server = server
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
  }
  stop(): void {
    this.server?.closeAllConnections()
    this.server?.close()
  }
}

let endpoint: Endpoint
afterEach(() => endpoint.stop())

const header = (kid: string) => ({ alg: 'ES256', kid })
const token = { payload: '', signature: '' } as Parameters<JWTVerifyGetKey>[1]

/** A RemoteJwks on `uri` with test defaults, overridden per test. */
function remote(
  uri: string,
  o: Partial<Omit<ConstructorParameters<typeof RemoteJwks>[0], 'uri'>> = {},
): RemoteJwks {
  return new RemoteJwks({
    uri,
    timeoutMs: 1000,
    cacheTtlMs: 60_000,
    cooldownMs: 30_000,
    clock: { now: () => Date.now() },
    ...o,
  })
}

async function codeOf(p: unknown): Promise<string> {
  try {
    await p
  } catch (e) {
    return (e as { code: string }).code
  }
  return 'PASSED'
}

describe('remote JWKS', () => {
  it('fetches once and serves later lookups from the cache', async () => {
    endpoint = new Endpoint()
    endpoint.keys = [k1]
    const jwks = remote(await endpoint.start())
    await jwks.getKey(header('k1'), token)
    await jwks.getKey(header('k1'), token)
    expect(endpoint.hits).toBe(1)
  })

  it('refetches once for an unknown kid, then not again within the cooldown', async () => {
    endpoint = new Endpoint()
    endpoint.keys = [k1]
    let now = 0
    const jwks = remote(await endpoint.start(), { cacheTtlMs: 600_000, clock: { now: () => now } })
    await jwks.getKey(header('k1'), token)
    now = 31_000
    endpoint.keys = [k1, k2] // key rotation at the issuer
    await jwks.getKey(header('k2'), token)
    expect(endpoint.hits).toBe(2)
    expect(await codeOf(jwks.getKey(header('k3'), token))).toBe('ERR_JWKS_NO_MATCHING_KEY')
    expect(await codeOf(jwks.getKey(header('k4'), token))).toBe('ERR_JWKS_NO_MATCHING_KEY')
    expect(endpoint.hits).toBe(2)
  })

  it('fetches at most once per request: an unknown kid right after the first fetch is not refetched', async () => {
    endpoint = new Endpoint()
    endpoint.keys = [k1]
    const jwks = remote(await endpoint.start(), { cooldownMs: 0 })
    expect(await codeOf(jwks.getKey(header('k9'), token))).toBe('ERR_JWKS_NO_MATCHING_KEY')
    expect(endpoint.hits).toBe(1)
  })

  it('shares one fetch between concurrent first requests', async () => {
    endpoint = new Endpoint()
    endpoint.keys = [k1]
    const jwks = remote(await endpoint.start(), { cooldownMs: 0 })
    await Promise.all([1, 2, 3, 4, 5].map(async () => jwks.getKey(header('k1'), token)))
    expect(endpoint.hits).toBe(1)
  })

  it('keeps serving cached keys while the endpoint is down', async () => {
    endpoint = new Endpoint()
    endpoint.keys = [k1]
    let now = 0
    const jwks = remote(await endpoint.start(), {
      timeoutMs: 500,
      cacheTtlMs: 1000,
      cooldownMs: 0,
      clock: { now: () => now },
    })
    await jwks.getKey(header('k1'), token)
    endpoint.mode = 'error'
    now = 5000 // stale: a background refresh fails, the old keys keep working
    expect(await codeOf(jwks.getKey(header('k1'), token))).toBe('PASSED')
    // The refresh really went to the endpoint and failed (else "while down" proves nothing)…
    await until('the refresh reached the endpoint', 2000, () => endpoint.hits >= 2)
    // …and the keys still serve after that failure.
    expect(await codeOf(jwks.getKey(header('k1'), token))).toBe('PASSED')
  })

  it('refuses with ERR_KEY_SOURCE_UNAVAILABLE when the first fetch fails', async () => {
    endpoint = new Endpoint()
    endpoint.mode = 'error'
    const jwks = remote(await endpoint.start(), { timeoutMs: 500, cacheTtlMs: 1000, cooldownMs: 0 })
    expect(await codeOf(jwks.getKey(header('k1'), token))).toBe('ERR_KEY_SOURCE_UNAVAILABLE')
    expect(endpoint.hits).toBe(1)
  })

  it('never makes a request wait longer than the timeout on a hanging endpoint', async () => {
    endpoint = new Endpoint()
    endpoint.mode = 'hang'
    const jwks = remote(await endpoint.start(), { timeoutMs: 200, cacheTtlMs: 1000, cooldownMs: 0 })
    const started = Date.now()
    expect(await codeOf(jwks.getKey(header('k1'), token))).toBe('ERR_KEY_SOURCE_UNAVAILABLE')
    expect(Date.now() - started).toBeLessThan(1500) // a bound, not a benchmark
    // It did reach the hanging endpoint and waited for it, not fail fast on something else.
    expect(endpoint.hits).toBe(1)
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
  })

  it('refuses with ERR_KEY_SOURCE_UNAVAILABLE when nothing listens at the URL', async () => {
    endpoint = new Endpoint()
    const uri = await endpoint.start()
    endpoint.stop()
    const jwks = remote(uri, { timeoutMs: 500, cacheTtlMs: 1000, cooldownMs: 0 })
    expect(await codeOf(jwks.getKey(header('k1'), token))).toBe('ERR_KEY_SOURCE_UNAVAILABLE')
  })
})
