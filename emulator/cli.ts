/**
 * `npm run emulator -- --config kong.yml [--proxy-port 8000] [--admin-port 8001]
 *   [--plugins-dir dist/servers/<name> ...] [--echo-port 9001]`
 *
 * Starts the Kong emulator (a test and demo tool, not a gateway) with one plugin server per
 * plugin directory (default: every directory under dist/servers/).
 */
import fs from 'node:fs'
import path from 'node:path'
import { Command } from 'commander'
import { startEchoUpstream } from './echo-upstream'
import { start } from './emulator'

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}

export function defaultPluginDirs(root = process.cwd()): string[] {
  const base = path.join(root, 'dist', 'servers')
  if (!fs.existsSync(base)) return []
  return fs
    .readdirSync(base, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => path.join(base, d.name))
}

async function main(): Promise<void> {
  const program = new Command()
    .name('kong-emulator')
    .description('Kong 3.9 emulator for tests and demos (NOT a production gateway)')
    .requiredOption('--config <file>', 'declarative config (kong.yml)')
    .option('--proxy-port <port>', 'proxy listen port', '8000')
    .option('--admin-port <port>', 'admin listen port', '8001')
    .option('--plugins-dir <dir>', 'plugin-server directory (repeatable)', collect, [] as string[])
    .option('--echo-port <port>', 'also start an echo upstream on this port')
    .option('--quiet', 'do not print logs')
    .parse()
  const opts = program.opts<{
    config: string
    proxyPort: string
    adminPort: string
    pluginsDir: string[]
    echoPort?: string
    quiet?: boolean
  }>()
  const dirs = opts.pluginsDir.length > 0 ? opts.pluginsDir : defaultPluginDirs()
  const echo =
    opts.echoPort !== undefined ? await startEchoUpstream(Number(opts.echoPort)) : undefined
  const emu = await start({
    config: fs.readFileSync(opts.config, 'utf8'),
    pluginDirs: dirs,
    proxyPort: Number(opts.proxyPort),
    adminPort: Number(opts.adminPort),
    printLogs: opts.quiet !== true,
  })
  process.stdout.write(
    `Kong emulator (test/demo tool, not a gateway)\n  proxy ${emu.proxyUrl}\n  admin ${emu.adminUrl}\n` +
      `  plugin servers: ${[...emu.servers.keys()].join(', ') || '(none)'}\n` +
      (echo ? `  echo upstream ${echo.url}\n` : ''),
  )
  const shutdown = (): void => {
    void Promise.all([emu.stop(), echo?.stop()]).then(() => process.exit(0))
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(1)
  })
}
