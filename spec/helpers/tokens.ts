import { KeyObject } from 'node:crypto'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose'

export type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>

/** Keys generated once per test run (never committed). */
export async function keyPair(
  alg: string,
  kid?: string,
): Promise<{ pair: KeyPair; pem: string; jwk: JWK }> {
  const pair = await generateKeyPair(alg, { extractable: true })
  const jwk = {
    ...(await exportJWK(pair.publicKey)),
    alg,
    use: 'sig',
    ...(kid !== undefined ? { kid } : {}),
  }
  return { pair, pem: await exportSPKI(pair.publicKey), jwk }
}

export const HS_SECRET = 'a-test-secret-that-is-at-least-32-bytes-long!'

export interface MintOptions {
  alg?: string
  key: KeyPair['privateKey'] | Uint8Array
  kid?: string
  typ?: string
  /** Seconds since the epoch that "now" is for iat/exp defaults. */
  now?: number
  ttl?: number
}

/** Signs a JWT; iat and exp default from `now` and `ttl` unless the claims set them (null removes). */
export async function mint(claims: Record<string, unknown>, o: MintOptions): Promise<string> {
  const now = o.now ?? Math.floor(Date.now() / 1000)
  const claimed: Record<string, unknown> = { iat: now, exp: now + (o.ttl ?? 300), ...claims }
  const payload = Object.fromEntries(Object.entries(claimed).filter(([, v]) => v !== null))
  return (
    new SignJWT(payload)
      .setProtectedHeader({
        alg: o.alg ?? 'HS256',
        ...(o.kid !== undefined ? { kid: o.kid } : {}),
        ...(o.typ !== undefined ? { typ: o.typ } : {}),
      })
      // A KeyObject is not bound to one algorithm, so one RSA pair signs RS* and PS* alike.
      .sign(o.key instanceof Uint8Array ? o.key : KeyObject.from(o.key))
  )
}

export const secretKey = (secret = HS_SECRET): Uint8Array => new TextEncoder().encode(secret)

/** A token with a forged header: alg none, no signature. */
export function unsigned(
  claims: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'none' },
): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${b64(header)}.${b64(claims)}.`
}
