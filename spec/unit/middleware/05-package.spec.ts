import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from '@jest/globals'

const MIDDLEWARE = join(__dirname, '..', '..', '..', 'middleware')

describe('middleware: what the package ships', () => {
  it('never imports the example service, which the release build leaves out', () => {
    const files = readdirSync(MIDDLEWARE).filter((f) => f.endsWith('.ts'))
    expect(files).toContain('index.ts')
    const importing = files.filter((f) =>
      /(from|import|require\()\s*['"][^'"]*\/example(\/|['"])/.test(
        readFileSync(join(MIDDLEWARE, f), 'utf8'),
      ),
    )
    expect(importing).toEqual([])
  })
})
