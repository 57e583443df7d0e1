import { ErrorCode, UserEngineError, ValidationError } from '../domain/errors.js'
import type { OutboxEntry } from '../domain/records.js'

/**
 * Where the relay sends events. `publish` resolves only once the event is durably accepted downstream; a
 * rejection makes the relay retry it later with backoff, so a publish MAY be repeated for the same event id
 * (after a crash, a lost lease or a lost acknowledgement). Publishers that can deduplicate by `event.id`
 * (JetStream's `Nats-Msg-Id`) should.
 */
export interface Publisher {
  /**
   * Resolves once the broker durably accepted the event. Rejects with `brokerUnreachable(...)` (or any error
   * `isBrokerUnreachable` recognizes) when the broker could not be reached at all: the relay then pauses and
   * gives the event back without counting an attempt. Any other rejection is the event's failed attempt.
   */
  publish(event: OutboxEntry): Promise<void>
  /** Releases connections; the relay never calls it unless it owns the publisher. */
  close?(): Promise<void>
  /**
   * Optional: resolves when the broker looks reachable again (a reconnect), so a paused relay retries at
   * once instead of at its next probe. Settles (either way) when `signal` aborts. Should not resolve at once
   * while publishes fail as unreachable: the relay then waits out the next pause in full regardless.
   */
  whenReachable?(signal: AbortSignal): Promise<void>
}

/** Why a publish could not reach the broker, in `details.reason` of a PUBLISH_FAILED error. */
export type BrokerUnreachableReason = 'unreachable'

/**
 * The error a publisher raises when the broker cannot be reached (disconnected, reconnecting, closed, no
 * server answering for the stream): PUBLISH_FAILED with `details.reason` 'unreachable'. Not the event's
 * fault, so the relay pauses instead of counting an attempt. The message must not quote broker text (it can
 * hold URLs with credentials).
 */
export function brokerUnreachable(message: string, cause?: unknown): UserEngineError {
  return new UserEngineError(ErrorCode.PUBLISH_FAILED, message, {
    details: { reason: 'unreachable' },
    ...(cause === undefined ? {} : { cause }),
  })
}

/** True for an error that says the broker could not be reached (see `brokerUnreachable`). */
export function isBrokerUnreachable(error: unknown): boolean {
  return (
    error instanceof UserEngineError &&
    error.code === ErrorCode.PUBLISH_FAILED &&
    error.details.reason === 'unreachable'
  )
}

/** The event as consumers see it: the domain event without the outbox's delivery bookkeeping. */
export interface PublishedEvent {
  readonly id: string
  readonly tenantId: string
  readonly aggregateType: OutboxEntry['aggregateType']
  readonly aggregateId: string
  readonly sequence: number
  readonly position: number
  readonly type: string
  readonly payload: OutboxEntry['payload']
  readonly occurredAt: string
}

/** Strips delivery state (attempts, lease, last error) that means nothing to a consumer. */
export function toPublishedEvent(entry: OutboxEntry): PublishedEvent {
  return {
    id: entry.id,
    tenantId: entry.tenantId,
    aggregateType: entry.aggregateType,
    aggregateId: entry.aggregateId,
    sequence: entry.sequence,
    position: entry.position,
    type: entry.type,
    payload: entry.payload,
    occurredAt: entry.occurredAt,
  }
}

/**
 * Hands each event to a callback in this process (tests, single-process apps, fan-out to an in-memory bus).
 * A callback that throws (or rejects) counts as a failed publish and is retried with backoff.
 */
export class InProcessPublisher implements Publisher {
  constructor(private readonly callback: (event: PublishedEvent) => void | Promise<void>) {
    if (typeof callback !== 'function') {
      throw new ValidationError('InProcessPublisher needs a callback function', {
        details: { field: 'callback' },
      })
    }
  }

  async publish(event: OutboxEntry): Promise<void> {
    await this.callback(toPublishedEvent(event))
  }
}
