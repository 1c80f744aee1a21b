// Generates the config tables from each plugin's schema (run `npm run build` first):
//   node scripts/config-reference.mjs          print the tables
//   node scripts/config-reference.mjs --write  replace them in README.md and docs/*.md, between
//                                              the <!-- config:NAME --> markers found there
// spec/unit/readme.spec.ts and the docs specs fail when a table and its schema differ.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { configReference } = require('../dist/cli/config-reference.js')
const files = ['../README.md', '../docs/jwt-revocation.md'].map(
  (f) => new URL(f, import.meta.url).pathname,
)
const names = ['consumer-jwt', 'scope-acl', 'jwt-revocation']
const write = process.argv.includes('--write')

const blocks = new Map()
for (const name of names) {
  const { Schema } = require(`../dist/plugins/${name}/index.js`)
  blocks.set(name, `<!-- config:${name} -->\n${configReference(Schema)}\n<!-- /config:${name} -->`)
}
if (!write) {
  for (const block of blocks.values()) console.log(block + '\n')
} else {
  for (const file of files) {
    let text = readFileSync(file, 'utf8')
    for (const [name, block] of blocks) {
      const re = new RegExp(`<!-- config:${name} -->[\\s\\S]*?<!-- /config:${name} -->`)
      text = text.replace(re, () => block)
    }
    writeFileSync(file, text)
  }
  if (!readFileSync(files[0], 'utf8').includes('<!-- config:consumer-jwt -->'))
    throw new Error('README.md has no <!-- config:consumer-jwt --> block')
}
