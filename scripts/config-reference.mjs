// Prints the README config tables, generated from each plugin's schema (run `npm run build` first).
// spec/unit/readme.spec.ts fails when README.md and these tables differ.
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const { configReference } = require('../dist/cli/config-reference.js')
for (const name of process.argv.slice(2).length ? process.argv.slice(2) : ['consumer-jwt', 'scope-acl', 'jwt-revocation']) {
  const { Schema } = require(`../dist/plugins/${name}/index.js`)
  console.log(`<!-- config:${name} -->\n${configReference(Schema)}\n<!-- /config:${name} -->\n`)
}
