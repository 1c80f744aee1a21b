/**
 * Reading the Kong 3.9.3 recordings (../shared/kong-transcripts) and reducing a MessagePack
 * conversation — recorded or produced by the emulator — to comparable "exchange units":
 * StartInstance (plugin id + Config JSON without __seq__), CloseInstance (plugin id) and events
 * (phase, plugin id, every PDK call with its Args and the Step variant + Data Kong answered).
 * Ids, msgids, timings, ports and map key order are ignored (FINDINGS F5).
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

/** The recordings sit beside the repository (../shared); KONG_TRANSCRIPTS overrides. */
export const TRANSCRIPTS =
  process.env['KONG_TRANSCRIPTS'] ??
  path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'kong-transcripts')
/** Suites that need the recordings are skipped, with this reason in their title, when absent. */
export const NO_TRANSCRIPTS = fs.existsSync(path.join(TRANSCRIPTS, 'FINDINGS.md'))
  ? undefined
  : `skipped: recordings not found at ${TRANSCRIPTS} (set KONG_TRANSCRIPTS)`
export const PROBE_PLUGINS = path.join(TRANSCRIPTS, 'tools', 'plugins')

/** The four probe plugins of the recordings, one plugin-server directory each. */
export const PROBES = ['pdk-probe', 'probe-exit', 'probe-throw', 'probe-slow'].map((p) =>
  path.join(PROBE_PLUGINS, p),
)

/** A recorded kong.yml (tools/<file>) with its upstream pointed at `upstreamUrl`. */
export function probeConfig(upstreamUrl: string, file = 'kong-probe.yml'): string {
  return fs
    .readFileSync(path.join(TRANSCRIPTS, 'tools', file), 'utf8')
    .split('http://127.0.0.1:9001')
    .join(upstreamUrl)
}

export interface WireMessage {
  readonly server: string
  readonly dir: 'kong->server' | 'server->kong'
  readonly msg: unknown
}

export function readRecording(file: string): WireMessage[] {
  const out: WireMessage[] = []
  for (const line of fs.readFileSync(path.join(TRANSCRIPTS, file), 'utf8').split('\n')) {
    if (line.trim() === '') continue
    const rec = JSON.parse(line) as { dir: string; server: string; msg?: unknown }
    if (rec.dir === 'kong->server' || rec.dir === 'server->kong')
      out.push({ server: rec.server, dir: rec.dir, msg: rec.msg })
  }
  return out
}

export interface RecordedRequest {
  readonly label: string
  readonly cmd: string
  readonly status_line: string
  readonly headers: ReadonlyArray<[string, string]>
  readonly body: string
  readonly reached_upstream: boolean
  readonly upstream?: {
    readonly url: string
    readonly method: string
    readonly headers: Record<string, string>
    readonly body: string
  }
}

export function recordedRequests(scenario: string): RecordedRequest[] {
  const all = JSON.parse(
    fs.readFileSync(path.join(TRANSCRIPTS, 'raw', 'requests-summary.json'), 'utf8'),
  ) as Array<{
    scenario: string
    requests: RecordedRequest[]
  }>
  const s = all.find((x) => x.scenario === scenario)
  if (!s) throw new Error(`no scenario ${scenario}`)
  return s.requests
}

/** Splits a recorded curl command line (backslash escapes, quotes) into words. */
export function shellWords(cmd: string): string[] {
  const words: string[] = []
  let cur = ''
  let has = false
  let quote: '"' | "'" | undefined
  for (let i = 0; i < cmd.length; i++) {
    const ch = cmd[i] ?? ''
    if (quote) {
      if (ch === quote) quote = undefined
      else if (ch === '\\' && quote === '"' && i + 1 < cmd.length) cur += cmd[++i] ?? ''
      else cur += ch
    } else if (ch === '\\' && i + 1 < cmd.length) {
      cur += cmd[++i] ?? ''
      has = true
    } else if (ch === '"' || ch === "'") {
      quote = ch
      has = true
    } else if (ch === ' ') {
      if (has || cur !== '') words.push(cur)
      cur = ''
      has = false
    } else {
      cur += ch
      has = true
    }
  }
  if (has || cur !== '') words.push(cur)
  return words
}

export interface CurlRequest {
  readonly method: string
  readonly pathAndQuery: string
  readonly headers: ReadonlyArray<[string, string]>
  readonly body?: Buffer
}

/** Files the recording's curl commands read (not in the transcripts dir): same bytes / same size. */
const DATA_FILES: Readonly<Record<string, Buffer>> = {
  '/opt/kong-rec/bin-body.dat': Buffer.from('AAFiaW5hcnn//oBib2R5', 'base64'),
  '/opt/kong-rec/big-body.dat': Buffer.alloc(20000, 'x'),
}

export function parseCurl(cmd: string): CurlRequest {
  const w = shellWords(cmd)
  let method: string | undefined
  const custom: Array<[string, string]> = []
  let body: Buffer | undefined
  let url = ''
  for (let i = 1; i < w.length; i++) {
    const a = w[i] ?? ''
    if (a === '-H') {
      const h = w[++i] ?? ''
      const c = h.indexOf(':')
      custom.push([h.slice(0, c), h.slice(c + 1).trim()])
    } else if (a === '-X') method = w[++i]
    else if (a === '--data' || a === '--data-binary') {
      const d = w[++i] ?? ''
      body = d.startsWith('@') ? DATA_FILES[d.slice(1)] : Buffer.from(d)
      if (!body) throw new Error(`unknown data file ${d}`)
    } else if (a === '--max-time') i++
    else if (a.startsWith('http://')) url = a
  }
  const u = new URL(url)
  // curl's header order: Host, User-Agent, Accept, the -H headers, then Content-Length/-Type
  const headers: Array<[string, string]> = [
    ['Host', u.host],
    ['User-Agent', 'curl/7.88.1'],
    ['Accept', '*/*'],
  ]
  const customNames = new Set(custom.map(([k]) => k.toLowerCase()))
  for (const [k, v] of custom) {
    const i = headers.findIndex(
      ([n]) =>
        n.toLowerCase() === k.toLowerCase() &&
        ['host', 'user-agent', 'accept'].includes(n.toLowerCase()),
    )
    if (i >= 0) headers[i] = [k, v]
    else headers.push([k, v])
  }
  if (body) {
    headers.push(['Content-Length', String(body.length)])
    if (!customNames.has('content-type'))
      headers.push(['Content-Type', 'application/x-www-form-urlencoded'])
  }
  return {
    method: method ?? (body ? 'POST' : 'GET'),
    pathAndQuery: u.pathname + u.search,
    headers,
    ...(body ? { body } : {}),
  }
}

export interface RawResponse {
  readonly status: number
  readonly headers: ReadonlyArray<[string, string]>
  readonly body: Buffer
  header(name: string): string | undefined
}

/** Sends exactly the given request lines (Node's client would add a Connection header). */
export function rawRequest(port: number, req: CurlRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(port, '127.0.0.1')
    const head =
      `${req.method} ${req.pathAndQuery} HTTP/1.1\r\n` +
      req.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      '\r\n'
    sock.write(head)
    if (req.body) sock.write(req.body)
    let buf = Buffer.alloc(0)
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
      const status = Number((lines[0] ?? '').split(' ')[1])
      const headers = lines.slice(1).map((l): [string, string] => {
        const c2 = l.indexOf(':')
        return [l.slice(0, c2), l.slice(c2 + 1).trim()]
      })
      const len = Number(headers.find(([k]) => k.toLowerCase() === 'content-length')?.[1] ?? 0)
      if (buf.length - end - 4 < len) return
      sock.destroy()
      resolve({
        status,
        headers,
        body: buf.subarray(end + 4, end + 4 + len),
        header: (n) => headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1],
      })
    })
    sock.on('error', reject)
  })
}

// ---------------------------------------------------------------------------------------------
// exchange units

export interface Normalizer {
  /** Emulator ports → recorded ports (proxy 8000, upstream 9001). */
  readonly ports: ReadonlyMap<number, number>
}

export type Unit =
  | { kind: 'start'; server: string; name: string; config: unknown; error?: string }
  | { kind: 'close'; server: string; plugin: string }
  | {
      kind: 'event'
      server: string
      phase: string
      plugin: string
      calls: unknown[]
      ended: boolean
      error?: string
    }

/** Data that depends on time, process, host or upstream sequence: compared by type only. */
const VOLATILE_RESULTS = new Set([
  'kong.request.get_start_time',
  'kong.nginx.req_start_time',
  'kong.client.get_port',
  'kong.client.get_forwarded_port',
  'kong.node.get_id',
  'kong.node.get_hostname',
  'kong.node.get_memory_stats',
  'kong.log.serialize',
  'kong.service.response.get_raw_body',
])
const VOLATILE_HEADERS = new Set([
  'date',
  'x-kong-proxy-latency',
  'x-kong-upstream-latency',
  'x-kong-request-id',
  'content-length',
  'connection',
  'x-upstream-seq',
  'x-kong-response-latency',
])

function typeTag(v: unknown): string {
  if (v === undefined) return '<absent>'
  if (v instanceof Uint8Array || (typeof v === 'object' && v !== null && '$bin' in v))
    return '<bin>'
  return `<${Array.isArray(v) ? 'array' : typeof v}>`
}

export function normalizeValue(
  v: unknown,
  n: Normalizer,
  opts: { digits?: boolean } = {},
): unknown {
  if (v === undefined) return '<absent>'
  if (v instanceof Uint8Array) return { $bin: Buffer.from(v).toString('base64') }
  if (typeof v === 'number') return n.ports.get(v) ?? v
  if (typeof v === 'string') {
    let s = v
    for (const [from, to] of n.ports) s = s.split(`:${from}`).join(`:${to}`)
    return opts.digits ? s.replace(/\d+/g, 'N') : s
  }
  if (Array.isArray(v)) return v.map((x) => normalizeValue(x, n, opts))
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k]
      out[k] = k === 'created_at' || k === 'updated_at' ? '<ts>' : normalizeValue(x, n, opts)
    }
    return out
  }
  return v
}

function normalizeResult(
  method: string,
  args: unknown,
  data: unknown,
  n: Normalizer,
  digits: boolean,
): unknown {
  if (VOLATILE_RESULTS.has(method)) return typeTag(data)
  const first = Array.isArray(args) ? args[0] : undefined
  if (
    (method === 'kong.response.get_header' || method === 'kong.service.response.get_header') &&
    first === 'x-upstream-seq'
  ) {
    return typeTag(data)
  }
  if (method === 'kong.response.get_headers' && data !== null && typeof data === 'object') {
    const kept = Object.fromEntries(Object.entries(data).filter(([k]) => !VOLATILE_HEADERS.has(k)))
    return normalizeValue(kept, n)
  }
  return normalizeValue(data, n, { digits })
}

/** Reduces a conversation to units, in the order their first message appears. */
export function toUnits(
  messages: readonly WireMessage[],
  n: Normalizer,
  instanceMaps: Map<string, Map<number, string>>,
): Unit[] {
  const units: Unit[] = []
  const pending = new Map<string, { method: string; param: Record<string, unknown>; unit?: Unit }>()
  const events = new Map<string, Extract<Unit, { kind: 'event' }>>()
  const mapFor = (server: string): Map<number, string> => {
    let m = instanceMaps.get(server)
    if (!m) instanceMaps.set(server, (m = new Map<number, string>()))
    return m
  }
  const lastCall = new Map<Extract<Unit, { kind: 'event' }>, { method: string; args: unknown }>()
  for (const { server, dir, msg } of messages) {
    const arr = msg as unknown[]
    const digits = server === 'probe-slow'
    if (dir === 'kong->server') {
      const method = String(arr[2])
      const param = (arr[3] as unknown[])[0]
      const key = `${server}#${String(arr[1])}`
      if (method === 'plugin.StartInstance') {
        const p = param as { Name: string; Config: string }
        const config = JSON.parse(p.Config) as Record<string, unknown>
        if (typeof config['__seq__'] !== 'number') throw new Error('__seq__ missing')
        delete config['__seq__']
        const unit: Unit = {
          kind: 'start',
          server,
          name: p.Name,
          config: normalizeValue(config, n),
        }
        units.push(unit)
        pending.set(key, { method, param: config, unit })
      } else if (method === 'plugin.CloseInstance') {
        units.push({
          kind: 'close',
          server,
          plugin: mapFor(server).get(param as number) ?? `?${String(param)}`,
        })
        pending.set(key, { method, param: {} })
      } else if (method === 'plugin.HandleEvent') {
        const p = param as { InstanceId: number; EventName: string }
        const unit: Unit = {
          kind: 'event',
          server,
          phase: p.EventName,
          plugin: mapFor(server).get(p.InstanceId) ?? `?${p.InstanceId}`,
          calls: [],
          ended: false,
        }
        units.push(unit)
        pending.set(key, { method, param: p, unit })
      } else {
        const p = param as { EventId: number; Data?: unknown }
        const unit = events.get(`${server}#${p.EventId}`)
        if (!unit) throw new Error(`Step for unknown event ${p.EventId}`)
        const call = lastCall.get(unit)
        unit.calls.push({
          answer: method,
          data: normalizeResult(
            call?.method ?? '',
            call?.args,
            'Data' in p ? p.Data : undefined,
            n,
            digits,
          ),
        })
        pending.set(key, { method, param: p, unit })
      }
    } else {
      const key = `${server}#${String(arr[1])}`
      const req = pending.get(key)
      pending.delete(key)
      if (!req) continue
      const err = arr[2]
      const result = arr[3] as Record<string, unknown> | null
      if (req.method === 'plugin.StartInstance' && req.unit?.kind === 'start') {
        if (typeof err === 'string') req.unit.error = err
        else if (result)
          mapFor(server).set(result['Id'] as number, String(req.param['__plugin_id']))
        continue
      }
      if (req.unit?.kind !== 'event') continue
      const unit = req.unit
      if (typeof err === 'string') {
        unit.error = err
        continue
      }
      if (!result) continue
      events.set(`${server}#${String(result['EventId'])}`, unit)
      const data = result['Data']
      if (data === 'ret') unit.ended = true
      else {
        const d = data as { Method: string; Args: unknown }
        lastCall.set(unit, { method: d.Method, args: d.Args })
        unit.calls.push({ call: d.Method, args: normalizeValue(d.Args, n, { digits }) })
      }
    }
  }
  return units
}
