// Generates the DEMO key pairs under spec/fixtures/keys/ (committed: they protect nothing but the
// demo, the e2e suite and the docker compose stack; never use them for anything real).
// Run again to rotate them, then update kong.yml's public keys (the command prints them).
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from 'jose'
import { mkdirSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'

const dir = new URL('../spec/fixtures/keys/', import.meta.url).pathname
mkdirSync(dir, { recursive: true })
const consumers = [
  ['web-app', 'ES256', 'web-2026-11'],
  ['mobile-app', 'EdDSA', 'mobile-2026-11'],
  ['partner-acme', 'RS256', 'acme-2026-11'],
]
for (const [name, alg, kid] of consumers) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  writeFileSync(`${dir}${name}.private.pem`, await exportPKCS8(privateKey))
  writeFileSync(`${dir}${name}.public.pem`, await exportSPKI(publicKey))
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  writeFileSync(`${dir}${name}.jwks.json`, JSON.stringify({ keys: [jwk] }, null, 2) + '\n')
  writeFileSync(`${dir}${name}.json`, JSON.stringify({ alg, kid }) + '\n')
}
writeFileSync(`${dir}partner-globex.secret`, randomBytes(48).toString('base64url') + '\n')
console.log(`keys written to ${dir}`)
