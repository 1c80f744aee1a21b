import { Decoder, Encoder } from '@msgpack/msgpack'
import { describe, expect, it } from '@jest/globals'
import {
  parseDeclarativeConfig,
  resolveVaultReference,
  ConfigError,
} from '../../cli/kong/declarative-config'
import { lookupConfig } from '../../cli/kong/plugins-iterator'
import { LuaError, unpackArgs, viaLua } from '../../emulator/lua-values'
import { callPdk, encodeQuery, stepMethodFor, type PdkEnvironment } from '../../emulator/pdk'
import type { PluginConfigInstance } from '../../emulator/plugin-runtime'
import { HeaderList, RequestContext, type Phase } from '../../emulator/request-context'
import { buildRouter, upstreamPath } from '../../cli/kong/router'
import { processConfig, SchemaError, type SchemaField } from '../../cli/kong/schema'

const PROBE_SCHEMA: SchemaField[] = [
  { message: { type: 'string', default: 'default-message' } },
  { mode: { type: 'string', default: 'quiet' } },
  { delay_ms: { type: 'number', default: 2000 } },
  { count: { type: 'integer', default: 3 } },
  { verbose: { type: 'boolean', default: false } },
  { tags: { type: 'array', elements: { type: 'string' }, default: ['t1', 't2'] } },
  { labels: { type: 'map', keys: { type: 'string' }, values: { type: 'string' } } },
  {
    nested: {
      type: 'record',
      fields: [
        { inner: { type: 'string', default: 'inner-default' } },
        { level: { type: 'number' } },
      ],
    },
  },
  { optional_str: { type: 'string' } },
]

describe('emulator: schema defaults and validation (F7)', () => {
  it('fills defaults, fills records and leaves fields without default absent', () => {
    expect(processConfig(PROBE_SCHEMA, { message: 'global', mode: 'quiet' })).toEqual({
      message: 'global',
      mode: 'quiet',
      delay_ms: 2000,
      count: 3,
      verbose: false,
      tags: ['t1', 't2'],
      nested: { inner: 'inner-default' },
    })
  })

  it('rejects unknown fields, wrong types, missing required fields, one_of and between violations', () => {
    const schema: SchemaField[] = [
      { a: { type: 'integer', between: [1, 5] } },
      { b: { type: 'string', one_of: ['x', 'y'] } },
      { c: { type: 'string', required: true } },
      { d: { type: 'array', elements: { type: 'string' }, len_min: 1 } },
    ]
    try {
      processConfig(schema, { a: 9, b: 'z', d: [1], extra: true })
      throw new Error('unreachable')
    } catch (e) {
      expect(e).toBeInstanceOf(SchemaError)
      expect((e as SchemaError).errors).toEqual({
        extra: 'unknown field',
        a: 'value should be between 1 and 5',
        b: 'expected one of: x, y',
        c: 'required field missing',
        'd.1': 'expected a string',
      })
    }
  })

  it('keeps integral numbers integral and rejects a float for an integer field', () => {
    expect(processConfig(PROBE_SCHEMA, { delay_ms: 1.5, count: 7 })['delay_ms']).toBe(1.5)
    expect(() => processConfig(PROBE_SCHEMA, { count: 1.5 })).toThrow(/count: expected an integer/)
  })

  it('resolves {vault://env/NAME} only in referenceable fields', () => {
    const schema: SchemaField[] = [
      { secret: { type: 'string', referenceable: true } },
      { plain: { type: 'string' } },
    ]
    const out = processConfig(
      schema,
      { secret: '{vault://env/my-secret}', plain: '{vault://env/my-secret}' },
      (ref) => resolveVaultReference(ref, { MY_SECRET: 's3cr3t' }),
    )
    expect(out).toEqual({ secret: 's3cr3t', plain: '{vault://env/my-secret}' })
  })

  it('fails loudly when a vault reference names an unset variable', () => {
    expect(() => resolveVaultReference('{vault://env/nope-x}', {})).toThrow(/NOPE_X is not set/)
  })
})

describe('emulator: declarative config loader', () => {
  const YML = `
_format_version: "3.0"
upstreams:
  - name: up
    targets: [{ target: "10.0.0.1:8080" }, { target: "10.0.0.2:8080", weight: 50 }]
services:
  - name: a
    url: http://example.test:9000/base
    routes:
      - name: r1
        paths: [/a]
  - name: b
    host: up
    port: 8080
consumers:
  - username: alice
    custom_id: alice-custom
    tags: [x]
plugins:
  - name: p
    route: r1
    consumer: alice
    config: { k: 1 }
  - name: p
    enabled: false
`

  it('normalises services, routes, upstreams, consumers and scoped plugins with Kong defaults', () => {
    const c = parseDeclarativeConfig(YML, 1000)
    expect(c.services[0]).toMatchObject({
      name: 'a',
      protocol: 'http',
      host: 'example.test',
      port: 9000,
      path: '/base',
      retries: 5,
    })
    expect(c.services[1]).toMatchObject({ host: 'up', port: 8080 })
    expect(c.services[1]).not.toHaveProperty('path')
    expect(c.routes[0]).toMatchObject({
      strip_path: true,
      preserve_host: false,
      path_handling: 'v0',
      protocols: ['http', 'https'],
      service: { id: c.services[0]?.id },
    })
    expect(c.upstreams[0]?.targets).toEqual([
      { host: '10.0.0.1', port: 8080, weight: 100 },
      { host: '10.0.0.2', port: 8080, weight: 50 },
    ])
    expect(c.plugins[0]).toMatchObject({
      name: 'p',
      enabled: true,
      route: { id: c.routes[0]?.id },
      consumer: { id: c.consumers[0]?.id },
    })
    expect(c.plugins[1]).toMatchObject({ enabled: false })
  })

  it('gives entities without id the same id on every load (instances keyed by plugin id)', () => {
    expect(parseDeclarativeConfig(YML).plugins.map((p) => p.id)).toEqual(
      parseDeclarativeConfig(YML).plugins.map((p) => p.id),
    )
  })

  it('rejects unknown entity fields and dangling references', () => {
    expect(() =>
      parseDeclarativeConfig(
        '_format_version: "3.0"\nservices: [{ name: a, url: "http://x", colour: red }]',
      ),
    ).toThrow(ConfigError)
    expect(() =>
      parseDeclarativeConfig('_format_version: "3.0"\nplugins: [{ name: p, route: missing }]'),
    ).toThrow(/route 'missing' not found/)
  })
})

describe('emulator: router (traditional_compatible priorities)', () => {
  const cfg = parseDeclarativeConfig(`
_format_version: "3.0"
services:
  - name: s
    url: http://u.test
    routes:
      - { name: short, paths: [/api] }
      - { name: long, paths: [/api/v1] }
      - { name: regex, paths: ["~/api/v1/items/(?<id>\\\\d+)$"] }
      - { name: hosted, hosts: [api.example.com], paths: [/api] }
      - { name: wild, hosts: ["*.wild.test"] }
      - { name: posts, methods: [POST], paths: [/api] }
      - { name: nostrip, paths: [/keep], strip_path: false }
`)
  const router = buildRouter(cfg.routes)
  const m = (path: string, host = 'localhost', method = 'GET'): string | undefined =>
    router.match({ method, host, path, headers: {}, protocol: 'http' })?.route.name

  it('picks the longest matching prefix', () => {
    expect(m('/api/v1/x')).toBe('long')
    expect(m('/api/v2')).toBe('short')
  })

  it('prefers a route with more match fields (host, method) over a longer path', () => {
    expect(m('/api/v1/x', 'api.example.com')).toBe('hosted')
    expect(m('/api/x', 'localhost', 'POST')).toBe('posts')
  })

  it('prefers regex paths over prefixes and exposes named captures', () => {
    expect(m('/api/v1/items/42')).toBe('regex')
    const match = router.match({
      method: 'GET',
      host: 'h',
      path: '/api/v1/items/42',
      headers: {},
      protocol: 'http',
    })
    expect(match?.captures.named).toEqual({ id: '42' })
  })

  it('matches wildcard hosts and returns undefined when nothing matches', () => {
    expect(m('/anything', 'a.wild.test')).toBe('wild')
    expect(m('/nothing')).toBeUndefined()
  })

  it('computes the upstream path like path_handling v0', () => {
    const short = cfg.routes.find((r) => r.name === 'short')
    const nostrip = cfg.routes.find((r) => r.name === 'nostrip')
    if (!short || !nostrip) throw new Error('routes')
    expect(upstreamPath(short, '/sub/path', '/api/sub/path', undefined)).toBe('/sub/path')
    expect(upstreamPath(short, '', '/api', undefined)).toBe('/')
    expect(upstreamPath(short, '/x', '/api/x', '/base')).toBe('/base/x')
    expect(upstreamPath(short, '/x', '/api/x', '/base/')).toBe('/base/x')
    expect(upstreamPath(nostrip, '/x', '/keep/x', '/')).toBe('/keep/x')
  })
})

describe('emulator: plugin precedence (plugins_iterator lookup_cfg)', () => {
  const cfg = (k: string): PluginConfigInstance => ({ pluginId: k, name: 'p', seq: 1, conf: {} })
  const combos = new Map<string, PluginConfigInstance>([
    ['::', cfg('global')],
    [':s:', cfg('service')],
    ['r::', cfg('route')],
    ['::c', cfg('consumer')],
    [':s:c', cfg('service+consumer')],
  ])

  it('takes the most specific configuration: consumer+service > consumer > route > service > global', () => {
    expect(lookupConfig(combos, 'r', 's', 'c')?.pluginId).toBe('service+consumer')
    expect(lookupConfig(combos, 'r', 'x', 'c')?.pluginId).toBe('consumer')
    expect(lookupConfig(combos, 'r', 's', undefined)?.pluginId).toBe('route')
    expect(lookupConfig(combos, 'q', 's', undefined)?.pluginId).toBe('service')
    expect(lookupConfig(combos, 'q', 'x', undefined)?.pluginId).toBe('global')
  })
})

function ctxFor(
  phase: Phase,
  headers: Array<[string, string]> = [],
  query?: string,
): RequestContext {
  const ctx = new RequestContext(
    'rid',
    1000,
    'GET',
    '/p',
    query,
    1.1,
    new HeaderList(headers),
    Buffer.alloc(0),
    '127.0.0.1',
    5555,
    8000,
    'http',
    'h:8000',
  )
  ctx.phase = phase
  return ctx
}

const ENV: PdkEnvironment = {
  config: parseDeclarativeConfig(
    '_format_version: "3.0"\nconsumers: [{ id: a11ce000-0000-4000-8000-000000000001, username: alice }]',
  ),
  nodeId: 'node',
  log: () => undefined,
  kongVersion: '3.9.3',
}

describe('emulator: PDK answers and their encoding', () => {
  it('answers kong.request.get_headers with a multimap of string arrays', () => {
    const r = callPdk(
      ctxFor('access', [
        ['X-Multi', 'one'],
        ['x-multi', 'two'],
        ['Host', 'h'],
      ]),
      'kong.request.get_headers',
      [],
      ENV,
    )
    expect(r).toEqual({ kind: 'value', value: { 'x-multi': ['one', 'two'], host: ['h'] } })
    expect(stepMethodFor('kong.request.get_headers', {})).toBe('plugin.StepMultiMap')
  })

  it('answers kong.request.get_query with [] for a flag, [""] for an empty value, {} when empty', () => {
    expect(
      callPdk(
        ctxFor('access', [], 'a=1&a=2&flag&empty=&sp=a%20b'),
        'kong.request.get_query',
        [],
        ENV,
      ),
    ).toEqual({
      kind: 'value',
      value: { a: ['1', '2'], flag: [], empty: [''], sp: ['a b'] },
    })
    const empty = callPdk(ctxFor('access'), 'kong.request.get_query', [], ENV)
    expect(new Encoder().encode(empty.kind === 'value' ? empty.value : null)).toEqual(
      new Uint8Array([0x80]),
    )
  })

  it("answers kong.nginx.get_var('request') with the raw request line, as nginx's $request", () => {
    expect(
      callPdk(ctxFor('access', [], 'x=%2F&y'), 'kong.nginx.get_var', ['request'], ENV),
    ).toEqual({ kind: 'value', value: 'GET /p?x=%2F&y HTTP/1.1' })
    expect(callPdk(ctxFor('access'), 'kong.nginx.get_var', ['request'], ENV)).toEqual({
      kind: 'value',
      value: 'GET /p HTTP/1.1',
    })
  })

  it('leaves the Data key out for a nil result (the plugin sees undefined)', () => {
    const r = callPdk(ctxFor('access'), 'kong.request.get_header', ['x-missing'], ENV)
    const bytes = new Encoder({ ignoreUndefined: true }).encode({
      EventId: 3,
      Data: r.kind === 'value' ? r.value : 'x',
    })
    expect(new Decoder().decode(bytes)).toEqual({ EventId: 3 })
  })

  it('clears a header with kong.service.request.set_headers({name: []}) in one call', () => {
    const ctx = ctxFor('access', [
      ['Authorization', 'Bearer x'],
      ['X-Keep', 'k'],
    ])
    callPdk(ctx, 'kong.service.request.set_headers', [{ authorization: [], 'x-new': 'v' }], ENV)
    expect(ctx.headers.lines()).toEqual([
      ['X-Keep', 'k'],
      ['x-new', 'v'],
    ])
  })

  it('raises a Lua error for kong.client.authenticate outside access and for a wrong-phase getter', () => {
    expect(() =>
      callPdk(ctxFor('rewrite'), 'kong.client.authenticate', [{ id: 'x' }], ENV),
    ).toThrow(LuaError)
    expect(() => callPdk(ctxFor('access'), 'kong.response.get_status', [], ENV)).toThrow(
      /cannot be called in access phase/,
    )
    expect(() => callPdk(ctxFor('access'), 'kong.request.get_header', [123], ENV)).toThrow(
      /header name must be a string/,
    )
    expect(() => callPdk(ctxFor('access'), 'kong.version', [], ENV)).toThrow(/attempt to call/)
  })

  it('loads consumers by id, or by username only when asked, and remembers the authenticated one', () => {
    const ctx = ctxFor('access')
    expect(callPdk(ctx, 'kong.client.load_consumer', ['alice'], ENV)).toEqual({
      kind: 'value',
      value: undefined,
    })
    const byName = callPdk(ctx, 'kong.client.load_consumer', ['alice', true], ENV)
    expect(byName).toMatchObject({
      value: { id: 'a11ce000-0000-4000-8000-000000000001', username: 'alice' },
    })
    callPdk(
      ctx,
      'kong.client.authenticate',
      [byName.kind === 'value' ? byName.value : null, null],
      ENV,
    )
    expect(callPdk(ctx, 'kong.client.get_consumer', [], ENV)).toMatchObject({
      value: { username: 'alice' },
    })
    expect(callPdk(ctx, 'kong.client.get_credential', [], ENV)).toEqual({
      kind: 'value',
      value: undefined,
    })
    expect(stepMethodFor('kong.client.authenticate', undefined)).toBe('plugin.StepCredential')
  })

  it('answers an unknown method with an empty Step and logs "could not find pdk method"', () => {
    const logged: string[] = []
    const r = callPdk(ctxFor('access'), 'kong.nonexistent_ns.method', ['x'], {
      ...ENV,
      log: (e) => logged.push(e.message),
    })
    expect(r).toEqual({ kind: 'value', value: undefined })
    expect(logged).toEqual(['could not find pdk method: kong.nonexistent_ns.method'])
  })

  it('builds the exit response: JSON table body with charset, string body without Content-Type', () => {
    const ctx = ctxFor('access')
    expect(
      callPdk(
        ctx,
        'kong.response.exit',
        [401, { message: 'nope' }, { 'WWW-Authenticate': 'Bearer' }],
        ENV,
      ),
    ).toEqual({ kind: 'exit' })
    expect(ctx.exit?.headers.get('content-type')).toBe('application/json; charset=utf-8')
    expect(ctx.exit?.body?.toString()).toBe('{"message":"nope"}')
    const ctx2 = ctxFor('access')
    callPdk(ctx2, 'kong.response.exit', [401, 'plain'], ENV)
    expect(ctx2.exit?.headers.get('content-type')).toBeUndefined()
  })

  it('escapes / in a JSON exit body as lua-cjson does', () => {
    const ctx = ctxFor('access')
    callPdk(ctx, 'kong.response.exit', [403, { message: 'a/b' }], ENV)
    expect(ctx.exit?.body?.toString()).toBe('{"message":"a\\/b"}')
  })

  it('drops arguments after a nil (unpack truncates at the first hole) and nil map values via Lua', () => {
    expect(unpackArgs([403, null, { a: 1 }])).toEqual([403])
    expect(viaLua({ a: null, b: {} })).toEqual({ b: [] })
  })

  it('encodes set_query like ngx.encode_args (sorted keys, repeated arrays)', () => {
    expect(encodeQuery({ q: 'new', multi: ['m1', 'm2'] })).toBe('multi=m1&multi=m2&q=new')
  })
})
