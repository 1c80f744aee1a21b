import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from '@jest/globals'
import { labelled } from '../../helpers/labelled'
import { parse } from 'yaml'
import { parseKongYaml } from '../../../cli/kong/declarative-config'
import { pluginsOf } from '../../../emulator/demo-kit'
import { PRIORITIES } from '../../../plugins/shared/priorities'

const ROOT = join(__dirname, '..', '..', '..')
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8')
const PLUGINS = Object.keys(PRIORITIES)

function settings(text: string, sep: RegExp): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue
    const m = sep.exec(line)
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(m[1].trim(), m[2].trim())
  }
  return out
}

const conf = settings(read('docker/kong.conf'), /^([^=]+)=(.*)$/)
const env = settings(read('docker/kong.env'), /^([A-Z0-9_]+)=(.*)$/)

describe('docker: (Kong settings for the plugin servers)', () => {
  it('lists every plugin in plugins and pluginserver_names', () => {
    expect(conf.get('plugins')?.split(',')).toEqual(['bundled', ...[...PLUGINS].sort()])
    expect(conf.get('pluginserver_names')?.split(',').sort()).toEqual([...PLUGINS].sort())
  })

  it.each(PLUGINS)('%s: has its own directory and a socket equal to --kong-prefix/--sock-name', (name) => {
    const key = name.replace(/-/g, '_')
    const socket = conf.get(`pluginserver_${key}_socket`)
    const start = conf.get(`pluginserver_${key}_start_cmd`) ?? ''
    const query = conf.get(`pluginserver_${key}_query_cmd`) ?? ''
    const arg = (cmd: string, flag: string) => new RegExp(`${flag} (\\S+)`).exec(cmd)?.[1]
    expect(arg(start, '--plugins-directory')).toBe(`/opt/kong-jwt-toolkit/dist/servers/${name}`)
    expect(arg(query, '--plugins-directory')).toBe(`/opt/kong-jwt-toolkit/dist/servers/${name}`)
    expect(query).toContain('--dump-all-plugins')
    expect(`${arg(start, '--kong-prefix')}/${arg(start, '--sock-name')}`).toBe(socket)
    // Our plugin-server command (kong-pdk's server with its event-leak fix), for both commands.
    for (const cmd of [start, query])
      expect(cmd.startsWith('/usr/local/bin/node /opt/kong-jwt-toolkit/dist/pluginserver/main.js ')).toBe(true)
  })

  it('says the same in kong.env as in kong.conf', () => {
    expect(conf.size).toBeGreaterThan(0)
    for (const [k, v] of conf) labelled(env.get(`KONG_${k.toUpperCase()}`), k).toBe(v)
  })

  it('names in docker-compose every host kong.yml sends traffic to', () => {
    const compose = parse(read('docker/docker-compose.yml')) as { services: Record<string, unknown> }
    const kong = parseKongYaml(read('kong.yml')) as {
      upstreams: { targets: { target: string }[] }[]
      services: { url?: string; host?: string }[]
    }
    const upstreamNames = new Set(kong.upstreams.map((u) => (u as unknown as { name: string }).name))
    const hosts = new Set<string>()
    for (const u of kong.upstreams) for (const t of u.targets) hosts.add(t.target.split(':')[0] ?? '')
    for (const s of kong.services) {
      const host = s.url !== undefined ? new URL(s.url).hostname : s.host
      if (host !== undefined && !upstreamNames.has(host)) hosts.add(host)
    }
    const redisUrl = (settings: unknown): string | undefined =>
      (settings as { redis?: { url?: string } } | undefined)?.redis?.url
    for (const p of pluginsOf(kong)) {
      const config = (p.config ?? {}) as { credentials?: { jwks_uri?: string }[]; revocation?: unknown }
      for (const c of config.credentials ?? []) if (c.jwks_uri) hosts.add(new URL(c.jwks_uri).hostname)
      for (const url of [redisUrl(config), redisUrl(config.revocation)])
        if (url !== undefined) hosts.add(new URL(url).hostname)
    }
    expect(hosts).toContain('redis')
    for (const host of hosts) labelled(Object.keys(compose.services), host).toContain(host)
  })
})
