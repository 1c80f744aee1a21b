/**
 * Fault behaviour of Kong 3.9.3 that the recordings show but that cannot be replayed message for
 * message (timings, kill -9): shortened equivalents with the same probe plugins.
 *   12-slow-65s      → read timeout shortened to 300 ms (Kong: 60 s): request proxied, fail-open
 *   15-server-kill-9 / 16-server-kill-term / 17-plugin-crash → server killed, cached instance:
 *                      fail-open; uncached: 500; after respawn "no plugin instance" → restart + retry
 *   18-throw-recheck → replayed on a fresh emulator (fresh Kong in the recording)
 *   19-kong-stop     → no RPC at stop, SIGTERM to every server
 * Plus the client side of 07-exit (status, Content-Type, body) against raw/requests-summary.json.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { labelled } from '../helpers/labelled'
import { until } from '../helpers/poll'
import { startEchoUpstream, type EchoUpstream } from '../../emulator/echo-upstream'
import { start, type RunningEmulator } from '../../emulator/emulator'
import {
  PROBES,
  probeConfig,
  NO_TRANSCRIPTS,
  parseCurl,
  rawRequest,
  readRecording,
  recordedRequests,
  toUnits,
  type Normalizer,
} from './helpers/recordings'

async function get(
  emu: RunningEmulator,
  p: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${emu.proxyUrl}${p}`)
  const text = await res.text()
  await emu.idle()
  return { status: res.status, headers: res.headers, text }
}

;(NO_TRANSCRIPTS !== undefined ? describe.skip : describe)(
  `emulator: fault behaviour (shortened equivalents of recordings 12, 15–19)${NO_TRANSCRIPTS ? ` (${NO_TRANSCRIPTS})` : ''}`,
  () => {
    let echo: EchoUpstream
    let emu: RunningEmulator

    beforeAll(async () => {
      echo = await startEchoUpstream()
      emu = await start({
        config: probeConfig(echo.url),
        pluginDirs: PROBES,
        rpcReadTimeoutMs: 300,
        recordWire: true,
      })
    }, 30_000)

    afterAll(async () => {
      await emu?.stop()
      await echo?.stop()
    })

    it("proxies the request without the handler's later effects when a handler outlives the read timeout (12-slow-65s)", async () => {
      const t0 = Date.now()
      const res = await get(emu, '/slow-65')
      expect(res.status).toBe(200)
      expect(Date.now() - t0).toBeLessThan(5000)
      const seen = echo.byRequestId(res.headers.get('x-kong-request-id') ?? '')
      expect(seen).toBeDefined()
      expect(seen?.headers['x-after-delay']).toBeUndefined()
      expect(emu.logs.some((l) => l.plugin === 'probe-slow' && l.message === 'no data')).toBe(true)
    })

    it('skips a plugin whose server is down when Kong holds its instance (fail-open), 500 when it must start one (15/16)', async () => {
      expect((await get(emu, '/slow-0')).status).toBe(200) // warm: instance cached
      const server = emu.servers.get('probe-slow')
      if (!server) throw new Error('probe-slow server missing')
      const oldPid = server.pid
      server.kill('SIGKILL')
      await until('probe-slow killed', 5000, () =>
        emu.logs.some((l) => /'probe-slow' terminated: signal SIGKILL/.test(l.message)),
      )
      const cached = await get(emu, '/slow-0')
      expect(cached.status).toBe(200)
      expect(
        echo.byRequestId(cached.headers.get('x-kong-request-id') ?? '')?.headers['x-after-delay'],
      ).toBeUndefined()
      const cold = await get(emu, '/slow-cold')
      expect(cold.status).toBe(500)
      expect((JSON.parse(cold.text) as { message: string }).message).toBe(
        'An unexpected error occurred',
      )
      // Kong respawns the server; the next request meets "no plugin instance", restarts and retries
      await until('probe-slow respawned', 10_000, () => (server.pid ?? oldPid) !== oldPid)
      await server.waitReady()
      expect(server.pid).not.toBe(oldPid)
      const from = emu.wire.length
      const after = await get(emu, '/slow-0')
      expect(after.status).toBe(200)
      expect(
        echo.byRequestId(after.headers.get('x-kong-request-id') ?? '')?.headers['x-after-delay'],
      ).toBeDefined()
      const slowMsgs = emu.wire.slice(from).filter((w) => w.server === 'probe-slow')
      const methods = slowMsgs
        .filter((w) => w.dir === 'kong->server')
        .map((w) => (w.msg as unknown[])[2])
      expect(methods.slice(0, 3)).toEqual([
        'plugin.HandleEvent',
        'plugin.StartInstance',
        'plugin.HandleEvent',
      ])
      const firstReply = slowMsgs.find((w) => w.dir === 'server->kong')?.msg as unknown[]
      expect(String(firstReply[2])).toMatch(/^no plugin instance #\d+$/)
      expect(emu.logs.some((l) => l.level === 'warn' && /no plugin instance/.test(l.message))).toBe(
        true,
      )
    })

    it('keeps the msgid counter of a plugin server across its respawn (F4)', () => {
      const ids = emu.wire
        .filter((w) => w.server === 'probe-slow' && w.dir === 'kong->server')
        .map((w) => (w.msg as unknown[])[1] as number)
      expect(ids.length).toBeGreaterThan(3)
      for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1] ?? 0)
    })

    it('answers the 07-exit requests with the recorded status, Content-Type and body', async () => {
      for (const req of recordedRequests('07-exit')) {
        const res = await rawRequest(Number(new URL(emu.proxyUrl).port), parseCurl(req.cmd))
        await emu.idle()
        labelled(res.status, req.label).toBe(Number(req.status_line.split(' ')[1]))
        const recordedCt = req.headers.find(([k]) => k.toLowerCase() === 'content-type')?.[1]
        labelled(res.header('content-type'), req.label).toBe(recordedCt)
        const rid = res.header('x-kong-request-id') ?? ''
        const recordedRid = req.headers.find(([k]) => k === 'X-Kong-Request-Id')?.[1] ?? ''
        labelled(res.body.toString('utf8'), req.label).toBe(req.body.split(recordedRid).join(rid))
        labelled(res.header('www-authenticate'), req.label).toBe(
          req.headers.find(([k]) => k === 'WWW-Authenticate')?.[1],
        )
      }
    })

    it('sends no RPC at stop and terminates every plugin server (19-kong-stop)', async () => {
      const echo2 = await startEchoUpstream()
      const emu2 = await start({
        config: probeConfig(echo2.url),
        pluginDirs: PROBES,
        recordWire: true,
      })
      const pids = [...emu2.servers.values()].map((s) => s.pid)
      const before = emu2.wire.length
      await emu2.stop()
      await echo2.stop()
      expect(emu2.wire.length).toBe(before)
      for (const pid of pids) {
        expect(() => process.kill(pid ?? -1, 0)).toThrow()
      }
    }, 30_000)
  },
)

;(NO_TRANSCRIPTS !== undefined ? describe.skip : describe)(
  `emulator: replay of 18-throw-recheck on a fresh emulator (fresh Kong in the recording)${NO_TRANSCRIPTS ? ` (${NO_TRANSCRIPTS})` : ''}`,
  () => {
    it('reproduces the exchange and lets every throwing request through (fail-open)', async () => {
      const echo = await startEchoUpstream()
      const emu = await start({
        config: probeConfig(echo.url),
        pluginDirs: PROBES,
        recordWire: true,
      })
      try {
        const n: Normalizer = {
          ports: new Map([
            [Number(new URL(emu.proxyUrl).port), 8000],
            [echo.port, 9001],
          ]),
        }
        for (const req of recordedRequests('18-throw-recheck')) {
          const res = await rawRequest(Number(new URL(emu.proxyUrl).port), parseCurl(req.cmd))
          await emu.idle()
          labelled(res.status, req.label).toBe(200)
          const up = echo.byRequestId(res.header('x-kong-request-id') ?? '')
          labelled(up?.headers['x-set-before-throw'], req.label).toBe(
            req.upstream?.headers['x-set-before-throw'],
          )
          labelled(up?.body, req.label).toBe(req.upstream?.body)
        }
        const recorded = toUnits(readRecording('18-throw-recheck.jsonl'), n, new Map())
        const emulated = toUnits(
          emu.wire.map((w) => ({ server: w.server, dir: w.dir, msg: w.msg })),
          n,
          new Map(),
        )
        expect(recorded.length).toBeGreaterThan(0)
        expect(emulated).toEqual(recorded)
      } finally {
        await emu.stop()
        await echo.stop()
      }
    }, 30_000)
  },
)
