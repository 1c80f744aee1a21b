import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createPublicKey } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeJwt, decodeProtectedHeader, generateKeyPair, exportPKCS8, jwtVerify } from 'jose'
import { parse, stringify } from 'yaml'
import {
  cli,
  consumerJwtConfig,
  GLOBEX_SECRET,
  KEYS,
  KONG_YML,
  pluginVerifier,
  tempDir,
} from './helpers'

const NOW_MS = Date.now()
const at = { nowMs: NOW_MS }

const TYPES = ['hs256', 'hs384', 'hs512', 'rs256', 'ps256', 'es256', 'es384', 'eddsa'] as const

let tmp: ReturnType<typeof tempDir>
let kongYml: string
const env: NodeJS.ProcessEnv = {}
const kids: Record<string, string> = {}

/** kong.yml with one consumer-jwt and one credential per key type, all made by `keys generate`. */
beforeAll(async () => {
  tmp = tempDir()
  const credentials: Record<string, unknown>[] = []
  for (const type of TYPES) {
    const r = await cli([
      'keys',
      'generate',
      '--type',
      type,
      '--kid',
      `${type}-1`,
      '--out-dir',
      tmp.dir,
      '--consumer',
      `c-${type}`,
      '--issuer',
      `https://issuer.example/${type}`,
    ])
    expect(r.code).toBe(0)
    kids[type] = `${type}-1`
    credentials.push(
      (
        parse(r.out.slice(r.out.indexOf('\n- key:') + 1).split('\n# ')[0] ?? '') as Record<
          string,
          unknown
        >[]
      )[0] as Record<string, unknown>,
    )
    if (type.startsWith('hs'))
      env[`C_${type.toUpperCase()}_JWT_SECRET`] = readFileSync(
        join(tmp.dir, `${type}-1.secret`),
        'utf8',
      ).trim()
  }
  kongYml = join(tmp.dir, 'kong.yml')
  writeFileSync(
    kongYml,
    stringify({
      _format_version: '3.0',
      services: [
        {
          name: 'api',
          url: 'http://api:8080',
          routes: [
            {
              name: 'api',
              paths: ['/'],
              plugins: [
                {
                  name: 'consumer-jwt',
                  config: {
                    maximum_lifetime: 120,
                    required_claims: ['exp', 'iat', 'sub', 'jti'],
                    credentials: credentials.map((c) => ({
                      ...c,
                      audiences: ['api'],
                      scope_ceiling: ['a', 'b'],
                    })),
                  },
                },
              ],
            },
          ],
        },
      ],
      consumers: TYPES.map((t) => ({ username: `c-${t}` })),
    }),
  )
})
afterAll(() => tmp?.dispose())

describe('kong-jwt-toolkit token mint: (cli, round trip through the plugin verifier)', () => {
  it.each(TYPES)('%s: mints a token for the consumer that consumer-jwt verifies', async (type) => {
    const key = type.startsWith('hs') ? [] : ['--key', join(tmp.dir, `${type}-1.private.pem`)]
    const r = await cli(['token', 'mint', '--config', kongYml, '--consumer', `c-${type}`, ...key], {
      env,
      ...at,
    })
    expect(r).toMatchObject({
      code: 0,
      err: expect.stringContaining(`minted for consumer c-${type}`),
    })
    const header = decodeProtectedHeader(r.out)
    expect(header.alg).toBe(type === 'eddsa' ? 'EdDSA' : type.toUpperCase())
    // The kid of the matching key in the credential's JWK set (HS: none; the secret is the key).
    expect(header.kid).toBe(type.startsWith('hs') ? undefined : kids[type])
    const claims = decodeJwt(r.out)
    expect(claims).toMatchObject({
      iss: `https://issuer.example/${type}`,
      aud: 'api',
      sub: `dev:c-${type}`,
      scope: 'a b',
    })
    // The default lifetime (5 min) is cut to the credential's cap.
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(120)
    expect(await pluginVerifier(consumerJwtConfig(kongYml), { ...at, env }).verify(r.out)).toBe(
      'PASSED',
    )
  })

  it('signs with a private JWK file as well as a PEM', async () => {
    const r = await cli(
      [
        'token',
        'mint',
        '--config',
        kongYml,
        '--consumer',
        'c-ps256',
        '--key',
        join(tmp.dir, 'ps256-1.private.jwk.json'),
      ],
      { env, ...at },
    )
    expect(r.code).toBe(0)
    expect(decodeProtectedHeader(r.out)).toMatchObject({ alg: 'PS256', kid: 'ps256-1' })
    expect(await pluginVerifier(consumerJwtConfig(kongYml), { ...at, env }).verify(r.out)).toBe(
      'PASSED',
    )
  })

  it('reads a secret file as its credential reads the secret (secret_is_base64), without the env variable', async () => {
    const r = await cli(
      [
        'token',
        'mint',
        '--config',
        kongYml,
        '--consumer',
        'c-hs384',
        '--key',
        join(tmp.dir, 'hs384-1.secret'),
      ],
      at,
    )
    expect(r.code).toBe(0)
    expect(await pluginVerifier(consumerJwtConfig(kongYml), { ...at, env }).verify(r.out)).toBe(
      'PASSED',
    )
  })

  it('asks which credential (--credential) or which consumer-jwt (--route) when the choice is not unique', async () => {
    const t = tempDir()
    try {
      const secret = 's'.repeat(32)
      const cred = (key: string) => ({ key, consumer: 'dup', algorithms: ['HS256'], secret })
      const route = (name: string, config: Record<string, unknown>) => ({
        name,
        paths: [`/${name}`],
        plugins: [{ name: 'consumer-jwt', config }],
      })
      const yml = join(t.dir, 'kong.yml')
      writeFileSync(
        yml,
        stringify({
          _format_version: '3.0',
          services: [
            {
              name: 's',
              url: 'http://s',
              routes: [
                route('two-keys', { credentials: [cred('k1'), cred('k2')] }),
                route('short', { maximum_lifetime: 60, credentials: [cred('k3')] }),
                route('long', { maximum_lifetime: 600, credentials: [cred('k3')] }),
              ],
            },
          ],
        }),
      )
      const mintDup = (...extra: string[]) =>
        cli(['token', 'mint', '--config', yml, '--consumer', 'dup', ...extra], at)
      expect((await mintDup()).err).toBe(
        'error: consumer dup has 3 credentials (k1, k2, k3); choose one with --credential <key>',
      )
      expect((await mintDup('--credential', 'k3')).err).toBe(
        'error: credential k3 is verified differently in several places (route short | route long); choose one with --route <name>',
      )
      const short = await mintDup('--credential', 'k3', '--route', 'short')
      expect(short.code).toBe(0)
      const claims = decodeJwt(short.out)
      expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(60)
      expect(decodeJwt((await mintDup('--credential', 'k1')).out).iss).toBe('k1')
      expect((await mintDup('--credential', 'k9')).err).toBe(
        'error: --credential k9: not a credential of dup (its keys: k1, k2, k3)',
      )
    } finally {
      t.dispose()
    }
  })

  it('secret_env: signs with the variable of the environment and says which one is missing; a disabled consumer-jwt is left out', async () => {
    const t = tempDir()
    try {
      const secret = 'e'.repeat(40)
      const config = {
        credentials: [
          { key: 'k-env', consumer: 'svc', algorithms: ['HS256'], secret_env: 'SVC_JWT_SECRET' },
        ],
      }
      const off = {
        credentials: [
          { key: 'k-off', consumer: 'svc', algorithms: ['HS256'], secret: 'o'.repeat(32) },
        ],
      }
      const yml = join(t.dir, 'kong.yml')
      writeFileSync(
        yml,
        stringify({
          _format_version: '3.0',
          services: [
            {
              name: 'api',
              url: 'http://api',
              plugins: [{ name: 'consumer-jwt', config }],
              routes: [
                {
                  name: 'off',
                  paths: ['/off'],
                  plugins: [{ name: 'consumer-jwt', enabled: false, config: off }],
                },
              ],
            },
          ],
        }),
      )
      const mintSvc = (env: NodeJS.ProcessEnv) =>
        cli(['token', 'mint', '--config', yml, '--consumer', 'svc'], { ...at, env })
      const without = await mintSvc({})
      expect(without).toMatchObject({ code: 2, out: '' })
      expect(without.err).toBe(
        'error: credential k-env (consumer svc): the secret_env: the environment variable SVC_JWT_SECRET is not set; or give the secret with --key <file>',
      )
      const env = { SVC_JWT_SECRET: secret }
      const r = await mintSvc(env)
      expect(r.code).toBe(0)
      expect(r.err).toContain('(credential k-env, consumer-jwt on service api)')
      expect(await pluginVerifier(config, { ...at, env }).verify(r.out)).toBe('PASSED')
    } finally {
      t.dispose()
    }
  })

  it('key_claim_name kid: the credential key goes into the kid header, and the plugin selects it from there', async () => {
    const t = tempDir()
    try {
      const config = {
        key_claim_name: 'kid',
        credentials: [
          { key: 'key-7', consumer: 'svc', algorithms: ['HS512'], secret: 'k'.repeat(64) },
        ],
      }
      const yml = join(t.dir, 'kong.yml')
      writeFileSync(
        yml,
        stringify({ _format_version: '3.0', plugins: [{ name: 'consumer-jwt', config }] }),
      )
      const r = await cli(['token', 'mint', '--config', yml, '--consumer', 'svc'], at)
      expect(r.code).toBe(0)
      expect(decodeProtectedHeader(r.out)).toMatchObject({ alg: 'HS512', kid: 'key-7' })
      expect(decodeJwt(r.out)).not.toHaveProperty('kid')
      expect(await pluginVerifier(config, at).verify(r.out)).toBe('PASSED')
      expect(
        (await cli(['token', 'mint', '--config', yml, '--consumer', 'svc', '--kid', 'x'], at)).err,
      ).toBe('error: --kid x: the key claim is kid, so the kid must be key-7')
    } finally {
      t.dispose()
    }
  })

  describe('the demo kong.yml and its keys (spec/fixtures/keys)', () => {
    const config = consumerJwtConfig(KONG_YML)
    const globexEnv = { PARTNER_GLOBEX_SECRET: GLOBEX_SECRET }
    const jwks = JSON.parse(readFileSync(join(KEYS, 'partner-acme.jwks.json'), 'utf8')) as unknown

    it.each([
      ['web-app', ['--key', join(KEYS, 'web-app.private.pem'), '--scope', 'orders:read']],
      ['mobile-app', ['--key', join(KEYS, 'mobile-app.private.pem')]],
      [
        'partner-acme',
        ['--key', join(KEYS, 'partner-acme.private.pem'), '--scope', 'catalog:read'],
      ],
      ['partner-globex', []],
    ])('%s: the minted token passes consumer-jwt', async (consumer, args) => {
      const r = await cli(
        ['token', 'mint', '--config', KONG_YML, '--consumer', consumer, ...args],
        { env: globexEnv, ...at },
      )
      expect(r.code).toBe(0)
      expect(await pluginVerifier(config, { ...at, env: globexEnv, jwks }).verify(r.out)).toBe(
        'PASSED',
      )
    })

    it('partner-globex: the secret comes from the env vault reference; without the variable it says which one', async () => {
      const r = await cli(
        ['token', 'mint', '--config', KONG_YML, '--consumer', 'partner-globex'],
        at,
      )
      expect(r.code).toBe(2)
      expect(r.err).toBe(
        'error: credential globex (consumer partner-globex): the secret {vault://env/partner-globex-secret} needs PARTNER_GLOBEX_SECRET in the environment; or give the secret with --key <file>',
      )
      // The secret as a file works too.
      const withFile = await cli(
        [
          'token',
          'mint',
          '--config',
          KONG_YML,
          '--consumer',
          'partner-globex',
          '--key',
          join(KEYS, 'partner-globex.secret'),
        ],
        at,
      )
      expect(withFile.code).toBe(0)
      expect(await pluginVerifier(config, { ...at, env: globexEnv }).verify(withFile.out)).toBe(
        'PASSED',
      )
    })

    it('partner-acme: says the JWKS URL was not fetched, so the signature was not checked', async () => {
      const r = await cli(
        [
          'token',
          'mint',
          '--config',
          KONG_YML,
          '--consumer',
          'partner-acme',
          '--key',
          join(KEYS, 'partner-acme.private.pem'),
        ],
        at,
      )
      expect(r.err).toContain(
        'note: signature not fetched: keys at http://acme-idp:8080/.well-known/jwks.json (add --fetch)',
      )
    })

    it('refuses scopes above the consumer ceiling unless --force, and the forced token is refused by the plugin', async () => {
      const args = [
        'token',
        'mint',
        '--config',
        KONG_YML,
        '--consumer',
        'partner-globex',
        '--scope',
        'catalog:read orders:admin',
      ]
      const r = await cli(args, { env: globexEnv, ...at })
      expect(r).toMatchObject({ code: 2, out: '' })
      expect(r.err).toBe(
        'error: consumer partner-globex may not hold orders:admin (scope_ceiling: catalog:read). The plugin would refuse this token; --force mints it anyway',
      )
      const forced = await cli([...args, '--force'], { env: globexEnv, ...at })
      expect(forced.code).toBe(0)
      expect(forced.err).toContain(
        'warning: consumer-jwt will refuse this token: scope ceiling: consumer partner-globex may not hold orders:admin [ERR_SCOPE_CEILING_EXCEEDED]',
      )
      expect(await pluginVerifier(config, { ...at, env: globexEnv }).verify(forced.out)).toBe(
        'ERR_SCOPE_CEILING_EXCEEDED',
      )
    })

    it('refuses a --ttl above maximum_lifetime unless --force', async () => {
      const r = await cli(
        ['token', 'mint', '--config', KONG_YML, '--consumer', 'partner-globex', '--ttl', '1h'],
        { env: globexEnv, ...at },
      )
      expect(r.code).toBe(2)
      expect(r.err).toMatch(/--ttl 3600 s is longer than maximum_lifetime \(600 s\)/)
      const forced = await cli(
        [
          'token',
          'mint',
          '--config',
          KONG_YML,
          '--consumer',
          'partner-globex',
          '--ttl',
          '1h',
          '--force',
        ],
        { env: globexEnv, ...at },
      )
      expect(await pluginVerifier(config, { ...at, env: globexEnv }).verify(forced.out)).toBe(
        'ERR_TOKEN_LIFETIME_EXCEEDED',
      )
    })

    it("refuses to print a token signed with a key that is not the credential's", async () => {
      const other = join(tmp.dir, 'other-es256.pem')
      writeFileSync(
        other,
        await exportPKCS8((await generateKeyPair('ES256', { extractable: true })).privateKey),
      )
      const r = await cli(
        ['token', 'mint', '--config', KONG_YML, '--consumer', 'web-app', '--key', other],
        at,
      )
      expect(r).toMatchObject({ code: 2, out: '' })
      expect(r.err).toMatch(
        /consumer-jwt would refuse this token: signature: .*\[ERR_SIGNATURE_INVALID\] \(is --key the private key of this credential\?\)/,
      )
    })

    it('refuses an algorithm the credential does not allow, or one the key cannot make', async () => {
      const rsa = ['--key', join(KEYS, 'partner-acme.private.pem')]
      const r = await cli(
        ['token', 'mint', '--config', KONG_YML, '--consumer', 'web-app', ...rsa],
        at,
      )
      expect(r.err).toBe('error: an RSA key cannot sign any of ES256 (the credential algorithms)')
      const alg = await cli(
        ['token', 'mint', '--config', KONG_YML, '--consumer', 'web-app', ...rsa, '--alg', 'ES256'],
        at,
      )
      expect(alg.err).toMatch(/--alg ES256: an RSA key cannot sign it/)
    })

    it('needs the private key of a public-key credential', async () => {
      const r = await cli(['token', 'mint', '--config', KONG_YML, '--consumer', 'web-app'], at)
      expect(r.code).toBe(2)
      expect(r.err).toMatch(
        /verifies ES256 with public keys \(pem\): give the private key with --key/,
      )
      const pub = await cli(
        [
          'token',
          'mint',
          '--config',
          KONG_YML,
          '--consumer',
          'web-app',
          '--key',
          join(KEYS, 'web-app.public.pem'),
        ],
        at,
      )
      expect(pub.err).toMatch(/a public key; a token is signed with the private key/)
    })
  })

  describe('bad input', () => {
    it.each([
      [
        ['--config', '/nonexistent/kong.yml', '--consumer', 'x'],
        'error: --config /nonexistent/kong.yml: no such file',
      ],
      [
        ['--config', KONG_YML, '--consumer', 'nobody'],
        'error: consumer "nobody" has no consumer-jwt credential in',
      ],
      [
        ['--config', KONG_YML, '--consumer', 'web-app', '--key', '/nonexistent.pem'],
        'error: --key /nonexistent.pem: cannot read it (no such file)',
      ],
      [['--config', KONG_YML], 'error: --config needs --consumer <name>'],
      [
        ['--key', join(KEYS, 'web-app.private.pem')],
        'error: give --config and --consumer, or --key <file> and --iss <issuer>',
      ],
      [
        ['--config', KONG_YML, '--consumer', 'partner-globex', '--ttl', 'soon'],
        'error: --ttl: cannot read "soon"',
      ],
      [
        ['--config', KONG_YML, '--consumer', 'partner-globex', '--claim', 'novalue'],
        'error: --claim novalue: use name=value',
      ],
    ])('%j: %s', async (args, message) => {
      const r = await cli(['token', 'mint', ...args], {
        env: { PARTNER_GLOBEX_SECRET: GLOBEX_SECRET },
        ...at,
      })
      expect(r.code).toBe(2)
      expect(r.err.startsWith(message)).toBe(true)
    })

    it('says where a kong.yml is not valid YAML, or has no consumer-jwt', async () => {
      const t = tempDir()
      try {
        const bad = join(t.dir, 'bad.yml')
        writeFileSync(bad, 'services:\n  - name: a\n   routes: [\n')
        const r = await cli(['token', 'mint', '--config', bad, '--consumer', 'x'], at)
        expect(r.code).toBe(2)
        expect(r.err).toMatch(new RegExp(`^error: --config ${bad}:\\d+:\\d+: invalid YAML: .+`))
        const none = join(t.dir, 'none.yml')
        writeFileSync(none, '_format_version: "3.0"\nservices: []\n')
        expect((await cli(['token', 'mint', '--config', none, '--consumer', 'x'], at)).err).toBe(
          `error: --config ${none}: no enabled consumer-jwt plugin in it`,
        )
        const invalid = join(t.dir, 'invalid.yml')
        writeFileSync(
          invalid,
          '_format_version: "3.0"\nplugins:\n  - name: consumer-jwt\n    config: {credentials: [{key: k, consumer: c, algorithms: [HS256], secret: short}]}\n',
        )
        expect((await cli(['token', 'mint', '--config', invalid, '--consumer', 'c'], at)).err).toBe(
          `error: --config ${invalid}: consumer-jwt on global: credentials[0].secret: must be at least 32 bytes (RFC 7518 §3.2)`,
        )
      } finally {
        t.dispose()
      }
    })
  })

  it('without a config: signs with --key and --iss, alg from the key', async () => {
    const r = await cli(
      [
        'token',
        'mint',
        '--key',
        join(KEYS, 'web-app.private.pem'),
        '--iss',
        'https://i',
        '--aud',
        'api',
        '--sub',
        'u',
        '--scope',
        'x',
        'y',
        '--ttl',
        '90s',
        '--claim',
        'tenant=acme',
        '--claim',
        'n=3',
      ],
      at,
    )
    expect(r.code).toBe(0)
    const pub = createPublicKey(readFileSync(join(KEYS, 'web-app.public.pem'), 'utf8'))
    const { payload, protectedHeader } = await jwtVerify(r.out, pub, {
      currentDate: new Date(NOW_MS),
    })
    expect(protectedHeader.alg).toBe('ES256')
    expect(payload).toMatchObject({
      iss: 'https://i',
      aud: 'api',
      sub: 'u',
      scope: 'x y',
      tenant: 'acme',
      n: 3,
    })
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(90)
  })
})
