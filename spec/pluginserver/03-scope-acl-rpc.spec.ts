import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import {
  expectConfigRefusal,
  startPluginServer,
  type Reply,
  type RunningPluginServer,
} from './helpers/plugin-server'

let ps: RunningPluginServer
let rpc: RunningPluginServer['rpc']

beforeAll(async () => {
  ps = await startPluginServer('scope-acl')
  rpc = ps.rpc
})

afterAll(() => ps.stop())

function jwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${part({ alg: 'HS256' })}.${part({ exp: 4_000_000_000, ...claims })}.c2ln`
}

/** The config as Kong 3.9 sends it: defaults filled, the unset record as null, Kong's keys. */
async function startInstance(overrides: Record<string, unknown> = {}): Promise<number> {
  const config = {
    __plugin_id: '93000000-0000-4000-8000-000000000001',
    __key__: 'plugins:scope-acl:::::0dc6f45b-8f8d-40d2-a504-473544ee190b',
    __seq__: 1,
    __ws_id: '0dc6f45b-8f8d-40d2-a504-473544ee190b',
    rules: [
      { methods: ['GET', 'HEAD'], scopes: ['orders:read'], match: 'all', log_only: false },
      { methods: ['POST'], scopes: ['orders:write'], match: 'all', log_only: false },
    ],
    default_rule: null,
    allow_unlisted_methods: false,
    routes: [],
    scope_claims: ['scope', 'scp'],
    wildcard_suffix: false,
    publish_groups: false,
    realm: 'kong',
    ...overrides,
  }
  const started = (await rpc.call('plugin.StartInstance', {
    Name: 'scope-acl',
    Config: JSON.stringify(config),
  })) as { Id: number }
  return started.Id
}

const step = (eventId: number, data: unknown) =>
  rpc.call(
    'plugin.Step',
    data === undefined ? { EventId: eventId } : { EventId: eventId, Data: data },
  ) as Promise<Reply>

describe('scope-acl: (pluginserver: the real kong-js-pluginserver driven over its socket as Kong 3.9 does)', () => {
  it('allows a GET in 3 round trips: HandleEvent, kong.request.get_method, kong.ctx.shared.get', async () => {
    const id = await startInstance({ publish_groups: true })
    const first = (await rpc.call('plugin.HandleEvent', {
      InstanceId: id,
      EventName: 'access',
    })) as Reply
    expect(first.Data).toEqual({ Method: 'kong.request.get_method', Args: [] })
    const second = await step(first.EventId, 'GET')
    expect(second.Data).toEqual({
      Method: 'kong.ctx.shared.get',
      Args: ['authenticated_jwt_token'],
    })
    const third = await step(second.EventId, jwt({ scope: 'orders:read profile' }))
    // publish_groups: the array travels as a msgpack array, a Lua sequence for Kong's acl.
    expect(third.Data).toEqual({
      Method: 'kong.ctx.shared.set',
      Args: ['authenticated_groups', ['orders:read', 'profile']],
    })
    expect((await step(third.EventId, undefined)).Data).toBe('ret')
  })

  it('refuses a POST without orders:write with a 403 exit that Kong never answers', async () => {
    const id = await startInstance()
    const first = (await rpc.call('plugin.HandleEvent', {
      InstanceId: id,
      EventName: 'access',
    })) as Reply
    const second = await step(first.EventId, 'POST')
    const third = await step(second.EventId, jwt({ scope: 'orders:read' }))
    expect(third.Data).toEqual({
      Method: 'kong.response.exit',
      Args: [
        403,
        { message: 'Insufficient scope', code: 'ERR_SCOPE_INSUFFICIENT' },
        {
          'WWW-Authenticate':
            'Bearer realm="kong", error="insufficient_scope", error_description="Insufficient scope", scope="orders:write"',
        },
      ],
    })
  })

  it('refuses with 401 when Kong answers kong.ctx.shared.get with nil (no Data key)', async () => {
    const id = await startInstance()
    const first = (await rpc.call('plugin.HandleEvent', {
      InstanceId: id,
      EventName: 'access',
    })) as Reply
    const second = await step(first.EventId, 'GET')
    const third = await step(second.EventId, undefined)
    expect(third.Data).toMatchObject({
      Method: 'kong.response.exit',
      Args: [
        401,
        { code: 'ERR_SCOPE_CONTEXT_MISSING' },
        { 'WWW-Authenticate': 'Bearer realm="kong"' },
      ],
    })
  })

  it('fails closed with a 500 exit when StartInstance got a config it cannot use', async () => {
    const id = await startInstance({ rules: [] })
    await expectConfigRefusal(rpc, id)
  })
})
