import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from '@jest/globals'
import { configReference } from '../../cli/config-reference'
import * as consumerJwt from '../../plugins/consumer-jwt/index'
import * as jwtRevocation from '../../plugins/jwt-revocation/index'
import * as scopeAcl from '../../plugins/scope-acl/index'
import { CATALOGUE, ERROR_CODES } from '../../plugins/shared/errors'

const README = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8')

interface Row {
  status: number
  error: string
  message: string
}

function errorRows(): Map<string, Row> {
  const rows = new Map<string, Row>()
  for (const line of README.split('\n')) {
    const m = /^\| `(ERR_[A-Z_]+)` \| (\d{3}) \|\s*(`([a-z_]+)`)?\s*\| ([^|]+) \|/.exec(line)
    if (m?.[1] !== undefined)
      rows.set(m[1], { status: Number(m[2]), error: m[4] ?? '', message: (m[5] ?? '').trim() })
  }
  return rows
}

describe('README: (kept true by the code)', () => {
  it('lists every error code of the catalogue, and no code that no longer exists', () => {
    expect([...errorRows().keys()].sort()).toEqual([...ERROR_CODES].sort())
  })

  it.each(ERROR_CODES)('documents %s with its real status, challenge error and message', (code) => {
    const spec = CATALOGUE[code]
    expect(errorRows().get(code)).toEqual({
      status: spec.status,
      error: spec.bearer ?? '',
      message: spec.message,
    })
  })

  it.each([
    ['consumer-jwt', consumerJwt.Schema],
    ['scope-acl', scopeAcl.Schema],
    ['jwt-revocation', jwtRevocation.Schema],
  ] as const)(
    'carries the config reference of %s generated from its schema (npm run docs)',
    (name, schema) => {
      const block = new RegExp(
        `<!-- config:${name} -->\\n([\\s\\S]*?)\\n<!-- /config:${name} -->`,
      ).exec(README)
      expect(block?.[1]).toBe(configReference(schema))
    },
  )

  it('links each attack and fail policy of the security section to a test that exists, by its name', () => {
    const links = [...README.matchAll(/\[test\]\(([^ )]+) "([^"]+)"\)/g)]
    expect(links.length).toBeGreaterThanOrEqual(20)
    const missing = links
      .map(([, path = '', name = '']) => ({ path, name }))
      .filter(({ path, name }) => {
        const source = readFileSync(join(__dirname, '..', '..', path), 'utf8')
        return (
          !source.includes(`'${name}'`) &&
          !source.includes(`"${name}"`) &&
          !source.includes(`\`${name}\``)
        )
      })
    expect(missing).toEqual([])
  })

  it('names npm test as the test command and .ci/run runs it', () => {
    expect(README).toContain('npm test ')
    expect(readFileSync(join(__dirname, '..', '..', '.ci', 'run'), 'utf8')).toMatch(/^npm test$/m)
  })
})
