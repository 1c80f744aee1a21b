import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { processConfig, type SchemaField } from '../../cli/kong/schema'
import { Schema } from '../../plugins/consumer-jwt/schema'
import {
  expectConfigRefusal,
  startPluginServer,
  type Reply,
  type RunningPluginServer,
} from './helpers/plugin-server'
import { HS_SECRET, mint, secretKey } from '../helpers/tokens'

const CONSUMER = {
  id: 'c0000000-0000-4000-8000-000000000001',
  username: 'web-app',
  created_at: 1,
  tags: [],
}

let ps: RunningPluginServer
let rpc: RunningPluginServer['rpc']

beforeAll(async () => {
  ps = await startPluginServer('consumer-jwt')
  rpc = ps.rpc
})

afterAll(() => ps.stop())

/**
 * Kong's side of one config: StartInstance with the Config JSON string Kong sends (recordings
 * F7): the schema's defaults filled in, every record filled even when unset, plus Kong's
 * bookkeeping keys.
 */
async function startInstance(
  extra: Record<string, unknown> = {},
  scope: { route_id?: string } = {},
): Promise<number> {
  const config = {
    ...scope,
    __plugin_id: '91000000-0000-4000-8000-000000000001',
    __key__: 'plugins:consumer-jwt:::::0dc6f45b-8f8d-40d2-a504-473544ee190b',
    __seq__: 1,
    __ws_id: '0dc6f45b-8f8d-40d2-a504-473544ee190b',
    ...processConfig(Schema as unknown as readonly SchemaField[], {
      credentials: [{ key: 'web', consumer: 'web-app', algorithms: ['HS256'], secret: HS_SECRET }],
      ...extra,
    }),
  }
  const started = (await rpc.call('plugin.StartInstance', {
    Name: 'consumer-jwt',
    Config: JSON.stringify(config),
  })) as { Id: number }
  return started.Id
}

/** One access event as Kong drives it, answering each PDK call from `answers`. */
async function runAccess(
  id: number,
  answers: Record<string, [string, unknown]>,
): Promise<{ seen: Record<string, unknown[]>; trips: number }> {
  const seen: Record<string, unknown[]> = {}
  let reply = (await rpc.call('plugin.HandleEvent', {
    InstanceId: id,
    EventName: 'access',
  })) as Reply
  let trips = 1
  while (reply.Data !== 'ret') {
    const { Method, Args } = reply.Data
    seen[Method] = Args
    const answer = answers[Method]
    if (answer === undefined) throw new Error(`unexpected PDK call ${Method}`)
    const [step, data] = answer
    // nil travels as an absent Data key (recordings F15)
    const param =
      data === undefined ? { EventId: reply.EventId } : { EventId: reply.EventId, Data: data }
    reply = (await rpc.call(step, param)) as Reply
    trips++
  }
  return { seen, trips }
}

describe('consumer-jwt: (pluginserver: the real kong-js-pluginserver driven over its socket as Kong 3.9 does)', () => {
  it('authenticates a valid token, authenticate last: 6 round trips cold, 5 once the consumer is cached', async () => {
    const id = await startInstance()
    const token = await mint({ iss: 'web', sub: 'u1' }, { key: secretKey() })
    const answers: Record<string, [string, unknown]> = {
      'kong.request.get_headers': ['plugin.StepMultiMap', { authorization: [`Bearer ${token}`] }],
      'kong.client.load_consumer': ['plugin.StepConsumer', CONSUMER],
      'kong.service.request.set_headers': ['plugin.Step', undefined],
      'kong.ctx.shared.set': ['plugin.Step', undefined],
      'kong.client.authenticate': ['plugin.StepCredential', undefined],
    }
    const runEvent = () => runAccess(id, answers)
    const cold = await runEvent()
    expect(Object.keys(cold.seen)).toEqual(Object.keys(answers))
    expect(cold.trips).toBe(6)
    expect(cold.seen['kong.client.load_consumer']).toEqual(['web-app', true])
    expect(cold.seen['kong.ctx.shared.set']).toEqual(['authenticated_jwt_token', token])
    const patch = cold.seen['kong.service.request.set_headers']?.[0] as Record<string, unknown>
    expect(patch['X-Consumer-ID']).toBe(CONSUMER.id)
    expect(patch['X-Anonymous-Consumer']).toEqual([])
    const warm = await runEvent()
    expect(Object.keys(warm.seen)).not.toContain('kong.client.load_consumer')
    expect(warm.trips).toBe(5)
  })

  it('decides a request with its route-level scope rule in 4 round trips once warm (share_token off)', async () => {
    const id = await startInstance(
      { share_token: false, scopes: { default_rule: { scopes: ['orders:read'] } } },
      { route_id: '40000000-0000-4000-8000-000000000001' },
    )
    const token = await mint({ iss: 'web', sub: 'u1', scope: 'orders:read' }, { key: secretKey() })
    const answers: Record<string, [string, unknown]> = {
      'kong.request.get_headers': ['plugin.StepMultiMap', { authorization: [`Bearer ${token}`] }],
      'kong.client.load_consumer': ['plugin.StepConsumer', CONSUMER],
      'kong.service.request.set_headers': ['plugin.Step', undefined],
      'kong.client.authenticate': ['plugin.StepCredential', undefined],
    }
    await runAccess(id, answers)
    const warm = await runAccess(id, answers)
    expect(Object.keys(warm.seen)).toEqual([
      'kong.request.get_headers',
      'kong.service.request.set_headers',
      'kong.client.authenticate',
    ])
    expect(warm.trips).toBe(4)
  })

  it('refuses a forged token with one call then kong.response.exit, which Kong never answers', async () => {
    const id = await startInstance()
    const forged = await mint(
      { iss: 'web' },
      { key: secretKey('not-the-secret-but-long-enough-to-sign-with') },
    )
    const first = (await rpc.call('plugin.HandleEvent', {
      InstanceId: id,
      EventName: 'access',
    })) as Reply
    expect(first.Data).toEqual({ Method: 'kong.request.get_headers', Args: [1000] })
    const second = (await rpc.call('plugin.StepMultiMap', {
      EventId: first.EventId,
      Data: { authorization: [`Bearer ${forged}`] },
    })) as Reply
    expect(second.Data).toEqual({
      Method: 'kong.response.exit',
      Args: [
        401,
        { message: 'Invalid signature', code: 'ERR_SIGNATURE_INVALID' },
        {
          'WWW-Authenticate':
            'Bearer realm="kong", error="invalid_token", error_description="Invalid signature"',
        },
      ],
    })
  })

  it('fails closed with a 500 exit when StartInstance got a config it cannot use', async () => {
    const started = (await rpc.call('plugin.StartInstance', {
      Name: 'consumer-jwt',
      Config: JSON.stringify({ credentials: [] }),
    })) as { Id: number }
    await expectConfigRefusal(rpc, started.Id)
  })
})
