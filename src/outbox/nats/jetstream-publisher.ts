import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node'
import { ErrorCode, UserEngineError } from '../../domain/errors.js'
import { importOptional } from '../../domain/optional-import.js'
import type { OutboxEntry } from '../../domain/records.js'
import { type Publisher, toPublishedEvent } from '../publisher.js'

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
  /** NATS servers, e.g. `nats://127.0.0.1:4222`. */
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
  /** Time to wait for the broker's acknowledgement of one publish. Default 5000. */
  readonly timeoutMs?: number
  /** Extra connection options (name, credentials, TLS); `servers` above wins. */
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

/**
 * A broker error as PUBLISH_FAILED. The message names the broker's error class and code, never its text:
 * NATS messages can carry server URLs (with credentials) and subjects.
 */
function publishFailed(what: string, cause: unknown): UserEngineError {
  if (cause instanceof UserEngineError) return cause
  const name = cause instanceof Error ? cause.name : typeof cause
  const code = (cause as { code?: unknown } | null)?.code
  const kind = typeof code === 'string' || typeof code === 'number' ? `${name} ${code}` : name
  return new UserEngineError(ErrorCode.PUBLISH_FAILED, `${what} (${kind})`, { cause })
}

/** Event types are free text; a subject token may not hold spaces, wildcards or empty tokens. */
function subjectToken(value: string): string {
  const token = value
    .replace(/[^A-Za-z0-9_\-.]/g, '_')
    .replace(/\.{2,}/g, '.')
    .replace(/^\.|\.$/g, '')
  return token.length > 0 ? token : '_'
}

/**
 * Publishes outbox events to a NATS JetStream stream. Each message carries `Nats-Msg-Id` = event id, so a
 * republish (after a lost lease, crash or lost acknowledgement) inside the stream's duplicate window is
 * dropped by the broker and consumers see the event once. Connects lazily on the first publish; call
 * `connect()` to fail fast at startup.
 */
export class JetStreamPublisher implements Publisher {
  readonly stream: string
  readonly subjectPrefix: string
  readonly #options: JetStreamPublisherOptions
  readonly #subject: (event: OutboxEntry) => string
  #ready: Promise<{ nc: NatsConnection; js: JetStreamClient; nats: NatsModules }> | null = null
  #closed = false

  constructor(options: JetStreamPublisherOptions) {
    this.#options = options
    this.stream = options.stream ?? 'USER_ENGINE'
    this.subjectPrefix = options.subjectPrefix ?? 'user-engine'
    this.#subject =
      options.subject ?? ((e) => `${this.subjectPrefix}.${subjectToken(e.tenantId)}.${subjectToken(e.type)}`)
  }

  /** Connects and ensures the stream; idempotent. A failed attempt is retried on the next call. */
  async connect(): Promise<void> {
    await this.#connection()
  }

  async publish(event: OutboxEntry): Promise<void> {
    const { js, nats } = await this.#connection()
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
      throw publishFailed(`publishing event ${event.id} to stream ${this.stream} failed`, cause)
    }
  }

  /** Waits for publishes in flight, then closes the connection. */
  async close(): Promise<void> {
    this.#closed = true
    const ready = this.#ready
    this.#ready = null
    if (!ready) return
    const { nc } = await ready.catch(() => ({ nc: null }))
    if (nc && !nc.isClosed()) await nc.drain()
  }

  #connection(): Promise<{ nc: NatsConnection; js: JetStreamClient; nats: NatsModules }> {
    if (this.#closed) {
      return Promise.reject(new UserEngineError(ErrorCode.STORE_CLOSED, 'the JetStream publisher is closed'))
    }
    if (!this.#ready) {
      const ready = this.#open()
      this.#ready = ready
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = null
      })
    }
    return this.#ready
  }

  async #open(): Promise<{ nc: NatsConnection; js: JetStreamClient; nats: NatsModules }> {
    const nats = await loadNats()
    const nc = await nats.transport
      .connect({ name: 'user-engine-relay', ...this.#options.connection, servers: this.#options.servers })
      .catch((cause: unknown) => {
        throw publishFailed('connecting to NATS failed', cause)
      })
    try {
      if (this.#options.ensureStream ?? true)
        await this.#ensureStream(nats, await nats.js.jetstreamManager(nc))
      return { nc, js: nats.js.jetstream(nc), nats }
    } catch (error) {
      await nc.close()
      throw publishFailed(`preparing stream ${this.stream} failed`, error)
    }
  }

  async #ensureStream(nats: NatsModules, jsm: JetStreamManager): Promise<void> {
    const windowMs = this.#options.duplicateWindowMs
    try {
      const info = await jsm.streams.info(this.stream)
      if (windowMs !== undefined && info.config.duplicate_window !== windowMs * NANOS_PER_MS) {
        await jsm.streams.update(this.stream, { duplicate_window: windowMs * NANOS_PER_MS })
      }
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
