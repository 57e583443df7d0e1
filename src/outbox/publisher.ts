import type { OutboxEntry } from '../domain/records.js'

/**
 * Where the relay sends events. `publish` resolves only once the event is durably accepted downstream; a
 * rejection makes the relay retry it later with backoff, so a publish MAY be repeated for the same event id
 * (after a crash, a lost lease or a lost acknowledgement). Publishers that can deduplicate by `event.id`
 * (JetStream's `Nats-Msg-Id`) should.
 */
export interface Publisher {
  publish(event: OutboxEntry): Promise<void>
  /** Releases connections; the relay never calls it unless it owns the publisher. */
  close?(): Promise<void>
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
  constructor(private readonly callback: (event: PublishedEvent) => void | Promise<void>) {}

  async publish(event: OutboxEntry): Promise<void> {
    await this.callback(toPublishedEvent(event))
  }
}
