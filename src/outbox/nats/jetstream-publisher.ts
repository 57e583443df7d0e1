// Long on purpose: one class whose connect, reconnect watch, stream set-up, publish and no-stream check all
// share its connection state; its error reading and server URL parsing live in files of their own.
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node'
import { ErrorCode, UserEngineError, ValidationError } from '../../domain/errors.js'
import { importOptional } from '../../domain/optional-import.js'
import type { OutboxEntry } from '../../domain/records.js'
import { assertIntegerInRange, inputObject, optionsObject, plainObject } from '../../domain/validation.js'
import { redactedError } from '../describe-error.js'
import { brokerUnreachable, isBrokerUnreachable, type Publisher, toPublishedEvent } from '../publisher.js'
import { isNoResponders, publishFailed } from './nats-errors.js'
import { connectReleasing } from './releasing-transport.js'
import { natsServers, secretsOf, type UrlCredentials } from './server-urls.js'

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

/** Event types are free text; a subject token may not hold spaces, wildcards or empty tokens. */
function subjectToken(value: string): string {
  const token = value
    .replace(/[^A-Za-z0-9_\-.]/g, '_')
    .replace(/\.{2,}/g, '.')
    .replace(/^\.|\.$/g, '')
  return token.length > 0 ? token : '_'
}

// NATS names: a stream name is one token (NATS also refuses path separators in it); a subject prefix is
// tokens joined by dots. Neither may hold whitespace or a wildcard (`*`, `>`): a prefix with one would publish
// to a literal `*` token, or be refused by the broker only when the stream is created.
const STREAM_NAME = /^[^.*>/\\]{1,255}$/
// Tokens of printable ASCII other than '.', '*' and '>', joined by single dots.
const SUBJECT_PREFIX = /^[^.*>]+(?:\.[^.*>]+)*$/
const PRINTABLE_ASCII = /^[!-~]+$/

/** The options read once into a checked copy: a misspelt key, a wrong type or a bad name is VALIDATION. */
function validatePublisherOptions(options: unknown): JetStreamPublisherOptions {
  const o = inputObject(options, 'JetStreamPublisher options', [
    'servers',
    'stream',
    'subjectPrefix',
    'subject',
    'ensureStream',
    'duplicateWindowMs',
    'replicas',
    'timeoutMs',
    'rebuild',
    'connection',
  ])
  const invalid = (field: string, rule: string) =>
    new ValidationError(`${field} ${rule}`, { details: { field } })
  if (
    o.stream !== undefined &&
    (typeof o.stream !== 'string' || !PRINTABLE_ASCII.test(o.stream) || !STREAM_NAME.test(o.stream))
  ) {
    throw invalid('stream', 'must be 1 to 255 printable ASCII characters, without spaces, ., *, >, / or \\')
  }
  if (
    o.subjectPrefix !== undefined &&
    (typeof o.subjectPrefix !== 'string' ||
      o.subjectPrefix.length > 200 ||
      !PRINTABLE_ASCII.test(o.subjectPrefix) ||
      !SUBJECT_PREFIX.test(o.subjectPrefix))
  ) {
    throw invalid('subjectPrefix', 'must be dot-separated tokens of printable ASCII, without spaces, * or >')
  }
  if (o.subject !== undefined && typeof o.subject !== 'function')
    throw invalid('subject', 'must be a function')
  if (o.ensureStream !== undefined && typeof o.ensureStream !== 'boolean') {
    throw invalid('ensureStream', 'must be a boolean')
  }
  if (o.replicas !== undefined) assertIntegerInRange(o.replicas, 'replicas', 1, 5)
  if (o.duplicateWindowMs !== undefined)
    assertIntegerInRange(o.duplicateWindowMs, 'duplicateWindowMs', 100, 7 * 86_400_000)
  if (o.timeoutMs !== undefined) assertIntegerInRange(o.timeoutMs, 'timeoutMs', 1, 600_000)
  if (o.rebuild !== undefined) {
    const r = optionsObject(o.rebuild, 'rebuild', ['baseMs', 'maxMs'])
    if (r.baseMs !== undefined) assertIntegerInRange(r.baseMs, 'rebuild.baseMs', 1, 3_600_000)
    if (r.maxMs !== undefined) assertIntegerInRange(r.maxMs, 'rebuild.maxMs', 1, 3_600_000)
    o.rebuild = r
  }
  if (o.connection !== undefined) o.connection = plainObject(o.connection, 'connection')
  return o as unknown as JetStreamPublisherOptions
}

type Connection = { nc: NatsConnection; js: JetStreamClient; nats: NatsModules }

/** `details.reason` of a publish no stream took (a failed attempt, unlike 'unreachable'). */
const NO_STREAM_REASON = 'no-stream'
// How long close() waits for a connection closed without its drain.
const CLOSE_GRACE_MS = 1000

/** `promise`'s value, or undefined once `ms` passed first; the timer never holds the process open. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
    timer.unref()
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

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
  /** Set while a connection is being opened (the first, or a rebuild): close() abandons that connect. */
  #opening: AbortController | undefined
  readonly #waiters = new Set<() => void>()
  /** Publishes waiting for the next turn of the event loop (see #nextTurn). */
  readonly #turn: (() => void)[] = []
  /**
   * A publish failed as unreachable since the connection last came up: `whenReachable` then waits for the
   * next reconnect instead of answering at once (a connected client whose publishes time out, or that no
   * stream leader answers, is not reachable for the relay).
   */
  #unreachableSinceUp = false
  /** Questions to JetStream's API after no responders, one in flight per subject (see #noStreamTakes). */
  readonly #noStreamChecks = new Map<string, Promise<string | null>>()
  #rebuildTimer: ReturnType<typeof setTimeout> | undefined
  #rebuildDelay: number

  constructor(options: JetStreamPublisherOptions) {
    options = validatePublisherOptions(options)
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
    try {
      await this.#publish(event)
    } catch (error) {
      if (isBrokerUnreachable(error)) this.#unreachableSinceUp = true
      throw error
    }
  }

  async #publish(event: OutboxEntry): Promise<void> {
    if (this.#ready !== null && this.#opening === undefined && !this.#connected && !this.#closed) {
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
    // close() while this publish waited for the connection: it will close that connection, so do not start.
    if (this.#closed) {
      throw new UserEngineError(ErrorCode.STORE_CLOSED, 'the JetStream publisher is closed')
    }
    const { js, nats } = conn
    const h = nats.transport.headers()
    h.set(EVENT_HEADERS.tenant, event.tenantId)
    h.set(EVENT_HEADERS.aggregateType, event.aggregateType)
    h.set(EVENT_HEADERS.aggregateId, event.aggregateId)
    h.set(EVENT_HEADERS.sequence, String(event.sequence))
    h.set(EVENT_HEADERS.position, String(event.position))
    h.set(EVENT_HEADERS.type, event.type)
    // A PubAck with duplicate=true means the broker already holds this event: success, not an error.
    let subject: string | undefined
    try {
      subject = this.#subject(event)
      await js.publish(subject, JSON.stringify(toPublishedEvent(event)), {
        msgID: event.id,
        headers: h,
        timeout: this.#options.timeoutMs ?? 5000,
        // Refuse to land in another stream that happens to match the subject.
        expect: { streamName: this.stream },
      })
    } catch (cause) {
      const what = `publishing event ${event.id} to stream ${this.stream} failed`
      // No responders on a live connection: either no stream takes the subject (the event's failed attempt,
      // so a misconfiguration ends in dead events an operator sees) or the stream's leader is away (an
      // outage). Only the server can tell which.
      const noStream =
        subject !== undefined && isNoResponders(cause) ? await this.#noStreamTakes(conn, subject) : null
      if (noStream !== null) {
        throw new UserEngineError(ErrorCode.PUBLISH_FAILED, `${what}: ${noStream}`, {
          details: { reason: NO_STREAM_REASON, stream: this.stream },
          cause: redactedError(cause, this.#secrets),
        })
      }
      throw publishFailed(what, cause, this.#secrets)
    }
  }

  /**
   * Why nobody answered a publish to `subject`, asked of JetStream's API: the reason when no stream takes it
   * (the stream does not exist, or does not cover the subject), null when the stream does (no leader, as
   * during an election) or the API does not answer either (JetStream away): those are the broker's state.
   * The reason names the stream, never the subject (a custom subject function may put anything in it).
   */
  #noStreamTakes(conn: Connection, subject: string): Promise<string | null> {
    let check = this.#noStreamChecks.get(subject)
    if (check === undefined) {
      check = this.#askNoStreamTakes(conn, subject).finally(() => this.#noStreamChecks.delete(subject))
      this.#noStreamChecks.set(subject, check)
    }
    return check
  }

  async #askNoStreamTakes({ nc, nats }: Connection, subject: string): Promise<string | null> {
    if (!this.#connected || nc.isClosed()) return null
    try {
      const jsm = await nats.js.jetstreamManager(nc, {
        checkAPI: false,
        timeout: this.#options.timeoutMs ?? 5000,
      })
      // The stream list is the meta leader's: it answers while the stream itself has no leader.
      for await (const name of jsm.streams.names(subject)) if (name === this.stream) return null
      const exists = await jsm.streams.info(this.stream).then(
        () => true,
        (error: unknown) => {
          if (
            error instanceof nats.js.JetStreamApiError &&
            error.code === nats.js.JetStreamApiCodes.StreamNotFound
          )
            return false
          throw error
        },
      )
      return `no stream takes the event's subject: stream ${this.stream} ${exists ? 'does not cover it' : 'does not exist'}`
    } catch {
      return null
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
    if (this.#connected && !this.#unreachableSinceUp) return
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

  /**
   * Waits for publishes in flight, at most the publish timeout, then closes the connection. A broker that
   * stopped answering (a partition, a frozen process) never completes a drain: the connection is then
   * closed without it, so `close()` returns within the publish timeout and a second or so. A connection that
   * is down (reconnecting) is closed at once.
   */
  async close(): Promise<void> {
    const wasConnected = this.#connected
    this.#closed = true
    clearTimeout(this.#rebuildTimer)
    for (const w of [...this.#waiters]) w()
    const ready = this.#ready
    this.#ready = null
    this.#connected = false
    if (!ready) return
    if (this.#opening !== undefined) {
      // Still connecting: nothing was published on it, so there is nothing to drain, and a broker that does not
      // answer would hold close() (and the process) for the connect timeout: the dial under way is abandoned,
      // and a connection that opens all the same is closed.
      this.#opening.abort()
      void ready.then(
        ({ nc }) => nc.close().catch(() => undefined),
        () => undefined,
      )
      return
    }
    const bound = this.#options.timeoutMs ?? 5000
    const opened = await ready.catch(() => null)
    const nc = opened?.nc
    if (!nc || nc.isClosed()) return
    // A connection that is down (reconnecting) cannot drain: what it buffered was never acknowledged, so the
    // relay publishes it again; waiting would only hold the caller for the publish timeout.
    const drained =
      wasConnected &&
      (await within(
        nc.drain().then(
          () => true,
          () => false,
        ),
        bound,
      ))
    // close() skips the flush a drain waits for; bounded too, so a stuck socket cannot hold the caller.
    if (drained !== true && !nc.isClosed())
      await within(
        nc.close().catch(() => undefined),
        CLOSE_GRACE_MS,
      )
  }

  #connection(): Promise<Connection> {
    if (this.#closed) {
      return Promise.reject(new UserEngineError(ErrorCode.STORE_CLOSED, 'the JetStream publisher is closed'))
    }
    if (!this.#ready) {
      const opening = new AbortController()
      const ready = this.#open(opening.signal)
      this.#ready = ready
      this.#opening = opening
      const opened = () => {
        if (this.#opening === opening) this.#opening = undefined
      }
      ready.then(
        (conn) => {
          opened()
          this.#watch(ready, conn)
        },
        () => {
          opened()
          if (this.#ready === ready) this.#ready = null
        },
      )
    }
    return this.#ready
  }

  /** Follows the connection's status: up and down for `publish`, and a new connection when it closes. */
  #watch(ready: Promise<Connection>, { nc }: Connection): void {
    this.#connected = true
    this.#unreachableSinceUp = false
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
            this.#unreachableSinceUp = false
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

  async #open(signal: AbortSignal): Promise<Connection> {
    const nats = await loadNats()
    const nc = await connectReleasing(
      nats.transport,
      {
        name: 'user-engine-relay',
        reconnectTimeWait: 1000,
        // A broker that accepts TCP and never answers (frozen, partitioned) fails a connect after the publish
        // timeout, not the client's default 20 s; `connection.timeout` overrides it.
        timeout: this.#options.timeoutMs ?? 5000,
        ...this.#options.connection,
        ...this.#credentials,
        // Never give a connection up: an outage of any length must end with the relay publishing again.
        maxReconnectAttempts: -1,
        servers: this.#servers,
      },
      signal,
    ).catch((cause: unknown) => {
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
