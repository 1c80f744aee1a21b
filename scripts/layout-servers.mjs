// Gives every plugin its own plugin-server directory holding exactly one entry file.
// Kong 3.9 registers only the first plugin a plugin server reports, and kong-js-pluginserver
// require()s every entry of its directory, so shared code and tests must never sit there.
//
//   dist/plugins/<name>/index.js   compiled plugin (tsc)
//   dist/servers/<name>/<name>.js  one-line entry: module.exports = require('../../plugins/<name>/index.js')
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const dist = new URL('../dist/', import.meta.url).pathname
const pluginsDir = join(dist, 'plugins')
const serversDir = join(dist, 'servers')

rmSync(serversDir, { recursive: true, force: true })
mkdirSync(serversDir, { recursive: true })

const names = readdirSync(pluginsDir, { withFileTypes: true })
  .filter(
    (d) =>
      d.isDirectory() && d.name !== 'shared' && existsSync(join(pluginsDir, d.name, 'index.js')),
  )
  .map((d) => d.name)

for (const name of names) {
  const dir = join(serversDir, name)
  mkdirSync(dir)
  writeFileSync(
    join(dir, `${name}.js`),
    `'use strict'\nmodule.exports = require('../../plugins/${name}/index.js')\n`,
  )
}
console.log(`plugin-server directories: ${names.map((n) => `dist/servers/${n}`).join(', ')}`)
