import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { globexSecret, KONG_YML } from '../../emulator/demo-kit'
import { start } from '../../emulator/emulator'
import { builtPluginDirs } from './helpers/kong-target'

// kong.yml exactly as written must load the way Kong 3.9 loads it: entity references resolve,
// and every plugin config validates against the schema its plugin server dumps.
const env = { ...process.env, PARTNER_GLOBEX_SECRET: globexSecret() }

describe('kong.yml: (loads as written, plugin configs validated against the dumped schemas)', () => {
  it('is accepted unchanged', async () => {
    const kong = await start({
      config: readFileSync(KONG_YML, 'utf8'),
      pluginDirs: builtPluginDirs(),
      env,
    })
    try {
      const status = await fetch(`${kong.adminUrl}/status`)
      expect(status.status).toBe(200)
    } finally {
      await kong.stop()
    }
  })

  it('would be refused with a field-level error if a plugin config had an unknown field', async () => {
    const doc = parse(readFileSync(KONG_YML, 'utf8')) as {
      plugins: { name: string; config: Record<string, unknown> }[]
    }
    const plugin = doc.plugins.find((p) => p.name === 'consumer-jwt')
    if (plugin === undefined) throw new Error('kong.yml has no consumer-jwt plugin')
    plugin.config.leway = 30 // a typo an operator could make
    await expect(
      start({ config: stringify(doc), pluginDirs: builtPluginDirs(), env }),
    ).rejects.toThrow(/leway/)
  })
})
