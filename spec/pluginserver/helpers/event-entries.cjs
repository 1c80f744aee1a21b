// Drives kong-pdk 0.6.0's Server in this process, as Kong's RPC would, and prints how many event
// entries are left in `server.events` afterwards. Run by spec/pluginserver/04-event-leak.spec.ts
// in a child process (kong-pdk registers ts-node when it loads):
//   node event-entries.cjs stock <events per kind>             kong-pdk as published
//   node event-entries.cjs fixed <events per kind>             with pluginserver/kong-pdk-fixes
//   node event-entries.cjs patched <events per kind> <file>    server.js replaced by <file>
//                                                              (the upstream patch applied)
'use strict'
const fs = require('node:fs')
const Module = require('node:module')
const os = require('node:os')
const path = require('node:path')

const [mode, countArg, patchedFile] = process.argv.slice(2)
const count = Number(countArg)
const root = path.join(__dirname, '..', '..', '..')

function loadServer() {
  if (mode !== 'patched') return require('kong-pdk/server.js')
  // Compiled as if it sat beside kong-pdk's server.js, so its relative requires resolve.
  const filename = path.join(
    path.dirname(require.resolve('kong-pdk/server.js')),
    'server.patched.js',
  )
  const m = new Module(filename, module)
  m.filename = filename
  m.paths = Module._nodeModulePaths(path.dirname(filename))
  m._compile(fs.readFileSync(patchedFile, 'utf8'), filename)
  return m.exports
}
const Server = loadServer()
if (mode === 'fixed') {
  require(path.join(root, 'dist', 'pluginserver', 'kong-pdk-fixes.js')).fixEventLeak(Server)
}

// One plugin per kind of event: refused at once (exit, error), no PDK call, refused after one
// answered PDK call, one PDK call and done.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kjt-leak-'))
const plugin = (name, body) =>
  fs.writeFileSync(
    path.join(dir, `${name}.js`),
    `module.exports = { Name: '${name}', Version: '1.0.0', Priority: 1, Schema: [],\n` +
      `  Plugin: class { async access(kong) { ${body} } } }\n`,
  )
plugin('exits', "return kong.response.exit(401, { message: 'no' })")
plugin('errors', 'return kong.response.error(403)')
plugin('silent', 'return')
// The refusal path of our plugins: read the request (a Step answers it), then exit.
plugin(
  'reads-then-exits',
  "await kong.request.getHeader('authorization'); return kong.response.exit(401)",
)
plugin('reads', "await kong.request.getHeader('host')")

const logger = { debug() {}, info() {}, warn: console.error, error: console.error }
const server = new Server(dir, logger)
server.close()

async function main() {
  const result = {}
  for (const name of ['exits', 'errors', 'silent', 'reads-then-exits', 'reads']) {
    const { Id } = await server.StartInstance({ Name: name, Config: '{}' })
    const before = server.events.size
    for (let i = 0; i < count; i++) {
      let reply = await server.HandleEvent({ InstanceId: Id, EventName: 'access' })
      // Kong answers each PDK call with a Step, stops on "ret", and never answers an exit.
      while (reply.Data !== 'ret' && !/^kong\.response\.(exit|error)$/.test(reply.Data.Method)) {
        reply = await server.Step({ EventId: reply.EventId, Data: 'example.test' })
      }
    }
    await new Promise((resolve) => setImmediate(resolve))
    result[name] = server.events.size - before
  }
  fs.rmSync(dir, { recursive: true, force: true })
  process.stdout.write(JSON.stringify(result))
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
