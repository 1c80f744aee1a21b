// Generates the README config tables from each plugin's schema (run `npm run build` first):
//   node scripts/config-reference.mjs          print the tables
//   node scripts/config-reference.mjs --write  replace them in README.md, between the
//                                              <!-- config:NAME --> markers
// spec/unit/readme.spec.ts fails when README.md and the schemas differ.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { configReference } = require('../dist/cli/config-reference.js')
const readme = new URL('../README.md', import.meta.url).pathname
const names = ['consumer-jwt', 'scope-acl', 'jwt-revocation']

let text = process.argv.includes('--write') ? readFileSync(readme, 'utf8') : ''
for (const name of names) {
  const { Schema } = require(`../dist/plugins/${name}/index.js`)
  const block = `<!-- config:${name} -->\n${configReference(Schema)}\n<!-- /config:${name} -->`
  if (!process.argv.includes('--write')) {
    console.log(block + '\n')
    continue
  }
  const re = new RegExp(`<!-- config:${name} -->[\\s\\S]*?<!-- /config:${name} -->`)
  if (!re.test(text)) throw new Error(`README.md has no <!-- config:${name} --> block`)
  text = text.replace(re, () => block)
}
if (process.argv.includes('--write')) writeFileSync(readme, text)
