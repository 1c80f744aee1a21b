import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from '@jest/globals'

// kong-pdk 0.6.0 keeps one `server.events` entry for every event Kong never steps to "ret"
// again: an exit or an error (Kong never answers them) and a phase with no PDK call. A flood of
// bad tokens grew a real plugin server by ~1.8 kB per refusal (protocol doc §10).
// pluginserver/kong-pdk-fixes.ts deletes those entries; this drives kong-pdk's own Server class
// in a child process, with and without the fix, and counts what is left.
const DRIVER = join(__dirname, 'helpers', 'event-entries.cjs')
const PATCH = join(__dirname, '..', '..', 'docs', 'kong-pdk-event-leak.patch')
const EVENTS = 50

function entriesLeft(mode: 'fixed' | 'stock' | 'patched', file?: string): Record<string, number> {
  const args = [DRIVER, mode, String(EVENTS), ...(file !== undefined ? [file] : [])]
  return JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })) as Record<
    string,
    number
  >
}

describe('plugin server: (kong-pdk event entries)', () => {
  it('leaks one entry per exit, error and call-less event with kong-pdk as published', () => {
    expect(entriesLeft('stock')).toEqual({
      exits: EVENTS,
      errors: EVENTS,
      silent: EVENTS,
      'reads-then-exits': EVENTS,
      reads: 0,
    })
  })

  it('keeps no entry of any finished event with the fix our plugin server applies', () => {
    expect(entriesLeft('fixed')).toEqual({
      exits: 0,
      errors: 0,
      silent: 0,
      'reads-then-exits': 0,
      reads: 0,
    })
  })

  it('keeps no entry either with docs/kong-pdk-event-leak.patch applied to server.js (the upstream proposal)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kjt-patch-'))
    try {
      const out = join(dir, 'server.js')
      execFileSync('patch', ['-s', '-o', out, require.resolve('kong-pdk/server.js'), PATCH])
      expect(entriesLeft('patched', out)).toEqual({
        exits: 0,
        errors: 0,
        silent: 0,
        'reads-then-exits': 0,
        reads: 0,
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
