import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { stringify } from 'yaml'
import { parseKongYaml } from '../../cli/kong/declarative-config'
import {
  demoToken,
  globexSecret,
  KONG_YML,
  localizeKongYml,
  pluginsOf,
  startDemoIdp,
  type DemoIdp,
} from '../../emulator/demo-kit'
import { startKongTarget, type KongTarget } from './helpers/kong-target'

// consumer-jwt beyond the happy path of kong.yml: an anonymous consumer (logical OR), a JWKS
// endpoint that dies after its keys were fetched, one that was never reachable, and nbf.
interface Doc {
  consumers: Record<string, unknown>[]
  services: { name: string; routes: { name: string; plugins?: PluginDecl[] }[] }[]
}
interface PluginDecl {
  name: string
  config: Record<string, unknown>
}

let kong: KongTarget
let idp: DemoIdp

function config(edit: (doc: Doc) => void): string {
  const doc = parseKongYaml(
    localizeKongYml(readFileSync(KONG_YML, 'utf8'), { jwksUrl: idp.jwksUrl, redisUrl: undefined }),
  ) as Doc
  edit(doc)
  return stringify(doc)
}

/** Every consumer-jwt of kong.yml (one per API route). */
const jwtPlugins = (doc: Doc): Record<string, unknown>[] => {
  const found = pluginsOf(doc).filter((p) => p.name === 'consumer-jwt')
  if (found.length === 0) throw new Error('kong.yml has no consumer-jwt')
  return found.map((p) => p.config ?? {})
}

/** An anonymous consumer, in the acl guard's group like every other consumer. */
const withAnonymous = (doc: Doc): void => {
  doc.consumers.push({
    username: 'anonymous',
    custom_id: 'guest',
    acls: [{ group: 'authenticated' }],
  })
  for (const c of jwtPlugins(doc)) c.anonymous = 'anonymous'
}

beforeAll(async () => {
  idp = await startDemoIdp()
  kong = await startKongTarget({
    config: config(withAnonymous),
    env: { ...process.env, PARTNER_GLOBEX_SECRET: globexSecret() },
  })
})

afterAll(async () => {
  await kong?.stop()
  await idp?.stop()
})

const get = async (path: string, token?: string) =>
  kong.proxy(path, token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } })

describe('consumer-jwt: (e2e: fallbacks and key-source failures)', () => {
  it('authenticates the anonymous consumer when no token is sent, and says so upstream', async () => {
    const res = await get('/catalog/items')
    // the route's scope rule then refuses: an anonymous caller holds no scope, and that is a
    // 401, not a 403.
    expect(res.status).toBe(401)
    expect(((await res.json()) as { code: string }).code).toBe('ERR_SCOPE_CONTEXT_MISSING')
  })

  it('lets the anonymous consumer through where no scope rule applies, with X-Anonymous-Consumer: true', async () => {
    await kong.reload(
      config((doc) => {
        withAnonymous(doc)
        // catalog-read without its scope rule: any authenticated caller may read
        const read = doc.services
          .find((s) => s.name === 'catalog')
          ?.routes.find((r) => r.name === 'catalog-read')
        const jwt = read?.plugins?.find((p) => p.name === 'consumer-jwt')
        if (jwt === undefined) throw new Error('kong.yml has no consumer-jwt on catalog-read')
        jwt.config.scopes = { allow_unlisted_methods: true }
      }),
    )
    const res = await get('/catalog/items', 'not.a.jwt')
    expect(res.status).toBe(200)
    const seen = kong.upstreamRequestFor(res)
    expect(seen?.headers['x-anonymous-consumer']).toBe('true')
    expect(seen?.headers['x-consumer-username']).toBe('anonymous')
    expect(seen?.headers['x-credential-identifier']).toBeUndefined()

    const real = await get(
      '/catalog/items',
      await demoToken('partner-acme', { scope: 'catalog:read' }),
    )
    expect(kong.upstreamRequestFor(real)?.headers['x-consumer-username']).toBe('partner-acme')
    expect(kong.upstreamRequestFor(real)?.headers['x-anonymous-consumer']).toBeUndefined()
  })

  it('refuses a token used before its nbf with 401 ERR_TOKEN_NOT_YET_VALID', async () => {
    await kong.reload(config(() => undefined))
    const res = await get(
      '/catalog/items',
      await demoToken('web-app', { nbf: Math.floor(Date.now() / 1000) + 600 }),
    )
    expect(res.status).toBe(401)
    expect(((await res.json()) as { code: string }).code).toBe('ERR_TOKEN_NOT_YET_VALID')
  })

  it('keeps partner-acme working from cached keys after its JWKS endpoint dies', async () => {
    await kong.reload(config(() => undefined))
    const token = () => demoToken('partner-acme', { scope: 'catalog:read' })
    expect((await get('/catalog/items', await token())).status).toBe(200)
    await idp.stop()
    expect((await get('/catalog/items', await token())).status).toBe(200)
  })

  it('answers 503 ERR_KEY_SOURCE_UNAVAILABLE, without a challenge, when the JWKS endpoint was never reachable', async () => {
    await kong.reload(
      config((doc) => {
        for (const plugin of jwtPlugins(doc))
          for (const c of plugin.credentials as Record<string, unknown>[]) {
            if (typeof c.jwks_uri === 'string') c.jwks_uri = 'http://127.0.0.1:9/never/jwks.json'
          }
      }),
    )
    const started = Date.now()
    const res = await get(
      '/catalog/items',
      await demoToken('partner-acme', { scope: 'catalog:read' }),
    )
    expect(res.status).toBe(503)
    expect(await res.json()).toEqual({
      message: 'Key source unavailable',
      code: 'ERR_KEY_SOURCE_UNAVAILABLE',
    })
    expect(res.headers.get('www-authenticate')).toBeNull()
    expect(Date.now() - started).toBeLessThan(5000) // jwks_timeout_ms (2 s) bounds it, not Kong's 60 s
    // The other consumers are not affected.
    expect(
      (await get('/catalog/items', await demoToken('web-app', { scope: 'catalog:read' }))).status,
    ).toBe(200)
  })
})
