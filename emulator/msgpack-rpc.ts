/**
 * Kong's side of the "MsgPack:1" RPC to one plugin server (doc §2.1, FINDINGS F3/F4).
 *
 * - Requests are `[0, msgid, method, [param]]`; replies `[1, msgid, error, result]`.
 * - One msgid counter per plugin server, starting at 1, shared by all connections, never reset
 *   (not even when the server is respawned) and consumed even when the call fails before a reply.
 * - One request in flight per connection; idle connections are pooled and reused; a new connection
 *   is opened only when all pooled ones are busy.
 * - No protocol timeout below nginx's 60 s socket read timeout (F21); configurable for tests.
 */
import net from 'node:net'
import { Decoder, Encoder } from '@msgpack/msgpack'

export type WireDirection = 'kong->server' | 'server->kong'

export interface WireRecord {
  readonly server: string
  readonly dir: WireDirection
  readonly conn: number
  readonly msg: unknown
  readonly t: number
}

/** The call failed at the transport level (connect refused, connection closed, timeout). */
export class RpcTransportError extends Error {
  override readonly name = 'RpcTransportError'
}

/** The plugin server answered with an error string. */
export class RpcRemoteError extends Error {
  override readonly name = 'RpcRemoteError'
}

/** Kong could not encode the request (e.g. a nil raw body packed as bin): Lua error, connection dropped. */
export class RpcEncodeError extends Error {
  override readonly name = 'RpcEncodeError'
}

export interface RpcClientOptions {
  readonly serverName: string
  readonly socketPath: string
  /** nginx's lua_socket_read_timeout: 60 s in Kong. */
  readonly readTimeoutMs?: number
  /** Kong closes idle pooled connections after about 60 s (F3). */
  readonly idleTimeoutMs?: number
  readonly onWire?: (rec: WireRecord) => void
}

interface PooledConnection {
  readonly socket: net.Socket
  readonly n: number
  idleTimer?: NodeJS.Timeout
  onIdleData?: () => void
}

// Kong never sends an explicit nil for an absent Data key: drop undefined map values.
const encoder = new Encoder({ ignoreUndefined: true })

function tryDecode(buf: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: new Decoder().decode(buf) }
  } catch (e) {
    if (e instanceof RangeError && /Insufficient data/.test(e.message)) return { ok: false }
    throw e
  }
}

export class RpcClient {
  private msgId = 0
  private connCounter = 0
  private readonly idle: PooledConnection[] = []
  private readonly busy = new Set<PooledConnection>()
  private closed = false

  constructor(private readonly opts: RpcClientOptions) {}

  get lastMsgId(): number {
    return this.msgId
  }

  /**
   * Performs one call. `param` is the single positional parameter; `encodeFailure` simulates
   * Kong failing to pack the request after it connected (msgid consumed, connection dropped).
   */
  async call(method: string, param: unknown, encodeFailure?: string): Promise<unknown> {
    if (this.closed) throw new RpcTransportError('closed')
    this.msgId += 1
    const msgid = this.msgId
    const conn = await this.acquire()
    if (encodeFailure !== undefined) {
      this.discard(conn)
      throw new RpcEncodeError(encodeFailure)
    }
    const request = [0, msgid, method, [param]]
    this.opts.onWire?.({
      server: this.opts.serverName,
      dir: 'kong->server',
      conn: conn.n,
      msg: request,
      t: Date.now(),
    })
    let reply: unknown
    try {
      reply = await this.exchange(conn, encoder.encode(request))
    } catch (e) {
      this.discard(conn)
      throw e
    }
    this.opts.onWire?.({
      server: this.opts.serverName,
      dir: 'server->kong',
      conn: conn.n,
      msg: reply,
      t: Date.now(),
    })
    if (!Array.isArray(reply) || reply[0] !== 1 || reply[1] !== msgid) {
      this.discard(conn)
      throw new RpcTransportError(`unexpected RPC response ID from plugin server`)
    }
    this.release(conn)
    const err: unknown = reply[2]
    if (err !== null && err !== undefined)
      throw new RpcRemoteError(typeof err === 'string' ? err : JSON.stringify(err))
    return reply[3]
  }

  /** Closes every pooled connection; later calls fail. */
  close(): void {
    this.closed = true
    for (const c of [...this.idle, ...this.busy]) this.discard(c)
  }

  /** Drops idle connections (Kong's pool does this when it notices a dead peer). */
  dropIdle(): void {
    for (const c of [...this.idle]) this.discard(c)
  }

  private acquire(): Promise<PooledConnection> {
    while (this.idle.length > 0) {
      const c = this.idle.pop()
      if (c && !c.socket.destroyed) {
        if (c.idleTimer) clearTimeout(c.idleTimer)
        if (c.onIdleData) c.socket.off('data', c.onIdleData)
        this.busy.add(c)
        return Promise.resolve(c)
      }
    }
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(this.opts.socketPath)
      const onError = (e: NodeJS.ErrnoException): void => {
        socket.destroy()
        reject(
          new RpcTransportError(
            e.code === 'ECONNREFUSED'
              ? 'connection refused'
              : e.code === 'ENOENT'
                ? 'no such file or directory'
                : e.message,
          ),
        )
      }
      socket.once('error', onError)
      socket.once('connect', () => {
        socket.off('error', onError)
        // errors after connect surface through exchange(); never crash the emulator
        socket.on('error', () => socket.destroy())
        this.connCounter += 1
        const c: PooledConnection = { socket, n: this.connCounter }
        this.busy.add(c)
        resolve(c)
      })
    })
  }

  private exchange(conn: PooledConnection, bytes: Uint8Array): Promise<unknown> {
    const { socket } = conn
    const timeoutMs = this.opts.readTimeoutMs ?? 60_000
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      const cleanup = (): void => {
        clearTimeout(timer)
        socket.off('data', onData)
        socket.off('close', onClose)
      }
      const onData = (chunk: Buffer): void => {
        chunks.push(chunk)
        let decoded: ReturnType<typeof tryDecode>
        try {
          decoded = tryDecode(Buffer.concat(chunks))
        } catch (e) {
          cleanup()
          reject(new RpcTransportError(`bad message from plugin server: ${(e as Error).message}`))
          return
        }
        if (decoded.ok) {
          cleanup()
          resolve(decoded.value)
        }
      }
      const onClose = (): void => {
        cleanup()
        reject(new RpcTransportError('no data'))
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new RpcTransportError('no data'))
      }, timeoutMs)
      socket.on('data', onData)
      socket.on('close', onClose)
      socket.write(bytes)
    })
  }

  private release(conn: PooledConnection): void {
    this.busy.delete(conn)
    if (this.closed || conn.socket.destroyed) {
      conn.socket.destroy()
      return
    }
    // a pooled connection that receives unsolicited data (a late PDK call of an abandoned event)
    // is closed, as Kong does when it next reads it (F21: ECONNRESET on the pooled connection)
    conn.onIdleData = () => this.discard(conn)
    conn.socket.once('data', conn.onIdleData)
    conn.idleTimer = setTimeout(() => this.discard(conn), this.opts.idleTimeoutMs ?? 60_000)
    conn.idleTimer.unref()
    this.idle.push(conn)
  }

  private discard(conn: PooledConnection): void {
    if (conn.idleTimer) clearTimeout(conn.idleTimer)
    this.busy.delete(conn)
    const i = this.idle.indexOf(conn)
    if (i >= 0) this.idle.splice(i, 1)
    conn.socket.destroy()
  }
}
