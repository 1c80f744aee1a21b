import { readFileSync } from 'node:fs'
import { describe, expect, it } from '@jest/globals'
import { stringify } from 'yaml'
import { parseKongYaml } from '../../cli/kong/declarative-config'
import { globexSecret, KONG_YML, pluginsOf } from '../../emulator/demo-kit'
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
    const doc = parseKongYaml(readFileSync(KONG_YML, 'utf8'))
    const plugin = pluginsOf(doc).find((p) => p.name === 'consumer-jwt')
    if (plugin?.config === undefined) throw new Error('kong.yml has no consumer-jwt plugin')
    plugin.config.leway = 30 // a typo an operator could make
    await expect(
      start({ config: stringify(doc), pluginDirs: builtPluginDirs(), env }),
    ).rejects.toThrow(/leway/)
  })
})
