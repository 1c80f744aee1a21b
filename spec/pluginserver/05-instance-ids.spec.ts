import { describe, expect, it } from '@jest/globals'
import type { PluginServerKind } from '../../emulator/plugin-server'
import { startPluginServer } from './helpers/plugin-server'

// Kong keeps instance ids per nginx worker; after a respawn a worker may still send an id of
// the previous process. kong-pdk numbers instances from 0 in every process, so that old id can
// name another configuration of the new one (the consumer-jwt of another route, with other
// scopes). Our plugin server starts each process at a random id, so an old id is unknown and
// Kong restarts the instance ("no plugin instance") instead.
async function firstIds(kind: PluginServerKind): Promise<number[]> {
  const ids: number[] = []
  for (let i = 0; i < 2; i++) {
    const ps = await startPluginServer('scope-acl', kind)
    try {
      const started = (await ps.rpc.call('plugin.StartInstance', {
        Name: 'scope-acl',
        Config: JSON.stringify({ allow_unlisted_methods: true }),
      })) as { Id: number }
      ids.push(started.Id)
    } finally {
      ps.stop()
    }
  }
  return ids
}

describe('plugin server: (instance ids across a respawn)', () => {
  it('gives the first instance of every kong-pdk process the id 0, as published', async () => {
    expect(await firstIds('kong-pdk')).toEqual([0, 0])
  })

  it('gives the first instances of two processes of ours different ids, none of them 0', async () => {
    const [a, b] = await firstIds('toolkit')
    expect(a).not.toBe(0)
    expect(b).not.toBe(0)
    expect(a).not.toBe(b)
    expect(Number.isSafeInteger(a)).toBe(true)
  })
})
