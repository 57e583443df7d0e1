import { connect, createServer, type Server, type Socket } from 'node:net'
import { POSTGRES_ADMIN_URL } from './services.js'

/**
 * Forwards 127.0.0.1:port to the test server. `freeze()` stops forwarding in both directions and keeps every
 * socket open (new ones too); `unfreeze()` delivers what was held, in order, as a resumed server would.
 * `watch(marks)` counts client messages holding one of `marks` (held ones when they are delivered), and
 * freezes right after forwarding the first: the server gets the statement, its answer never comes back.
 */
export class FreezingProxy {
  readonly #server: Server = createServer((client) => this.#pair(client))
  /** Where it forwards: the test Postgres server unless given (a NATS server, say). */
  readonly #upstream: { host: string; port: number }
  readonly #sockets = new Set<Socket>()
  #frozen = false
  #marks: Buffer[] = []
  #freezeOnMark = false
  /** Client messages holding a mark, forwarded since `watch`. */
  marked = 0
  port = 0

  constructor(upstream?: { host: string; port: number }) {
    const pg = new URL(POSTGRES_ADMIN_URL)
    this.#upstream = upstream ?? { host: pg.hostname, port: Number(pg.port || 5432) }
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    const address = this.#server.address()
    this.port = typeof address === 'object' && address !== null ? address.port : 0
  }

  url(database: string): string {
    const url = new URL(POSTGRES_ADMIN_URL)
    url.host = `127.0.0.1:${this.port}`
    url.pathname = `/${database}`
    return url.toString()
  }

  #pair(client: Socket): void {
    const upstream = connect(this.#upstream)
    for (const s of [client, upstream]) {
      this.#sockets.add(s)
      if (this.#frozen) s.pause()
      s.on('error', () => {})
      s.on('close', () => {
        this.#sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk)
      if (this.#marks.some((m) => chunk.includes(m))) {
        this.marked++
        if (this.#freezeOnMark) {
          this.#freezeOnMark = false
          this.freeze()
        }
      }
    })
    upstream.on('data', (chunk: Buffer) => client.write(chunk))
  }

  freeze(): void {
    this.#frozen = true
    for (const s of this.#sockets) s.pause()
  }

  watch(marks: readonly string[]): void {
    this.#marks = marks.map((m) => Buffer.from(m))
    this.#freezeOnMark = true
    this.marked = 0
  }

  stopWatching(): void {
    this.#marks = []
    this.#freezeOnMark = false
  }

  /** Ends every connection it holds and keeps listening: a broker that went away, frozen if `freeze()`d. */
  cut(): void {
    for (const s of this.#sockets) s.destroy()
  }

  unfreeze(): void {
    this.#frozen = false
    for (const s of this.#sockets) s.resume()
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
