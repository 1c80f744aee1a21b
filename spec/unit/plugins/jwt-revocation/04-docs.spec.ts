import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from '@jest/globals'
import { labelled } from '../../../helpers/labelled'
import { configReference } from '../../../../cli/config-reference'
import { Schema } from '../../../../plugins/jwt-revocation/schema'
import { CATALOGUE, type ErrorCode } from '../../../../plugins/shared/errors'

const DOC = readFileSync(
  join(__dirname, '..', '..', '..', '..', 'docs', 'jwt-revocation.md'),
  'utf8',
)

describe('jwt-revocation: (docs kept true by the code)', () => {
  it('carries the config reference generated from the schema', () => {
    const block =
      /<!-- config:jwt-revocation -->\n([\s\S]*?)\n<!-- \/config:jwt-revocation -->/.exec(DOC)
    expect(block?.[1]).toBe(configReference(Schema))
  })

  it('documents each error code with its real status', () => {
    const rows = [...DOC.matchAll(/^\| `(ERR_[A-Z_]+)` \| (\d{3})/gm)]
    expect(rows.length).toBeGreaterThan(0)
    for (const [, code, status] of rows) {
      // A code the docs name may be missing from the catalogue: undefined then.
      const entry =
        code !== undefined && code in CATALOGUE ? CATALOGUE[code as ErrorCode] : undefined
      labelled(entry?.status, code).toBe(Number(status))
    }
  })
})
