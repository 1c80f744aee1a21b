#!/usr/bin/env node
/**
 * The plugin-server command Kong starts for each of our plugins (docker/kong.conf):
 *
 *   node dist/pluginserver/main.js --plugins-directory <dir> --kong-prefix <prefix> --sock-name <name>.sock
 *   node dist/pluginserver/main.js --plugins-directory <dir> --dump-all-plugins
 *
 * It is kong-pdk 0.6.0's `kong-js-pluginserver`, started exactly as its bin starts it (same
 * options, same Server and Listener, same dump), with the corrections of
 * pluginserver/kong-pdk-fixes.ts applied first (the event leak; instance ids never reused after
 * a respawn; the per-message debug string, below debug level) and its log written without ANSI colour codes (Kong copies the server's
 * output into its error log as is).
 */
import { randomInt } from 'node:crypto'
import { createRequire } from 'node:module'
import path from 'node:path'
import {
  fixEventLeak,
  skipDebugSerialization,
  startIdsAt,
  type MsgpackModule,
  type PdkServerIds,
  type PdkServerClass,
} from './kong-pdk-fixes'

interface PdkServer {
  GetPluginInfo(name: string): Promise<unknown>
  getPlugins(): Map<string, unknown>
  close(): void
}
interface CliOptions {
  pluginsDirectory: string
  kongPrefix: string
  sockName: string
  logLevel: string
  DumpPluginInfo?: string
  DumpAllPlugins?: boolean
}
interface ColorLogger {
  setLevel(level: string): void
  setLevelNoColor(): void
}

/** kong-pdk's own modules and dependencies, resolved from its directory as its bin does. */
const pdkRequire = createRequire(require.resolve('kong-pdk/server.js'))
const fromPdk = (id: string): unknown => pdkRequire(id)

type ServerClass = PdkServerClass & (new (dir: string, logger: unknown) => PdkServer)
type ListenerClass = new (server: PdkServer, socket: string) => { serve(): unknown }
type Msgpack = MsgpackModule & { encode(value: unknown): Uint8Array }

const Server = fromPdk('./server.js') as ServerClass
const Listener = fromPdk('./listener.js') as ListenerClass
const cli = fromPdk('./cli.js') as { parse(): CliOptions }
const logger = fromPdk('node-color-log') as ColorLogger
const msgpack = fromPdk('@msgpack/msgpack') as Msgpack

fixEventLeak(Server)

const opts = cli.parse()
logger.setLevel(opts.logLevel)
logger.setLevelNoColor()
if (opts.logLevel !== 'debug') skipDebugSerialization(msgpack)

const server = new Server(opts.pluginsDirectory, logger)
// A random first instance id per process, so ids of a previous process are never reused.
startIdsAt(server as unknown as PdkServerIds, randomInt(1, 2 ** 40))
if (opts.DumpPluginInfo !== undefined) {
  void server.GetPluginInfo(opts.DumpPluginInfo).then((info) => {
    process.stdout.write(msgpack.encode(info))
  })
} else if (opts.DumpAllPlugins === true) {
  void Promise.all([...server.getPlugins().keys()].map((name) => server.GetPluginInfo(name))).then(
    (infos) => {
      console.log(JSON.stringify(infos))
    },
  )
} else {
  new Listener(server, path.join(opts.kongPrefix, opts.sockName)).serve()
}
// As kong-pdk's bin does: this stops the (60 ms) instance-expiry timer, so instances live
// until Kong closes them.
server.close()
