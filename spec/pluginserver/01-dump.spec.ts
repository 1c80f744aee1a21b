import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from '@jest/globals'
import { pluginServerBin } from '../../emulator/plugin-server'

const ROOT = join(__dirname, '..', '..')
const SERVERS = join(ROOT, 'dist', 'servers')
/** Every plugin the package ships, with its priority: each must be built and dumped. */
const EXPECTED: Record<string, number> = {
  'consumer-jwt': 1450,
  'jwt-revocation': 1400,
  'scope-acl': 960,
}

interface Field {
  description?: string
  fields?: Record<string, Field>[]
  elements?: Field
}

function walk(fields: Record<string, Field>[], path: string, out: string[]): void {
  for (const entry of fields) {
    for (const [name, f] of Object.entries(entry)) {
      const len = f.description?.length ?? 0
      if (len < 10 || len > 500) out.push(`${path}${name}`)
      if (f.fields) walk(f.fields, `${path}${name}.`, out)
      if (f.elements?.fields) walk(f.elements.fields, `${path}${name}[].`, out)
    }
  }
}

const built = readdirSync(SERVERS)
const shipped = Object.keys(EXPECTED)

describe('plugin servers: (--dump-all-plugins, as Kong queries them)', () => {
  it('lays out one plugin-server directory per plugin, each holding only its entry file', () => {
    for (const name of built) expect(readdirSync(join(SERVERS, name))).toEqual([`${name}.js`])
    expect([...built].sort()).toEqual([...shipped].sort())
  })

  it.each(shipped)(
    '%s: prints strict JSON and nothing else, with exactly one plugin as Kong 3.9 needs',
    (name) => {
      const stdout = execFileSync(
        process.execPath,
        [pluginServerBin(), '--plugins-directory', join(SERVERS, name), '--dump-all-plugins'],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      const dump = JSON.parse(stdout) as {
        Name: string
        Version: string
        Priority: number
        Phases: string[]
        Schema: {
          name: string
          fields: { config: { type: string; fields: Record<string, Field>[] } }[]
        }
      }[]
      expect(dump).toHaveLength(1)
      const [info] = dump
      expect(info?.Name).toBe(name)
      expect(info?.Version).toMatch(/^\d+\.\d+\.\d+$/)
      expect(Number.isInteger(info?.Priority)).toBe(true)
      expect(info?.Priority).toBe(EXPECTED[name])
      expect(info?.Phases).toContain('access')
      expect(info?.Phases.some((p) => p === 'header_filter' || p === 'body_filter')).toBe(false)
      const config = info?.Schema.fields[0]?.config
      expect(config?.type).toBe('record')
      const undocumented: string[] = []
      walk(config?.fields ?? [], '', undocumented)
      expect(undocumented).toEqual([])
    },
  )
})
