import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node'
import { ErrorCode, UserEngineError, ValidationError } from '../../domain/errors.js'
import { importOptional } from '../../domain/optional-import.js'
import type { OutboxEntry } from '../../domain/records.js'
import { assertIntegerInRange } from '../../domain/validation.js'
import { redactCredentials, redactedError } from '../describe-error.js'
import { brokerUnreachable, type Publisher, toPublishedEvent } from '../publisher.js'

// The NATS client is an optional peer: loaded on first connect, so importing this module never needs it.
const loadNats = async () => {
  const [transport, js] = await Promise.all([
    importOptional(
      () => import('@nats-io/transport-node'),
      '@nats-io/transport-node',
      'the JetStream publisher',
    ),
    importOptional(() => import('@nats-io/jetstream'), '@nats-io/jetstream', 'the JetStream publisher'),
  ])
  return { transport, js }
}
type NatsModules = Awaited<ReturnType<typeof loadNats>>

export interface JetStreamPublisherOptions {
  /**
   * NATS servers, e.g. `nats://127.0.0.1:4222`. Credentials in a URL (`nats://user:pass@host:4222`, or a token
   * as `nats://token@host:4222`, percent-encoded) are used for the connection; one set for all servers.
   */
  readonly servers: string | string[]
  /** Stream the events land in. Default `USER_ENGINE`. */
  readonly stream?: string
  /** First subject token(s). Default `user-engine`. */
  readonly subjectPrefix?: string
  /** Subject per event; default `${subjectPrefix}.${tenantId}.${type}`. Must fall under the stream's subjects. */
  readonly subject?: (event: OutboxEntry) => string
  /** Create the stream (subjects `${subjectPrefix}.>`) when missing. Default true. */
  readonly ensureStream?: boolean
  /**
   * The stream's duplicate window: a republish of an event id inside it is dropped by the broker. Applied when
   * the stream is created, and updated on an existing stream when given. Default (new stream) 2 minutes.
   * Size it above the relay's leaseMs plus the longest backoff you expect to re-publish within (docs/outbox.md).
   */
  readonly duplicateWindowMs?: number
  /**
   * The stream's replicas (1-5; 3 on a 3-node cluster). Applied when the stream is created, and updated on an
   * existing stream when given. Default (new stream) 1.
   */
  readonly replicas?: number
  /** Time to wait for the broker's acknowledgement of one publish. Default 5000. */
  readonly timeoutMs?: number
  /**
   * After the NATS client gives a connection up (closed), how long to wait before building a new one,
   * doubling up to `maxMs`. It never stops trying while the publisher is open. Default 500 / 30000.
   */
  readonly rebuild?: { readonly baseMs?: number; readonly maxMs?: number }
  /**
   * Extra connection options (name, credentials, TLS); `servers` above wins. Credentials go either here or in
   * the server URLs, not both.
   */
  readonly connection?: Omit<NodeConnectionOptions, 'servers'>
}

/** Header names the publisher sets besides `Nats-Msg-Id`. Ids and numbers only, never payload values. */
export const EVENT_HEADERS = {
  tenant: 'User-Engine-Tenant',
  aggregateType: 'User-Engine-Aggregate-Type',
  aggregateId: 'User-Engine-Aggregate-Id',
  sequence: 'User-Engine-Sequence',
  position: 'User-Engine-Position',
  type: 'User-Engine-Event-Type',
} as const

const DEFAULT_DUPLICATE_WINDOW_MS = 120_000
const NANOS_PER_MS = 1_000_000

/** NATS client errors that mean the broker (or the stream's leader) could not be reached, not the event's fault. */
const UNREACHABLE_ERRORS: ReadonlySet<string> = new Set([
  'ClosedConnectionError',
  'ConnectionError',
  'DrainingConnectionError',
  'NoRespondersError',
  'TimeoutError',
  'JetStreamNotEnabled',
])

/**
 * True when `error` (or a cause of it) says NATS could not be reached: no connection, no server or stream
 * leader answering (no responders, 503), or no acknowledgement in time (a stream without a leader while a
 * cluster elects one). A timeout is counted here on purpose: it is the broker's state, and a relay that
 * counted it against the event would kill events during a long election.
 */
export function isNatsUnreachable(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (UNREACHABLE_ERRORS.has(e.name) || UNREACHABLE_ERRORS.has(e.constructor.name)) return true
    const code = (e as { code?: unknown }).code
    if (e.name === 'RequestError' && /no responders/i.test(e.message)) return true
    if (
      (e.name === 'JetStreamApiError' || e.name === 'JetStreamStatusError') &&
      (code === 503 || code === 408)
    )
      return true
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE') return true
  }
  return false
}

/**
 * A broker error as PUBLISH_FAILED: with `details.reason` 'unreachable' when NATS could not be reached (the
 * relay then pauses instead of counting an attempt). The message names the broker's error class and code,
 * never its text: NATS messages can carry server URLs (with credentials) and subjects.
 */
function publishFailed(what: string, cause: unknown, secrets: readonly string[]): UserEngineError {
  if (cause instanceof UserEngineError) return cause
  const name = cause instanceof Error ? cause.name : typeof cause
  const code = (cause as { code?: unknown } | null)?.code
  const kind = redactCredentials(
    typeof code === 'string' || typeof code === 'number' ? `${name} ${code}` : name,
    secrets,
  )
  // The cause is kept for diagnosis, as a copy without what util.inspect would print of the raw one.
  const kept = redactedError(cause, secrets)
  if (isNatsUnreachable(cause)) return brokerUnreachable(`${what}: NATS unreachable (${kind})`, kept)
  return new UserEngineError(ErrorCode.PUBLISH_FAILED, `${what} (${kind})`, { cause: kept })
}

/** Connection credentials taken from a server URL's user information. */
type UrlCredentials = { readonly user: string; readonly pass: string } | { readonly token: string }

const invalidServer = (index: number) =>
  new ValidationError(
    `servers[${index}] is not a NATS server URL ([nats://][user:pass@ or token@]host[:port], percent-encoded)`,
    { details: { field: 'servers', index } },
  )

/**
 * Whether the NATS client can read `hostPort`, as its own parser does: a bare IPv6 address is bracketed, then
 * the whole is read as an http URL (a port above 65535 or a stray bracket fails there).
 */
function readableHostPort(hostPort: string): boolean {
  if (hostPort.trim() === '') return false
  const bareIpv6 =
    !hostPort.includes('[') &&
    (hostPort.includes('::') || (!hostPort.includes('.') && hostPort.split(':').length > 2))
  return URL.canParse(`http://${bareIpv6 ? `[${hostPort}]` : hostPort}`)
}

/** `user:pass` or `token`, percent-decoded; undefined when malformed. */
function credentialsOf(userInfo: string): UrlCredentials | undefined {
  try {
    const colon = userInfo.indexOf(':')
    if (colon < 0) return { token: decodeURIComponent(userInfo) }
    const user = decodeURIComponent(userInfo.slice(0, colon))
    return user === '' ? undefined : { user, pass: decodeURIComponent(userInfo.slice(colon + 1)) }
  } catch {
    return undefined
  }
}

/**
 * One server as the NATS client takes it, without its user information (the client ignores it), and the
 * credentials that held. VALIDATION names the index only: the URL may hold a password.
 */
function parseServer(value: unknown, index: number): { server: string; credentials?: UrlCredentials } {
  if (typeof value !== 'string') throw invalidServer(index)
  const trimmed = value.trim()
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(trimmed)?.[0] ?? ''
  const rest = trimmed.slice(scheme.length)
  const authorityEnd = rest.search(/[/?#]/)
  // The last '@' of the authority ends the user information, as URL parsers take it.
  const at = (authorityEnd < 0 ? rest : rest.slice(0, authorityEnd)).lastIndexOf('@')
  const hostPort = rest.slice(at + 1)
  if (!readableHostPort(hostPort)) throw invalidServer(index)
  if (at <= 0) return { server: `${scheme}${hostPort}` }
  const credentials = credentialsOf(rest.slice(0, at))
  if (credentials === undefined) throw invalidServer(index)
  return { server: `${scheme}${hostPort}`, credentials }
}

/**
 * The servers for the NATS client and the credentials their URLs carry (the same for every server that has
 * any). Credentials both in a URL and in `connection` are refused: which would win is not obvious.
 */
function natsServers(
  servers: unknown,
  connection: JetStreamPublisherOptions['connection'],
): { servers: string[]; credentials: UrlCredentials | undefined } {
  const list = typeof servers === 'string' ? [servers] : Array.isArray(servers) ? servers : []
  if (list.length === 0) {
    throw new ValidationError('servers must be a NATS server URL or a non-empty array of them', {
      details: { field: 'servers' },
    })
  }
  const parsed = list.map(parseServer)
  const given = parsed.flatMap((p) => (p.credentials ? [JSON.stringify(p.credentials)] : []))
  if (new Set(given).size > 1) {
    throw new ValidationError('the server URLs carry different credentials; give one set', {
      details: { field: 'servers' },
    })
  }
  const c = connection as { user?: unknown; pass?: unknown; token?: unknown; authenticator?: unknown }
  if (given.length > 0 && [c?.user, c?.pass, c?.token, c?.authenticator].some((v) => v !== undefined)) {
    throw new ValidationError(
      'credentials are given both in a server URL and in connection; give them once',
      {
        details: { field: 'servers' },
      },
    )
  }
  return { servers: parsed.map((p) => p.server), credentials: parsed.find((p) => p.credentials)?.credentials }
}

/** The passwords and tokens a publisher was given: masked wherever a broker error might quote them. */
function secretsOf(
  credentials: UrlCredentials | undefined,
  connection: JetStreamPublisherOptions['connection'],
): string[] {
  const c = { ...(connection as { pass?: unknown; token?: unknown }), ...credentials }
  return [c.pass, c.token].filter((s): s is string => typeof s === 'string' && s.length > 0)
}

/** Event types are free text; a subject token may not hold spaces, wildcards or empty tokens. */
function subjectToken(value: string): string {
  const token = value
    .replace(/[^A-Za-z0-9_\-.]/g, '_')
    .replace(/\.{2,}/g, '.')
    .replace(/^\.|\.$/g, '')
  return token.length > 0 ? token : '_'
}

type Connection = { nc: NatsConnection; js: JetStreamClient; nats: NatsModules }

/**
 * Publishes outbox events to a NATS JetStream stream. Each message carries `Nats-Msg-Id` = event id, so a
 * republish (after a lost lease, crash or lost acknowledgement) inside the stream's duplicate window is
 * dropped by the broker and consumers see the event once. Connects lazily on the first publish; call
 * `connect()` to fail fast at startup.
 *
 * Outages of any length: the NATS client reconnects forever (`maxReconnectAttempts: -1`); should it give a
 * connection up anyway, the publisher builds a new one, with backoff, for as long as it is open. While not
 * connected, `publish` fails at once with `brokerUnreachable` (PUBLISH_FAILED, `details.reason` 'unreachable')
 * and `whenReachable` resolves at the next (re)connect, so a relay pauses and resumes by itself.
 */
export class JetStreamPublisher implements Publisher {
  readonly stream: string
  readonly subjectPrefix: string
  readonly #options: JetStreamPublisherOptions
  readonly #subject: (event: OutboxEntry) => string
  /** `servers` without user information, and the credentials that held. */
  readonly #servers: string[]
  readonly #credentials: UrlCredentials | undefined
  readonly #secrets: readonly string[]
  #ready: Promise<Connection> | null = null
  #closed = false
  /** Whether the current connection is up (false between a disconnect and the reconnect). */
  #connected = false
  /** A connection is being opened (the first, or a rebuild). */
  #opening = false
  readonly #waiters = new Set<() => void>()
  /** Publishes waiting for the next turn of the event loop (see #nextTurn). */
  readonly #turn: (() => void)[] = []
  #rebuildTimer: ReturnType<typeof setTimeout> | undefined
  #rebuildDelay: number

  constructor(options: JetStreamPublisherOptions) {
    this.#options = options
    this.stream = options.stream ?? 'USER_ENGINE'
    this.subjectPrefix = options.subjectPrefix ?? 'user-engine'
    this.#subject =
      options.subject ?? ((e) => `${this.subjectPrefix}.${subjectToken(e.tenantId)}.${subjectToken(e.type)}`)
    this.#rebuildDelay = options.rebuild?.baseMs ?? 500
    const { servers, credentials } = natsServers(options.servers, options.connection)
    this.#servers = servers
    this.#credentials = credentials
    this.#secrets = secretsOf(credentials, options.connection)
    if (options.replicas !== undefined) assertIntegerInRange(options.replicas, 'replicas', 1, 5)
    if (options.duplicateWindowMs !== undefined)
      assertIntegerInRange(options.duplicateWindowMs, 'duplicateWindowMs', 100, 7 * 86_400_000)
    if (options.timeoutMs !== undefined) assertIntegerInRange(options.timeoutMs, 'timeoutMs', 1, 600_000)
  }

  /** Connects and ensures the stream; idempotent. A failed attempt is retried on the next call. */
  async connect(): Promise<void> {
    await this.#connection()
  }

  /** Whether a connection is up right now. */
  get connected(): boolean {
    return this.#connected
  }

  async publish(event: OutboxEntry): Promise<void> {
    if (this.#ready !== null && !this.#opening && !this.#connected && !this.#closed) {
      // Reconnecting: the client would buffer the publish until its timeout; say so at once instead.
      throw brokerUnreachable(`publishing event ${event.id}: NATS is not connected (reconnecting)`)
    }
    let conn: Connection
    try {
      conn = await this.#connection()
    } catch (cause) {
      throw publishFailed(`publishing event ${event.id}: connecting to NATS failed`, cause, this.#secrets)
    }
    await this.#nextTurn()
    const { js, nats } = conn
    const h = nats.transport.headers()
    h.set(EVENT_HEADERS.tenant, event.tenantId)
    h.set(EVENT_HEADERS.aggregateType, event.aggregateType)
    h.set(EVENT_HEADERS.aggregateId, event.aggregateId)
    h.set(EVENT_HEADERS.sequence, String(event.sequence))
    h.set(EVENT_HEADERS.position, String(event.position))
    h.set(EVENT_HEADERS.type, event.type)
    // A PubAck with duplicate=true means the broker already holds this event: success, not an error.
    try {
      await js.publish(this.#subject(event), JSON.stringify(toPublishedEvent(event)), {
        msgID: event.id,
        headers: h,
        timeout: this.#options.timeoutMs ?? 5000,
        // Refuse to land in another stream that happens to match the subject.
        expect: { streamName: this.stream },
      })
    } catch (cause) {
      throw publishFailed(
        `publishing event ${event.id} to stream ${this.stream} failed`,
        cause,
        this.#secrets,
      )
    }
  }

  /**
   * Resolves on the next turn of the event loop, together with every publish that asked meanwhile. The NATS
   * client writes what was sent before its next microtask in one socket write; a relay's publishes reach it
   * a few promise steps apart from each other (each after its aggregate's acknowledgement and bookkeeping),
   * so without this each went out in a write of its own.
   */
  #nextTurn(): Promise<void> {
    return new Promise((resolve) => {
      this.#turn.push(resolve)
      if (this.#turn.length === 1) setImmediate(this.#releaseTurn)
    })
  }

  readonly #releaseTurn = () => {
    for (const resolve of this.#turn.splice(0)) resolve()
  }

  async whenReachable(signal: AbortSignal): Promise<void> {
    if (this.#closed || signal.aborted) return
    if (this.#connected) return
    // Not connected and no connection being built (the first one failed): try one now.
    if (this.#ready === null) this.#connection().catch(() => {})
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#waiters.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      this.#waiters.add(done)
      signal.addEventListener('abort', done)
    })
  }

  /** Waits for publishes in flight, then closes the connection. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#rebuildTimer)
    for (const w of [...this.#waiters]) w()
    const ready = this.#ready
    this.#ready = null
    this.#connected = false
    if (!ready) return
    const { nc } = await ready.catch(() => ({ nc: null }))
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close())
  }

  #connection(): Promise<Connection> {
    if (this.#closed) {
      return Promise.reject(new UserEngineError(ErrorCode.STORE_CLOSED, 'the JetStream publisher is closed'))
    }
    if (!this.#ready) {
      const ready = this.#open()
      this.#ready = ready
      this.#opening = true
      ready.then(
        (conn) => {
          this.#opening = false
          this.#watch(ready, conn)
        },
        () => {
          this.#opening = false
          if (this.#ready === ready) this.#ready = null
        },
      )
    }
    return this.#ready
  }

  /** Follows the connection's status: up and down for `publish`, and a new connection when it closes. */
  #watch(ready: Promise<Connection>, { nc }: Connection): void {
    this.#connected = true
    this.#rebuildDelay = this.#options.rebuild?.baseMs ?? 500
    this.#wake()
    void (async () => {
      try {
        for await (const s of nc.status()) {
          if (this.#ready !== ready) return
          if (s.type === 'disconnect' || s.type === 'reconnecting' || s.type === 'staleConnection') {
            this.#connected = false
          } else if (s.type === 'reconnect') {
            this.#connected = true
            this.#wake()
          }
        }
      } catch {
        // The iterator ends with the connection; closed() below handles it.
      }
    })()
    void nc.closed().then(() => {
      if (this.#ready !== ready) return
      this.#connected = false
      this.#ready = null
      if (!this.#closed) this.#scheduleRebuild()
    })
  }

  /** The client gave the connection up (it should not, with unlimited reconnects): build a new one. */
  #scheduleRebuild(): void {
    clearTimeout(this.#rebuildTimer)
    const delay = this.#rebuildDelay
    this.#rebuildDelay = Math.min(this.#options.rebuild?.maxMs ?? 30_000, delay * 2)
    this.#rebuildTimer = setTimeout(() => {
      if (this.#closed || this.#ready !== null) return
      this.#connection().catch(() => this.#scheduleRebuild())
    }, delay)
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w()
  }

  async #open(): Promise<Connection> {
    const nats = await loadNats()
    const nc = await nats.transport
      .connect({
        name: 'user-engine-relay',
        reconnectTimeWait: 1000,
        ...this.#options.connection,
        ...this.#credentials,
        // Never give a connection up: an outage of any length must end with the relay publishing again.
        maxReconnectAttempts: -1,
        servers: this.#servers,
      })
      .catch((cause: unknown) => {
        throw publishFailed('connecting to NATS failed', cause, this.#secrets)
      })
    try {
      if (this.#options.ensureStream ?? true)
        await this.#ensureStream(nats, await nats.js.jetstreamManager(nc))
      return { nc, js: nats.js.jetstream(nc), nats }
    } catch (error) {
      await nc.close()
      throw publishFailed(`preparing stream ${this.stream} failed`, error, this.#secrets)
    }
  }

  async #ensureStream(nats: NatsModules, jsm: JetStreamManager): Promise<void> {
    const windowMs = this.#options.duplicateWindowMs
    const replicas = this.#options.replicas
    try {
      const info = await jsm.streams.info(this.stream)
      const update: { duplicate_window?: number; num_replicas?: number } = {}
      if (windowMs !== undefined && info.config.duplicate_window !== windowMs * NANOS_PER_MS) {
        update.duplicate_window = windowMs * NANOS_PER_MS
      }
      if (replicas !== undefined && info.config.num_replicas !== replicas) update.num_replicas = replicas
      if (Object.keys(update).length > 0) await jsm.streams.update(this.stream, update)
    } catch (error) {
      if (
        !(error instanceof nats.js.JetStreamApiError) ||
        error.code !== nats.js.JetStreamApiCodes.StreamNotFound
      )
        throw error
      try {
        await jsm.streams.add({
          name: this.stream,
          subjects: [`${this.subjectPrefix}.>`],
          duplicate_window: (windowMs ?? DEFAULT_DUPLICATE_WINDOW_MS) * NANOS_PER_MS,
          ...(replicas === undefined ? {} : { num_replicas: replicas }),
        })
      } catch (addError) {
        // Another relay created it between our info and add: fine, as long as it exists now.
        await jsm.streams.info(this.stream).catch(() => {
          throw addError
        })
      }
    }
  }
}
