import net from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { startEchoUpstream, type EchoUpstream } from '../../emulator/echo-upstream'
import { start, type RunningEmulator } from '../../emulator/emulator'
import { NGINX_UNIQUE_HEADERS } from '../../emulator/gateway'

// What Kong 3.9.3's nginx answers before any plugin runs, and the bytes of non-ASCII header
// values. Not from a recording: from nginx 1.25.3's ngx_http_request.c, Kong 3.9.3's defaults
// and patches (nginx_kong.lua, error_handlers.lua, max_headers), and the facts measured on a
// real Kong in ../shared/docs/kong-pluginserver-protocol.md §10. Requests Node's fetch cannot
// send (duplicate lines, oversize lines, raw bytes) go over a plain socket.

const FIXTURES = path.join(__dirname, 'fixtures')

interface RawResponse {
  readonly status: number
  readonly reason: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** Sends `head` (+ `body`) as bytes and reads the response until the server closes. */
function rawRequest(url: string, head: string, body = ''): Promise<RawResponse> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(Buffer.from(head + body, 'latin1'))
    })
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('close', () => {
      let text = Buffer.concat(chunks).toString('latin1')
      while (/^HTTP\/1\.1 1\d\d /.test(text)) text = text.slice(text.indexOf('\r\n\r\n') + 4)
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) {
        reject(new Error(`no response: ${JSON.stringify(text.slice(0, 200))}`))
        return
      }
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
      const m = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(statusLine)
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({
        status: Number(m?.[1]),
        reason: m?.[2] ?? '',
        headers,
        body: text.slice(end + 4),
      })
    })
  })
}

/** A request head: request line, header lines, blank line. */
const head = (requestLine: string, lines: readonly string[]): string =>
  `${requestLine}\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`

/** A header line of exactly `bytes` bytes with its CRLF. */
const lineOf = (name: string, bytes: number): string =>
  `${name}: ${'a'.repeat(bytes - name.length - 4)}`

const utf8Of = (received: string | string[] | undefined): string =>
  Buffer.from(String(received), 'latin1').toString('utf8')

describe('emulator: what nginx answers before any plugin runs (Kong 3.9.3)', () => {
  let echo: EchoUpstream
  let emu: RunningEmulator

  beforeAll(async () => {
    echo = await startEchoUpstream()
    emu = await start({
      config: `
_format_version: "3.0"
services:
  - name: echo
    url: ${echo.url}
    routes:
      - name: plain
        paths: [/plain]
      - name: exit
        paths: [/exit]
        plugins:
          - name: header-bytes
            config: { exit: true }
      - name: utf8
        paths: [/utf8]
        plugins:
          - name: header-bytes
            config: { set: true }
plugins:
  - name: header-bytes
`,
      pluginDirs: [path.join(FIXTURES, 'header-bytes')],
    })
  }, 30_000)

  afterAll(async () => {
    await emu?.stop()
    await echo?.stop()
  })

  /** The fixture's notes and nginx's info lines for one request. */
  const notesFor = async (res: RawResponse): Promise<string[]> => {
    await emu.idle()
    const id = res.headers['x-kong-request-id']
    return emu.logs.filter((e) => e.requestId === id).map((e) => `${e.plugin}: ${e.message}`)
  }

  const expectKongPage = (res: RawResponse, status: number, reason: string, message: string) => {
    expect({ status: res.status, reason: res.reason }).toEqual({ status, reason })
    const id = res.headers['x-kong-request-id'] ?? ''
    expect(id).toMatch(/^[0-9a-f]{32}$/)
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(res.body).toBe(`${message}\nrequest_id: ${id}\n`)
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.body)))
    expect(res.headers['connection']).toBe('close')
    expect(res.headers['server']).toBe('kong/3.9.3')
  }

  it('lets a plain request through its plugins: rewrite, access and log all run', async () => {
    const res = await rawRequest(
      emu.proxyUrl,
      head('GET /plain HTTP/1.1', ['Host: kong', 'Connection: close']),
    )
    expect(res.status).toBe(200)
    expect(await notesFor(res)).toEqual([
      'header-bytes: header-bytes: rewrite',
      'header-bytes: header-bytes: access',
      'header-bytes: header-bytes: log',
    ])
  })

  it('answers two Authorization lines with 400 Bad request before any plugin runs and proxies nothing', async () => {
    const before = echo.received.length
    const res = await rawRequest(
      emu.proxyUrl,
      head('GET /utf8 HTTP/1.1', [
        'Host: kong',
        'Authorization: Bearer a',
        'Authorization: Bearer b',
        'Connection: close',
      ]),
    )
    expectKongPage(res, 400, 'Bad Request', 'Bad request')
    expect(echo.received.length).toBe(before)
    // no rewrite, no access; Kong.log still runs the global plugins (Kong PR #3533)
    expect(await notesFor(res)).toEqual([
      'nginx: client sent duplicate header line',
      'header-bytes: header-bytes: log',
    ])
  })

  it.each(
    [...NGINX_UNIQUE_HEADERS]
      .filter((h) => h !== 'authorization')
      .map((h): [string, string] => [
        h,
        h === 'content-length'
          ? '0'
          : h === 'transfer-encoding'
            ? 'chunked'
            : h === 'expect'
              ? '100-continue'
              : 'x',
      ]),
  )('answers two %s lines with 400 Bad request, as for Authorization', async (name, value) => {
    const before = echo.received.length
    const lines = name === 'host' ? ['Host: kong'] : ['Host: kong', `${name}: ${value}`]
    const res = await rawRequest(
      emu.proxyUrl,
      head('POST /utf8 HTTP/1.1', [...lines, `${name}: ${value}`, 'Connection: close']),
      name === 'transfer-encoding' ? '0\r\n\r\n' : '',
    )
    expectKongPage(res, 400, 'Bad Request', 'Bad request')
    expect(echo.received.length).toBe(before)
  })

  it('lets repeated lines of headers nginx does not hold unique through (X-Dup, Accept, Cookie, Via)', async () => {
    const res = await rawRequest(
      emu.proxyUrl,
      head('GET /plain HTTP/1.1', [
        'Host: kong',
        ...['X-Dup', 'Accept', 'Cookie', 'Via'].flatMap((h) => [`${h}: a=1`, `${h}: b=2`]),
        'Connection: close',
      ]),
    )
    expect(res.status).toBe(200)
    const seen = echo.byRequestId(res.headers['x-kong-request-id'] ?? '')
    expect(seen?.rawHeaders.filter((h) => h.toLowerCase() === 'x-dup')).toHaveLength(2)
  })

  it("renders the error page for the client's first Accept line, only if nginx read it before refusing", async () => {
    const dup = ['Authorization: a', 'Authorization: b']
    const html = await rawRequest(
      emu.proxyUrl,
      head('GET /plain HTTP/1.1', ['Host: kong', 'Accept: text/html', ...dup, 'Connection: close']),
    )
    expect(html.status).toBe(400)
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(html.body).toContain('<p>Bad request.</p>')
    const json = await rawRequest(
      emu.proxyUrl,
      head('GET /plain HTTP/1.1', [
        'Host: kong',
        'Accept: text/plain;q=0.5, application/json',
        ...dup,
        'Connection: close',
      ]),
    )
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(JSON.parse(json.body)).toEqual({
      message: 'Bad request',
      request_id: json.headers['x-kong-request-id'],
    })
    // an Accept line after the duplicate was never read: error_default_type, text/plain
    const late = await rawRequest(
      emu.proxyUrl,
      head('GET /plain HTTP/1.1', ['Host: kong', ...dup, 'Accept: text/html', 'Connection: close']),
    )
    expectKongPage(late, 400, 'Bad Request', 'Bad request')
  })

  it('accepts a header line of 8192 bytes with its CRLF and refuses one of 8193 with 400 Request header or cookie too large', async () => {
    const ok = await rawRequest(
      emu.proxyUrl,
      head('GET /exit HTTP/1.1', ['Host: kong', lineOf('X-Long', 8192), 'Connection: close']),
    )
    expect(ok.status).toBe(204)
    const before = echo.received.length
    const res = await rawRequest(
      emu.proxyUrl,
      head('GET /utf8 HTTP/1.1', ['Host: kong', lineOf('X-Long', 8193), 'Connection: close']),
    )
    expectKongPage(res, 400, 'Bad Request', 'Request header or cookie too large')
    expect(echo.received.length).toBe(before)
    expect(await notesFor(res)).toEqual([
      'nginx: client sent too long header line',
      'header-bytes: header-bytes: log',
    ])
  })

  it('accepts a request line of 8192 bytes with its CRLF and answers one of 8193 with 414 URI too long', async () => {
    const requestLine = (bytes: number): string =>
      `GET /exit/${'p'.repeat(bytes - 'GET /exit/ HTTP/1.1\r\n'.length)} HTTP/1.1`
    const ok = await rawRequest(
      emu.proxyUrl,
      head(requestLine(8192), ['Host: kong', 'Connection: close']),
    )
    expect(ok.status).toBe(204)
    const res = await rawRequest(
      emu.proxyUrl,
      head(requestLine(8193), ['Host: kong', 'Accept: text/html', 'Connection: close']),
    )
    // no header was read yet: Accept is not seen
    expectKongPage(res, 414, 'Request-URI Too Large', 'URI too long')
  })

  it('refuses a head that needs a fifth 8 kB buffer, and lets a 30 kB head of short lines through (not Node’s 16 KiB)', async () => {
    // each 7000-byte line straddles the end of a buffer and is moved to a fresh one: 4 fit
    const long = (n: number): string[] =>
      Array.from({ length: n }, (_, i) => lineOf(`X-L${i}`, 7000))
    const four = await rawRequest(
      emu.proxyUrl,
      head('GET /exit HTTP/1.1', ['Host: kong', ...long(4), 'Connection: close']),
    )
    expect(four.status).toBe(204)
    const five = await rawRequest(
      emu.proxyUrl,
      head('GET /exit HTTP/1.1', ['Host: kong', ...long(5), 'Connection: close']),
    )
    expectKongPage(five, 400, 'Bad Request', 'Request header or cookie too large')
    const short = Array.from({ length: 600 }, (_, i) => lineOf(`X-S${i}`, 50))
    const res = await rawRequest(
      emu.proxyUrl,
      head('GET /exit HTTP/1.1', ['Host: kong', ...short, 'Connection: close']),
    )
    expect(res.status).toBe(204)
  })

  it('accepts 1000 header lines and refuses the 1001st with 400 Request header or cookie too large (max_headers)', async () => {
    const lines = (n: number): string[] => [
      'Host: kong',
      ...Array.from({ length: n - 2 }, (_, i) => `X-F${i}: x`),
      'Connection: close',
    ]
    expect((await rawRequest(emu.proxyUrl, head('GET /exit HTTP/1.1', lines(1000)))).status).toBe(
      204,
    )
    const res = await rawRequest(emu.proxyUrl, head('GET /utf8 HTTP/1.1', lines(1001)))
    expectKongPage(res, 400, 'Bad Request', 'Request header or cookie too large')
    expect(await notesFor(res)).toEqual([
      'nginx: client sent too many header lines',
      'header-bytes: header-bytes: log',
    ])
  })

  it('answers an HTTP/1.1 request without Host with 400, and TRACE with 405 Method not allowed', async () => {
    const noHost = await rawRequest(emu.proxyUrl, head('GET /exit HTTP/1.1', ['Connection: close']))
    expectKongPage(noHost, 400, 'Bad Request', 'Bad request')
    const trace = await rawRequest(
      emu.proxyUrl,
      head('TRACE /exit HTTP/1.1', ['Host: kong', 'Connection: close']),
    )
    expectKongPage(trace, 405, 'Not Allowed', 'Method not allowed')
  })

  it('sends 100 Continue only after the checks, and does not pass Expect upstream', async () => {
    const res = await rawRequest(
      emu.proxyUrl,
      head('POST /plain HTTP/1.1', [
        'Host: kong',
        'Expect: 100-continue',
        'Content-Length: 2',
        'Connection: close',
      ]),
      'hi',
    )
    expect(res.status).toBe(200)
    const seen = echo.byRequestId(res.headers['x-kong-request-id'] ?? '')
    expect(seen?.body).toBe('hi')
    expect(seen?.headers['expect']).toBeUndefined()
  })
})

describe('emulator: non-ASCII header bytes (Kong 3.9.3 sends a Lua string as its bytes)', () => {
  let echo: EchoUpstream
  let emu: RunningEmulator

  beforeAll(async () => {
    echo = await startEchoUpstream()
    emu = await start({
      config: `
_format_version: "3.0"
services:
  - name: echo
    url: ${echo.url}
    routes:
      - name: utf8
        paths: [/utf8]
        plugins:
          - name: header-bytes
            config: { set: true }
`,
      pluginDirs: [path.join(FIXTURES, 'header-bytes')],
    })
  }, 30_000)

  afterAll(async () => {
    await emu?.stop()
    await echo?.stop()
  })

  it('sends the €, Ж, 😀 and é a plugin sets with set_headers to the upstream as their UTF-8 bytes', async () => {
    const res = await fetch(`${emu.proxyUrl}/utf8`)
    expect(res.status).toBe(200)
    const seen = echo.byRequestId(res.headers.get('x-kong-request-id') ?? '')
    const expected: Record<string, string> = {
      'x-euro': '€',
      'x-cyrillic': 'Ж',
      'x-emoji': '😀',
      'x-latin1': 'é',
      'x-mixed': 'Jörg € Ж 😀',
    }
    for (const [name, text] of Object.entries(expected)) {
      // the echo upstream (Node) reads header bytes one char per byte
      expect(Buffer.from(String(seen?.headers[name]), 'latin1')).toEqual(Buffer.from(text, 'utf8'))
      expect(utf8Of(seen?.headers[name])).toBe(text)
    }
  })

  it("sends a plugin's non-ASCII response header to the client as UTF-8", async () => {
    const res = await fetch(`${emu.proxyUrl}/utf8`)
    expect(utf8Of(res.headers.get('x-resp-euro') ?? '')).toBe('€')
  })

  it("hands a plugin a client's UTF-8 header as text, and its copy reaches the upstream byte for byte", async () => {
    const bytes = Buffer.from('Jörg €', 'utf8').toString('latin1')
    const res = await fetch(`${emu.proxyUrl}/utf8`, { headers: { 'X-In': bytes } })
    expect(res.headers.get('x-seen-in')).toBe(encodeURIComponent('Jörg €'))
    const seen = echo.byRequestId(res.headers.get('x-kong-request-id') ?? '')
    expect(seen?.headers['x-copied']).toBe(bytes)
    expect(seen?.headers['x-in']).toBe(bytes)
  })

  it("passes a client's Latin-1 byte on unchanged", async () => {
    const res = await rawRequest(
      emu.proxyUrl,
      head('GET /utf8 HTTP/1.1', ['Host: kong', 'X-Raw: caf\xe9', 'Connection: close']),
    )
    expect(res.status).toBe(200)
    const seen = echo.byRequestId(res.headers['x-kong-request-id'] ?? '')
    expect(Buffer.from(String(seen?.headers['x-raw']), 'latin1')).toEqual(
      Buffer.from([0x63, 0x61, 0x66, 0xe9]),
    )
  })
})
