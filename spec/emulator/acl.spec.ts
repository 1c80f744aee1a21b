import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { BUILTIN_PLUGINS } from '../../emulator/builtin-plugins'
import {
  ConfigError,
  parseDeclarativeConfig,
  type DeclarativeConfig,
} from '../../cli/kong/declarative-config'
import { startEchoUpstream, type EchoUpstream } from '../../emulator/echo-upstream'
import { start, type RunningEmulator } from '../../emulator/emulator'
import { LuaError } from '../../emulator/lua-values'
import { callPdk, type PdkEnvironment } from '../../emulator/pdk'
import { HeaderList, RequestContext } from '../../emulator/request-context'
import { processConfig } from '../../cli/kong/schema'

// Kong 3.9.3's bundled acl plugin, and key-auth's `anonymous`, as the emulator reproduces them
// from kong/plugins/acl/{handler,groups,schema,daos}.lua and kong/plugins/key-auth/handler.lua
// (no recording covers them).

const GOLD_ID = '6f1c2a3b-0000-4000-8000-00000000b001'
const ORDERED_ID = '6f1c2a3b-0000-4000-8000-00000000b002'
const ANON_ID = '6f1c2a3b-0000-4000-8000-00000000b003'

const CONSUMERS = `
consumers:
  - id: ${GOLD_ID}
    username: gold-user
    keyauth_credentials: [{ key: gold-key }]
    acls: [{ group: gold }]
  - username: silver-user
    keyauth_credentials: [{ key: silver-key }]
  - id: ${ORDERED_ID}
    username: ordered-user
    keyauth_credentials: [{ key: ordered-key }]
    acls:
      - { id: ffffffff-0000-4000-8000-000000000001, group: zeta }
      - { id: 00000000-0000-4000-8000-000000000001, group: gold }
  - username: lonely-user
    keyauth_credentials: [{ key: lonely-key }]
  - id: ${ANON_ID}
    username: anonymous-user
    acls: [{ group: guests }]
  - username: groupless-anonymous
acls:
  - { consumer: silver-user, group: silver }
`

describe('emulator: Kong acl — requests through the gateway', () => {
  let echo: EchoUpstream
  let emu: RunningEmulator

  beforeAll(async () => {
    echo = await startEchoUpstream()
    emu = await start({
      pluginDirs: [],
      config: `
_format_version: "3.0"
${CONSUMERS}
services:
  - name: echo
    url: ${echo.url}
    routes:
      - name: allow-gold
        paths: [/gold]
        plugins: [{ name: key-auth }, { name: acl, config: { allow: [gold] } }]
      - name: deny-silver
        paths: [/deny]
        plugins: [{ name: key-auth }, { name: acl, config: { deny: [silver] } }]
      - name: acl-only
        paths: [/acl-only]
        plugins: [{ name: acl, config: { allow: [gold] } }]
      - name: hidden
        paths: [/hidden]
        plugins: [{ name: key-auth }, { name: acl, config: { allow: [gold], hide_groups_header: true } }]
      - name: anonymous
        paths: [/anonymous]
        plugins:
          - { name: key-auth, config: { anonymous: anonymous-user } }
          - { name: acl, config: { allow: [gold, guests] } }
      - name: anonymous-by-id
        paths: [/anonymous-by-id]
        plugins:
          - { name: key-auth, config: { anonymous: ${ANON_ID} } }
          - { name: acl, config: { allow: [guests] } }
      - name: groupless-anonymous
        paths: [/groupless-anonymous]
        plugins:
          - { name: key-auth, config: { anonymous: groupless-anonymous } }
          - { name: acl, config: { allow: [gold] } }
      - name: missing-anonymous
        paths: [/missing-anonymous]
        plugins: [{ name: key-auth, config: { anonymous: nobody } }]
`,
    })
  })

  afterAll(async () => {
    await emu?.stop()
    await echo?.stop()
  })

  const call = (path: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${emu.proxyUrl}${path}`, { headers })
  const upstreamOf = (res: Response): EchoUpstream['received'][number] | undefined =>
    echo.byRequestId(res.headers.get('x-kong-request-id') ?? '')

  /** kong.response.error: Kong's JSON error body with the request id, nothing proxied. */
  async function expectError(res: Response, status: number, message: string): Promise<void> {
    expect(res.status).toBe(status)
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(await res.json()).toEqual({
      message,
      request_id: res.headers.get('x-kong-request-id'),
    })
    expect(res.headers.get('www-authenticate')).toBeNull()
    expect(upstreamOf(res)).toBeUndefined()
  }

  it('lets a consumer in an allowed group through with X-Consumer-Groups', async () => {
    const res = await call('/gold', { apikey: 'gold-key' })
    expect(res.status).toBe(200)
    const seen = upstreamOf(res)?.headers
    expect(seen?.['x-consumer-groups']).toBe('gold')
    expect(seen?.['x-consumer-username']).toBe('gold-user')
    expect(seen?.['x-authenticated-groups']).toBeUndefined()
  })

  it('refuses a consumer outside the allowed groups with 403 "You cannot consume this service"', async () => {
    await expectError(
      await call('/gold', { apikey: 'silver-key' }),
      403,
      'You cannot consume this service',
    )
  })

  it('answers 401 with the default message when no plugin authenticated anyone', async () => {
    await expectError(await call('/acl-only'), 401, 'Unauthorized')
  })

  it('answers 403 for a consumer with a credential but no groups in allow mode', async () => {
    await expectError(
      await call('/gold', { apikey: 'lonely-key' }),
      403,
      'You cannot consume this service',
    )
  })

  it('answers 401 for an anonymous consumer (no credential) without groups in allow mode', async () => {
    await expectError(await call('/groupless-anonymous'), 401, 'Unauthorized')
  })

  it('joins all the consumer groups in the order of their acl ids, not of declaration', async () => {
    const res = await call('/gold', { apikey: 'ordered-key' })
    expect(upstreamOf(res)?.headers['x-consumer-groups']).toBe('gold, zeta')
  })

  describe('deny mode', () => {
    it('refuses a consumer in a denied group', async () => {
      await expectError(
        await call('/deny', { apikey: 'silver-key' }),
        403,
        'You cannot consume this service',
      )
    })

    it('lets a consumer in no denied group through with its groups', async () => {
      const res = await call('/deny', { apikey: 'gold-key' })
      expect(res.status).toBe(200)
      expect(upstreamOf(res)?.headers['x-consumer-groups']).toBe('gold')
    })

    it('lets a consumer without any group through with an empty X-Consumer-Groups that replaces the client one', async () => {
      const res = await call('/deny', { apikey: 'lonely-key', 'X-Consumer-Groups': 'spoofed' })
      expect(res.status).toBe(200)
      expect(upstreamOf(res)?.headers['x-consumer-groups']).toBe('')
    })
  })

  it('sends no groups header with hide_groups_header, and leaves a client-sent one alone', async () => {
    const res = await call('/hidden', { apikey: 'gold-key', 'X-Consumer-Groups': 'admin' })
    expect(res.status).toBe(200)
    expect(upstreamOf(res)?.headers['x-consumer-groups']).toBe('admin')
    const plain = await call('/hidden', { apikey: 'gold-key' })
    expect(upstreamOf(plain)?.headers['x-consumer-groups']).toBeUndefined()
  })

  describe('key-auth anonymous', () => {
    it('authenticates the anonymous consumer (by username) that acl then allows', async () => {
      const res = await call('/anonymous', {
        'X-Credential-Identifier': 'spoofed',
        'X-Consumer-Custom-ID': 'spoofed',
      })
      expect(res.status).toBe(200)
      const seen = upstreamOf(res)?.headers
      expect(seen?.['x-consumer-id']).toBe(ANON_ID)
      expect(seen?.['x-consumer-username']).toBe('anonymous-user')
      expect(seen?.['x-consumer-custom-id']).toBeUndefined()
      expect(seen?.['x-anonymous-consumer']).toBe('true')
      expect(seen?.['x-credential-identifier']).toBeUndefined()
      expect(seen?.['x-consumer-groups']).toBe('guests')
    })

    it('falls back to the anonymous consumer (by id) after a wrong key too', async () => {
      const res = await call('/anonymous-by-id', { apikey: 'no-such-key' })
      expect(res.status).toBe(200)
      expect(upstreamOf(res)?.headers['x-consumer-username']).toBe('anonymous-user')
    })

    it('authenticates a valid key as usual, clearing X-Anonymous-Consumer', async () => {
      const res = await call('/anonymous', { apikey: 'gold-key', 'X-Anonymous-Consumer': 'true' })
      expect(res.status).toBe(200)
      const seen = upstreamOf(res)?.headers
      expect(seen?.['x-consumer-username']).toBe('gold-user')
      expect(seen?.['x-anonymous-consumer']).toBeUndefined()
      expect(seen?.['x-credential-identifier']).toMatch(/^[0-9a-f-]{36}$/)
    })

    it('answers Kong 500 when the anonymous consumer does not exist', async () => {
      const res = await call('/missing-anonymous')
      expect(res.status).toBe(500)
      expect(((await res.json()) as { message: string }).message).toBe(
        'An unexpected error occurred',
      )
    })
  })

  it('refuses a config with both allow and deny on POST /config and keeps serving the old one', async () => {
    const bad = `
_format_version: "3.0"
services:
  - name: echo
    url: ${echo.url}
    routes: [{ name: r, paths: [/r], plugins: [{ name: acl, config: { allow: [a], deny: [b] } }] }]
`
    const res = await fetch(`${emu.adminUrl}/config`, { method: 'POST', body: bad })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { message: string }).message).toMatch(
      /exactly one of these fields must be non-empty: 'config.allow', 'config.deny'/,
    )
    expect((await call('/gold', { apikey: 'gold-key' })).status).toBe(200)
  })
})

describe('emulator: Kong acl — groups a plugin server publishes (kong.ctx.shared / ngx.ctx)', () => {
  const acl = BUILTIN_PLUGINS.find((p) => p.name === 'acl')
  const keyAuth = BUILTIN_PLUGINS.find((p) => p.name === 'key-auth')
  const config = parseDeclarativeConfig(`_format_version: "3.0"\n${CONSUMERS}`)
  const env: PdkEnvironment = { config, nodeId: 'node', log: () => undefined, kongVersion: '3.9.3' }
  const aclConf = (c: Record<string, unknown>): Record<string, unknown> =>
    processConfig(acl?.fields ?? [], c)

  const newCtx = (headers: Array<[string, string]> = []): RequestContext => {
    const ctx = new RequestContext(
      'rid',
      Date.now(),
      'GET',
      '/',
      undefined,
      1.1,
      new HeaderList(headers),
      Buffer.alloc(0),
      '127.0.0.1',
      5555,
      8000,
      'http',
      'h',
    )
    ctx.phase = 'access'
    return ctx
  }
  /** What a plugin server's kong.ctx.shared.set reaches (the same PDK call the RPC makes). */
  const publish = (ctx: RequestContext, groups: unknown): void => {
    callPdk(ctx, 'kong.ctx.shared.set', ['authenticated_groups', groups], env)
  }
  const runAcl = async (ctx: RequestContext, conf: Record<string, unknown>): Promise<void> => {
    await acl?.handlers.access?.(ctx, aclConf(conf), config)
  }
  const consumer = (username: string): Record<string, unknown> => {
    const c = config.consumers.find((x) => x.username === username)
    expect(c).toBeDefined()
    return { ...c }
  }

  it('decides on kong.ctx.shared.authenticated_groups when there is no consumer, with X-Authenticated-Groups', async () => {
    const ctx = newCtx()
    publish(ctx, ['orders:read', 'gold'])
    await runAcl(ctx, { allow: ['gold'] })
    expect(ctx.exit).toBeUndefined()
    expect(ctx.headers.get('x-authenticated-groups')).toBe('orders:read, gold')
    expect(ctx.headers.get('x-consumer-groups')).toBeUndefined()
  })

  it('refuses authenticated groups without an allowed one with 403', async () => {
    const ctx = newCtx()
    publish(ctx, ['orders:read'])
    await runAcl(ctx, { allow: ['gold'] })
    expect(ctx.exit?.status).toBe(403)
    expect(JSON.parse(ctx.exit?.body?.toString() ?? '{}')).toMatchObject({
      message: 'You cannot consume this service',
    })
  })

  it('counts an empty group list as present: 403, not 401', async () => {
    const ctx = newCtx()
    publish(ctx, [])
    await runAcl(ctx, { allow: ['gold'] })
    expect(ctx.exit?.status).toBe(403)
  })

  it('reads ngx.ctx.authenticated_groups (kong.nginx.set_ctx) when kong.ctx.shared has none', async () => {
    const ctx = newCtx()
    callPdk(ctx, 'kong.nginx.set_ctx', ['authenticated_groups', ['gold']], env)
    await runAcl(ctx, { allow: ['gold'] })
    expect(ctx.headers.get('x-authenticated-groups')).toBe('gold')
  })

  it('in deny mode passes authenticated groups that match nothing WITHOUT a groups header (Lua nil)', async () => {
    const ctx = newCtx([['X-Authenticated-Groups', 'from-client']])
    publish(ctx, ['gold'])
    await runAcl(ctx, { deny: ['silver'] })
    expect(ctx.exit).toBeUndefined()
    expect(ctx.headers.get('x-authenticated-groups')).toBe('from-client')
  })

  it('answers 403 without groups when a plugin set a credential but no consumer', async () => {
    const ctx = newCtx()
    ctx.credential = { id: 'cred' } // kong.client.authenticate(nil, credential) on the Lua side
    await runAcl(ctx, { allow: ['gold'] })
    expect(ctx.exit?.status).toBe(403)
  })

  it('uses the authenticated groups for an anonymous consumer (no credential) instead of its own', async () => {
    const ctx = newCtx()
    await keyAuth?.handlers.access?.(
      ctx,
      processConfig(keyAuth.fields, { anonymous: 'anonymous-user' }),
      config,
    )
    expect(callPdk(ctx, 'kong.client.get_credential', [], env)).toEqual({
      kind: 'value',
      value: undefined,
    })
    publish(ctx, ['gold'])
    await runAcl(ctx, { allow: ['gold'] })
    expect(ctx.exit).toBeUndefined()
    expect(ctx.headers.get('x-authenticated-groups')).toBe('gold')
    expect(ctx.headers.get('x-consumer-groups')).toBeUndefined()
  })

  it('ignores authenticated groups for a consumer with a credential unless always_use_authenticated_groups', async () => {
    const withCredential = (): RequestContext => {
      const ctx = newCtx()
      callPdk(ctx, 'kong.client.authenticate', [consumer('silver-user'), { id: 'c1' }], env)
      publish(ctx, ['gold'])
      return ctx
    }
    const own = withCredential()
    await runAcl(own, { allow: ['gold'] })
    expect(own.exit?.status).toBe(403)
    const always = withCredential()
    await runAcl(always, { allow: ['gold'], always_use_authenticated_groups: true })
    expect(always.exit).toBeUndefined()
    expect(always.headers.get('x-authenticated-groups')).toBe('gold')
  })

  it('falls back to the consumer groups under always_use_authenticated_groups when none are published', async () => {
    const ctx = newCtx()
    callPdk(ctx, 'kong.client.authenticate', [consumer('silver-user'), { id: 'c1' }], env)
    await runAcl(ctx, { allow: ['silver'], always_use_authenticated_groups: true })
    expect(ctx.headers.get('x-consumer-groups')).toBe('silver')
  })

  it('takes the consumer from credential.consumer_id when no consumer is set', async () => {
    const ctx = newCtx()
    ctx.credential = { consumer_id: GOLD_ID } // kong.client.authenticate(nil, credential)
    await runAcl(ctx, { allow: ['gold'] })
    expect(ctx.headers.get('x-consumer-groups')).toBe('gold')
  })

  it('raises (Kong 500) for a consumer id that is not a UUID, as the acls DAO does', async () => {
    const ctx = newCtx()
    callPdk(ctx, 'kong.client.authenticate', [{ id: 'not-a-uuid' }, { id: 'c' }], env)
    await expect(runAcl(ctx, { allow: ['gold'] })).rejects.toThrow(LuaError)
  })

  it('leaves the request alone in key-auth anonymous mode when another plugin set a credential', async () => {
    const ctx = newCtx()
    callPdk(ctx, 'kong.client.authenticate', [consumer('gold-user'), { id: 'other' }], env)
    await keyAuth?.handlers.access?.(
      ctx,
      processConfig(keyAuth.fields, { anonymous: 'anonymous-user' }),
      config,
    )
    expect(ctx.exit).toBeUndefined()
    expect(ctx.headers.get('x-anonymous-consumer')).toBeUndefined()
    expect(callPdk(ctx, 'kong.client.get_consumer', [], env)).toMatchObject({
      value: { username: 'gold-user' },
    })
  })
})

describe('emulator: acl in kong.yml (kong/plugins/acl/schema.lua and daos.lua)', () => {
  const load = (body: string): DeclarativeConfig =>
    parseDeclarativeConfig(`_format_version: "3.0"\n${body}`)
  const withAcl = (config: string): string => `
services:
  - name: s
    url: http://127.0.0.1:1
    routes: [{ name: r, paths: [/r], plugins: [{ name: acl, config: ${config} }] }]
`

  it('loads acls declared nested and top-level (by username and by id) as rows of that consumer', () => {
    const c = load(`
consumers:
  - { id: ${GOLD_ID}, username: app, acls: [{ group: nested }] }
acls:
  - { consumer: app, group: by-username }
  - { consumer: { id: ${GOLD_ID} }, group: by-id, tags: [t] }
`)
    expect(c.acls.map((a) => [a.consumer.id, a.group])).toEqual([
      [GOLD_ID, 'nested'],
      [GOLD_ID, 'by-username'],
      [GOLD_ID, 'by-id'],
    ])
    expect(c.acls[2]?.tags).toEqual(['t'])
  })

  it('keeps a group declared nested and again top-level by username as two rows (ids differ, as in Kong)', () => {
    const c = load(
      'consumers: [{ username: app, acls: [{ group: g }] }]\nacls: [{ consumer: app, group: g }]',
    )
    expect(c.acls.map((a) => a.group)).toEqual(['g', 'g'])
    expect(new Set(c.acls.map((a) => a.id)).size).toBe(2)
  })

  it('gives rows without an id the same UUID on every load', () => {
    const body = 'consumers: [{ username: app, acls: [{ group: g }] }]'
    const id = load(body).acls[0]?.id
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(load(body).acls[0]?.id).toBe(id)
  })

  it.each([
    ['both allow and deny', '{ allow: [a], deny: [b] }', /exactly one of these fields/],
    ['neither allow nor deny', '{ hide_groups_header: true }', /at least one of these fields/],
    ['only empty lists', '{ allow: [], deny: [] }', /at least one of these fields/],
  ])('refuses an acl config with %s', (_what, config, message) => {
    expect(() => load(withAcl(config))).toThrow(ConfigError)
    expect(() => load(withAcl(config))).toThrow(message)
  })

  it('accepts an empty list beside a non-empty one (an empty list counts as unset)', () => {
    expect(load(withAcl('{ allow: [], deny: [b] }')).plugins[0]?.config).toEqual({
      allow: [],
      deny: ['b'],
    })
  })

  it.each([
    [
      'an acl plugin scoped to a consumer',
      'consumers: [{ username: app, plugins: [{ name: acl, config: { allow: [a] } }] }]',
      /consumer: value must be null/,
    ],
    [
      'an acl row of an unknown consumer',
      'consumers: [{ username: app }]\nacls: [{ consumer: nobody, group: g }]',
      /consumer 'nobody' not found/,
    ],
    ['an acl row without a group', 'consumers: [{ username: app, acls: [{}] }]', /group/],
    [
      'an acl row with an unknown field',
      'consumers: [{ username: app, acls: [{ group: g, name: x }] }]',
      /unknown field 'name'/,
    ],
    [
      'the same group declared twice under one consumer',
      'consumers: [{ username: app, acls: [{ group: g }, { group: g }] }]',
      /uniqueness violation: 'acls' entity with primary key/,
    ],
  ])('refuses %s', (_what, body, message) => {
    expect(() => load(body)).toThrow(ConfigError)
    expect(() => load(body)).toThrow(message)
  })
})
