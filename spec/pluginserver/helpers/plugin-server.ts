import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
