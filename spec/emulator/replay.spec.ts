/**
 * Replays the recorded Kong 3.9.3 conversations (../shared/kong-transcripts 02–14, 18) through the
 * emulator against the same probe plugins and the same kong.yml, and checks that the emulator
 * produces the same exchange: the same StartInstance/CloseInstance (Config JSON compared
 * semantically), the same events (phase, plugin configuration), the same PDK calls answered with the
 * same Step variant and Data, in the same order, and the same client status.
 *
 * Scenarios 02–14 were recorded in one Kong run, so they are replayed in order on one emulator
 * (instances started by one scenario are reused by the next, as in the recording).
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
  type Unit,
  type WireMessage,
} from './helpers/recordings'

interface Replayer {
  emu: RunningEmulator
  echo: EchoUpstream
  n: Normalizer
  recordedMaps: Map<string, Map<number, string>>
  emulatedMaps: Map<string, Map<number, string>>
}

async function startReplayer(): Promise<Replayer> {
  const echo = await startEchoUpstream()
  const emu = await start({
    config: probeConfig(echo.url, 'kong-probe.yml'),
    pluginDirs: PROBES,
    recordWire: true,
  })
  const ports = new Map<number, number>([
    [Number(new URL(emu.proxyUrl).port), 8000],
    [Number(new URL(emu.adminUrl).port), 8001],
    [echo.port, 9001],
  ])
  return { emu, echo, n: { ports }, recordedMaps: new Map(), emulatedMaps: new Map() }
}

/** Sends one recorded request (or pushes a config) and waits for its log phase. */
async function send(r: Replayer, label: string, cmd: string): Promise<number> {
  if (label.startsWith('post-config-')) {
    const file = label === 'post-config-v2' ? 'kong-probe-v2.yml' : 'kong-probe.yml'
    const res = await fetch(`${r.emu.adminUrl}/config`, {
      method: 'POST',
      body: probeConfig(r.echo.url, file),
    })
    return res.status
  }
  const res = await rawRequest(Number(new URL(r.emu.proxyUrl).port), parseCurl(cmd))
  await r.emu.idle()
  return res.status
}

function emulatedSince(r: Replayer, from: number): WireMessage[] {
  return r.emu.wire.slice(from).map((w) => ({ server: w.server, dir: w.dir, msg: w.msg }))
}

/** The access events Kong has sent to the probe-slow server since wire index `from`. */
function slowAccessEvents(r: Replayer, from: number): number {
  return r.emu.wire.slice(from).filter((w) => {
    const msg = w.msg as unknown[]
    const event = (msg[3] as { EventName?: string }[] | undefined)?.[0]
    return (
      w.server === 'probe-slow' &&
      w.dir === 'kong->server' &&
      msg[2] === 'plugin.HandleEvent' &&
      event?.EventName === 'access'
    )
  }).length
}

function sortUnits(units: Unit[]): string[] {
  return units.map((u) => JSON.stringify(u)).sort()
}

;(NO_TRANSCRIPTS !== undefined ? describe.skip : describe)(
  `emulator: replay of the recorded Kong 3.9.3 conversations 02–14${NO_TRANSCRIPTS ? ` (${NO_TRANSCRIPTS})` : ''}`,
  () => {
    let r: Replayer

    beforeAll(async () => {
      r = await startReplayer()
    }, 30_000)

    afterAll(async () => {
      await r?.emu.stop()
      await r?.echo.stop()
    })

    const SEQUENTIAL = [
      '02-scope-global',
      '03-scope-service',
      '04-pdk-probe-all',
      '05-instance-reuse',
      '06-scope-consumer',
      '07-exit',
      '08-throw',
      '09-throw-constructor',
      '10-pdk-lua-errors',
    ]

    for (const scenario of SEQUENTIAL) {
      it(`reproduces ${scenario}: same instances, events, PDK answers and client statuses`, async () => {
        const from = r.emu.wire.length
        for (const req of recordedRequests(scenario)) {
          const status = await send(r, req.label, req.cmd)
          labelled(status, req.label).toBe(Number(req.status_line.split(' ')[1]))
        }
        const recorded = toUnits(readRecording(`${scenario}.jsonl`), r.n, r.recordedMaps)
        const emulated = toUnits(emulatedSince(r, from), r.n, r.emulatedMaps)
        expect(recorded.length).toBeGreaterThan(0)
        expect(emulated).toEqual(recorded)
      })
    }

    it('reproduces 11-slow-2s: a 2 s handler delays only its own request; concurrent events interleave', async () => {
      const from = r.emu.wire.length
      const reqs = recordedRequests('11-slow-2s')
      const [alone, concB, concA, fast] = reqs
      if (!alone || !concB || !concA || !fast) throw new Error('11-slow-2s has 4 requests')
      expect(await send(r, alone.label, alone.cmd)).toBe(200)
      const t0 = Date.now()
      const started = r.emu.wire.length
      let slowDone = false
      const slow = Promise.all([
        send(r, concB.label, concB.cmd),
        send(r, concA.label, concA.cmd),
      ]).finally(() => (slowDone = true))
      // Both slow requests are in their 2 s access phase before the fast one is sent.
      await until('both slow access events sent', 5000, () => slowAccessEvents(r, started) >= 2)
      const tFast = Date.now()
      expect(await send(r, fast.label, fast.cmd)).toBe(200)
      expect(Date.now() - tFast).toBeLessThan(1500)
      expect(slowDone).toBe(false) // the fast request was answered while they were in flight
      expect(await slow).toEqual([200, 200])
      expect(Date.now() - t0).toBeLessThan(3900)
      await r.emu.idle()
      const recorded = toUnits(readRecording('11-slow-2s.jsonl'), r.n, r.recordedMaps)
      const emulated = toUnits(emulatedSince(r, from), r.n, r.emulatedMaps)
      expect(sortUnits(emulated)).toEqual(sortUnits(recorded))
    })

    it('reproduces 13-instance-idle-65s without the wait: the instance is started once and reused', async () => {
      const from = r.emu.wire.length
      for (const req of recordedRequests('13-instance-idle-65s'))
        expect(await send(r, req.label, req.cmd)).toBe(200)
      const recorded = toUnits(readRecording('13-instance-idle-65s.jsonl'), r.n, r.recordedMaps)
      const emulated = toUnits(emulatedSince(r, from), r.n, r.emulatedMaps)
      expect(recorded.length).toBeGreaterThan(0)
      expect(emulated).toEqual(recorded)
    })

    it('reproduces 14-config-change: POST /config restarts every config used again (StartInstance new, CloseInstance old)', async () => {
      const from = r.emu.wire.length
      for (const req of recordedRequests('14-config-change')) {
        labelled(await send(r, req.label, req.cmd), req.label).toBe(
          Number(req.status_line.split(' ')[1]),
        )
      }
      const recorded = toUnits(readRecording('14-config-change.jsonl'), r.n, r.recordedMaps)
      const emulated = toUnits(emulatedSince(r, from), r.n, r.emulatedMaps)
      expect(recorded.filter((u) => u.kind === 'close').length).toBe(5)
      expect(emulated).toEqual(recorded)
    })
  },
)
