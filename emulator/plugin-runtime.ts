/**
 * Instances and events on Kong's side (doc §2.3/§2.5, FINDINGS F6–F14, F18–F22):
 *
 * - an instance per plugin entity, keyed by plugin id, started lazily with StartInstance and reused
 *   while `__seq__` is unchanged; a new config (every reload assigns new `__seq__`s) gives
 *   StartInstance(new) then CloseInstance(old);
 * - concurrent requests wait for an instance another request is starting;
 * - a StartInstance error is a Lua error (→ 500 in rewrite/access);
 * - HandleEvent then Step* until `"ret"`; exit/error and Lua errors abandon the event without reply;
 * - an RPC error containing "no plugin instance" resets every instance of that plugin and retries
 *   the event; any other RPC failure is logged and the plugin is skipped (fail-open).
 */
import { LuaError, isPlainObject } from './lua-values'
import { RpcEncodeError, RpcRemoteError, RpcTransportError } from './msgpack-rpc'
import { callPdk, stepMethodFor, type PdkEnvironment } from './pdk'
import type { PluginServer } from './plugin-server'
import type { Phase, RequestContext } from './request-context'

/** A plugin configuration as Kong's plugins iterator holds it. */
export interface PluginConfigInstance {
  readonly pluginId: string
  readonly name: string
  readonly seq: number
  /** The processed config plus Kong's bookkeeping keys: what Kong JSON-encodes for StartInstance. */
  readonly conf: Readonly<Record<string, unknown>>
  readonly routeId?: string
  readonly serviceId?: string
  readonly consumerId?: string
}

interface RunningInstance {
  id?: number
  seq: number
  pluginName: string
  starting?: Promise<number>
}

/** Kong recurses without limit on "no plugin instance"; the emulator stops after this many retries. */
const MAX_INSTANCE_RETRIES = 10

export class InstanceManager {
  private readonly running = new Map<string, RunningInstance>()

  constructor(private readonly log: PdkEnvironment['log']) {}

  async getInstanceId(server: PluginServer, cfg: PluginConfigInstance): Promise<number> {
    for (;;) {
      const info = this.running.get(cfg.pluginId)
      if (info?.starting) {
        await info.starting.catch(() => undefined)
        continue
      }
      if (info && info.id !== undefined && info.seq === cfg.seq) return info.id
      const oldId = info?.id
      const claim: RunningInstance = info ?? { seq: cfg.seq, pluginName: cfg.name }
      claim.id = undefined
      const starting = this.start(server, cfg)
      claim.starting = starting
      this.running.set(cfg.pluginId, claim)
      let id: number
      try {
        id = await starting
      } catch (e) {
        this.running.delete(cfg.pluginId)
        throw e
      } finally {
        claim.starting = undefined
      }
      claim.id = id
      claim.seq = cfg.seq
      if (oldId !== undefined) {
        // result and errors ignored, as Kong does
        await server.rpc.call('plugin.CloseInstance', oldId).catch(() => undefined)
      }
      return id
    }
  }

  /** After "no plugin instance": forget every instance of that plugin (Kong ≥3.5). */
  resetPlugin(pluginName: string): void {
    for (const [k, v] of this.running)
      if (v.pluginName === pluginName && !v.starting) this.running.delete(k)
  }

  /** Instance ids currently held, by plugin id (for tests). */
  snapshot(): Record<string, number | undefined> {
    return Object.fromEntries([...this.running].map(([k, v]) => [k, v.id]))
  }

  private async start(server: PluginServer, cfg: PluginConfigInstance): Promise<number> {
    let status: unknown
    try {
      status = await server.rpc.call('plugin.StartInstance', {
        Name: cfg.name,
        Config: JSON.stringify(cfg.conf),
      })
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e)
      this.log({ level: 'err', plugin: cfg.name, message: `starting instance: ${msg}` })
      throw new LuaError(msg)
    }
    if (!isPlainObject(status) || typeof status['Id'] !== 'number') {
      throw new LuaError(`starting instance: bad StartInstance result`)
    }
    return status['Id']
  }
}

export type EventResult = 'done' | 'exit' | 'skipped'

/**
 * Runs one phase of one plugin for a request, like Kong's Rpc:handle_event.
 * @returns 'exit' when the plugin called kong.response.exit/error, 'skipped' on a fail-open RPC error.
 * @throws LuaError where Kong raises (StartInstance failure, Lua error in a PDK call).
 */
export async function handleEvent(
  server: PluginServer,
  instances: InstanceManager,
  cfg: PluginConfigInstance,
  phase: Phase,
  ctx: RequestContext,
  env: PdkEnvironment,
): Promise<EventResult> {
  for (let attempt = 0; ; attempt++) {
    const instanceId = await instances.getInstanceId(server, cfg)
    try {
      return await bridgeLoop(server, instanceId, phase, ctx, env)
    } catch (e) {
      if (e instanceof LuaError) throw e
      if (e instanceof RpcEncodeError) throw new LuaError(e.message)
      const msg = e instanceof Error ? e.message : String(e)
      if (msg.toLowerCase().includes('no plugin instance') && attempt < MAX_INSTANCE_RETRIES) {
        instances.resetPlugin(cfg.name)
        env.log({ level: 'warn', plugin: cfg.name, message: msg, requestId: ctx.id, phase })
        continue
      }
      if (e instanceof RpcRemoteError || e instanceof RpcTransportError) {
        env.log({ level: 'err', plugin: cfg.name, message: msg, requestId: ctx.id, phase })
        return 'skipped'
      }
      throw e
    }
  }
}

async function bridgeLoop(
  server: PluginServer,
  instanceId: number,
  phase: Phase,
  ctx: RequestContext,
  env: PdkEnvironment,
): Promise<EventResult> {
  const first = await server.rpc.call('plugin.HandleEvent', {
    InstanceId: instanceId,
    EventName: phase,
  })
  if (!isPlainObject(first)) throw new RpcTransportError('bad HandleEvent result')
  let stepIn: Record<string, unknown> = first
  const eventId = stepIn['EventId']
  for (;;) {
    const data = stepIn['Data']
    if (data === 'ret') return 'done'
    if (!isPlainObject(data)) throw new RpcTransportError('bad event data')
    const method = data['Method']
    const outcome = callPdk(ctx, method, data['Args'], env)
    if (outcome.kind === 'exit') return 'exit'
    const methodName = typeof method === 'string' ? method : ''
    const stepMethod =
      outcome.kind === 'value' ? stepMethodFor(methodName, outcome.value) : 'plugin.Step'
    const param =
      outcome.kind === 'value' ? { EventId: eventId, Data: outcome.value } : { EventId: eventId }
    const next = await server.rpc.call(
      stepMethod,
      param,
      outcome.kind === 'unencodable' ? outcome.message : undefined,
    )
    if (!isPlainObject(next)) throw new RpcTransportError('bad Step result')
    stepIn = next
  }
}
