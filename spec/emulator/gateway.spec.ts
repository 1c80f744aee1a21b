import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { startEchoUpstream, type EchoUpstream } from '../../emulator/echo-upstream'
import { start, type RunningEmulator } from '../../emulator/emulator'
import { queryPluginInfo } from '../../emulator/plugin-server'
import { NO_TRANSCRIPTS, PROBE_PLUGINS } from './helpers/recordings'

const FIXTURES = path.join(__dirname, 'fixtures')

describe('emulator: plugin-server query (Kong 3.9 rules)', () => {
  ;(NO_TRANSCRIPTS !== undefined ? it.skip : it)(
    `reads name, priority, phases and schema of a recorded probe plugin from --dump-all-plugins${NO_TRANSCRIPTS ? ` (${NO_TRANSCRIPTS})` : ''}`,
    async () => {
      const info = await queryPluginInfo(path.join(PROBE_PLUGINS, 'pdk-probe'))
      expect(info).toMatchObject({ Name: 'pdk-probe', Priority: 1000, Version: '0.1.0' })
      expect([...info.Phases].sort()).toEqual(['access', 'log', 'response', 'rewrite'])
    },
  )

  it('refuses a plugin whose Version is not x.y.z', async () => {
    await expect(queryPluginInfo(path.join(FIXTURES, 'bad-version'))).rejects.toThrow(
      /does not follow the "x.y.z" format/,
    )
  })

  it('fails like Kong when the query command prints anything but strict JSON', async () => {
    await expect(queryPluginInfo(path.join(FIXTURES, 'noisy-loader'))).rejects.toThrow(
      /did not print strict JSON/,
    )
  })
})

describe('emulator: gateway behaviour with fixture plugins', () => {
  let echo: EchoUpstream
  let echo2: EchoUpstream
  let emu: RunningEmulator

  const config = (): string => `
_format_version: "3.0"
upstreams:
  - name: pool
    targets: [{ target: "127.0.0.1:${echo.port}" }, { target: "127.0.0.1:${echo2.port}" }]
services:
  - name: direct
    url: ${echo.url}/base
    routes:
      - name: clear
        paths: [/clear]
        plugins:
          - name: header-tool
            config: { clear: [authorization, x-remove], set_header: "{vault://env/tool-value}" }
      - name: consumer
        paths: [/consumer]
        plugins:
          - name: header-tool
            config: { consumer: alice }
      - name: keep-host
        paths: [/keep-host]
        preserve_host: true
  - name: balanced
    host: pool
    routes:
      - name: rr
        paths: [/rr]
consumers:
  - username: alice
    custom_id: alice-custom
`

  beforeAll(async () => {
    echo = await startEchoUpstream()
    echo2 = await startEchoUpstream()
    emu = await start({
      config: config(),
      pluginDirs: [path.join(FIXTURES, 'header-tool')],
      env: { TOOL_VALUE: 'from-env' },
    })
  }, 30_000)

  afterAll(async () => {
    await emu?.stop()
    await echo?.stop()
    await echo2?.stop()
  })

  it('clears headers with set_headers({name: []}) in one call and resolves vault references', async () => {
    const res = await fetch(`${emu.proxyUrl}/clear/x?y=1`, {
      headers: { Authorization: 'Bearer t', 'X-Remove': 'r', 'X-Keep': 'k' },
    })
    expect(res.status).toBe(200)
    const seen = echo.byRequestId(res.headers.get('x-kong-request-id') ?? '')
    expect(seen?.headers['authorization']).toBeUndefined()
    expect(seen?.headers['x-remove']).toBeUndefined()
    expect(seen?.headers['x-keep']).toBe('k')
    expect(seen?.headers['x-tool']).toBe('from-env')
    expect(seen?.url).toBe('/base/x?y=1')
    expect(seen?.headers['x-forwarded-prefix']).toBe('/clear')
    expect(seen?.headers['via']).toBe('1.1 kong/3.9.3')
  })

  it('loads a consumer by username and returns it from get_consumer after authenticate', async () => {
    const res = await fetch(`${emu.proxyUrl}/consumer`)
    expect(res.headers.get('x-seen-consumer')).toBe('alice')
    expect(res.headers.get('x-loaded-consumer')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('sends the service host upstream, or the client Host with preserve_host', async () => {
    const plain = await fetch(`${emu.proxyUrl}/clear`)
    expect(echo.byRequestId(plain.headers.get('x-kong-request-id') ?? '')?.headers['host']).toBe(
      `127.0.0.1:${echo.port}`,
    )
    const kept = await fetch(`${emu.proxyUrl}/keep-host`)
    expect(echo.byRequestId(kept.headers.get('x-kong-request-id') ?? '')?.headers['host']).toBe(
      new URL(emu.proxyUrl).host,
    )
  })

  it("balances round-robin over an upstream's targets", async () => {
    const before = [echo.received.length, echo2.received.length]
    for (let i = 0; i < 4; i++) await (await fetch(`${emu.proxyUrl}/rr`)).text()
    expect([
      echo.received.length - (before[0] ?? 0),
      echo2.received.length - (before[1] ?? 0),
    ]).toEqual([2, 2])
  })

  it('rejects an invalid config on POST /config with 400 and keeps serving the old one', async () => {
    const bad = config().replace('consumer: alice', 'consumer: alice, unknown_field: 1')
    const res = await fetch(`${emu.adminUrl}/config`, { method: 'POST', body: bad })
    expect(res.status).toBe(400)
    expect(((await res.json()) as { message: string }).message).toMatch(
      /unknown_field: unknown field/,
    )
    expect((await fetch(`${emu.proxyUrl}/consumer`)).headers.get('x-seen-consumer')).toBe('alice')
  })

  it('reports its plugin servers on GET /status', async () => {
    const status = (await (await fetch(`${emu.adminUrl}/status`)).json()) as {
      plugin_servers: Array<{ name: string }>
    }
    expect(status.plugin_servers.map((s) => s.name)).toEqual(['header-tool'])
  })
})
