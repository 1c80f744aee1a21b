import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from '@jest/globals'
import { RpcClient } from '../../../emulator/msgpack-rpc'
import { pluginServerBin, type PluginServerKind } from '../../../emulator/plugin-server'

const ROOT = join(__dirname, '..', '..', '..')

/** What HandleEvent and Step answer: the next PDK call, or "ret" when the phase is done. */
export type Reply = { Data: 'ret' | { Method: string; Args: unknown[] }; EventId: number }

export interface RunningPluginServer {
  /** Kong's side of the socket: one request in flight per connection, as Kong does. */
  readonly rpc: RpcClient
  stop(): void
}

/**
 * Starts the plugin server on dist/servers/<name>, as Kong's start_cmd does: ours by default
 * (docker/kong.conf), or kong-pdk's own bin.
 */
export async function startPluginServer(
  name: string,
  kind: PluginServerKind = 'toolkit',
  serversDir = join(ROOT, 'dist', 'servers'),
): Promise<RunningPluginServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kjt-ps-'))
  const server = spawn(
    process.execPath,
    [pluginServerBin(kind), '-d', join(serversDir, name), '-p', dir, '--sock-name', `${name}.sock`],
    { stdio: 'ignore' },
  )
  const socketPath = join(dir, `${name}.sock`)
  for (let i = 0; i < 100 && !existsSync(socketPath); i++)
    await new Promise((r) => setTimeout(r, 50))
  const rpc = new RpcClient({ serverName: name, socketPath })
  return {
    rpc,
    stop: () => {
      rpc.close()
      server.kill('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * What Kong sees from an instance whose config the plugin refused: on the first request the
 * reason in Kong's own error log (answered with nil), then the 500; on every later one the 500
 * only.
 */
export async function expectConfigRefusal(rpc: RpcClient, instanceId: number): Promise<void> {
  const event = () =>
    rpc.call('plugin.HandleEvent', {
      InstanceId: instanceId,
      EventName: 'access',
    }) as Promise<Reply>
  const first = await event()
  expect(first.Data).toMatchObject({
    Method: 'kong.log.err',
    Args: [expect.stringContaining('refusing every request: ERR_CONFIG_INVALID')],
  })
  const exit = (await rpc.call('plugin.Step', { EventId: first.EventId })) as Reply
  expect(exit.Data).toMatchObject({
    Method: 'kong.response.exit',
    Args: [500, { code: 'ERR_CONFIG_INVALID' }, {}],
  })
  const second = await event()
  expect(second.Data).toMatchObject({
    Method: 'kong.response.exit',
    Args: [500, { code: 'ERR_CONFIG_INVALID' }, {}],
  })
}
