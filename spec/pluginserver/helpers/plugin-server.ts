import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RpcClient } from '../../../emulator/msgpack-rpc'

const ROOT = join(__dirname, '..', '..', '..')
export const PLUGINSERVER_BIN = join(ROOT, 'node_modules', '.bin', 'kong-js-pluginserver')

/** What HandleEvent and Step answer: the next PDK call, or "ret" when the phase is done. */
export type Reply = { Data: 'ret' | { Method: string; Args: unknown[] }; EventId: number }

export interface RunningPluginServer {
  /** Kong's side of the socket: one request in flight per connection, as Kong does. */
  readonly rpc: RpcClient
  stop(): void
}

/** Starts the real kong-js-pluginserver on dist/servers/<name>, as Kong's start_cmd does. */
export async function startPluginServer(name: string): Promise<RunningPluginServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kjt-ps-'))
  const server = spawn(
    PLUGINSERVER_BIN,
    ['-d', join(ROOT, 'dist', 'servers', name), '-p', dir, '--sock-name', `${name}.sock`],
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
