/**
 * Echo upstream for tests and the demo (like the recordings' tools/echo-logger.js): answers every
 * request with 200 JSON `{upstream_seq, method, path, query, url, headers, body}` and keeps a log of
 * what it received, so "did the request reach the upstream?" is checked independently of the client.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface EchoRecord {
  readonly upstream_seq: number
  readonly method: string
  readonly url: string
  readonly path: string
  readonly query: string
  readonly headers: http.IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  readonly body: string
}

export interface EchoUpstream {
  readonly url: string
  readonly port: number
  readonly received: EchoRecord[]
  /** The record whose X-Kong-Request-Id equals `id`, if the request reached the upstream. */
  byRequestId(id: string): EchoRecord | undefined
  stop(): Promise<void>
}

export async function startEchoUpstream(port = 0, host = '127.0.0.1'): Promise<EchoUpstream> {
  const received: EchoRecord[] = []
  let seq = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seq += 1
      const url = req.url ?? '/'
      const q = url.indexOf('?')
      const rec: EchoRecord = {
        upstream_seq: seq,
        method: req.method ?? 'GET',
        url,
        path: q < 0 ? url : url.slice(0, q),
        query: q < 0 ? '' : url.slice(q + 1),
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
      }
      received.push(rec)
      const body = JSON.stringify({ ...rec, rawHeaders: undefined })
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        'X-Upstream-Seq': String(seq),
      })
      res.end(body)
    })
  })
  await new Promise<void>((resolve) => server.listen(port, host, resolve))
  const actual = (server.address() as AddressInfo).port
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    received,
    byRequestId: (id) => received.find((r) => r.headers['x-kong-request-id'] === id),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

if (require.main === module) {
  const port = Number(process.argv[2] ?? process.env['ECHO_PORT'] ?? 9001)
  void startEchoUpstream(port).then((e) => process.stdout.write(`echo upstream on ${e.url}\n`))
}
