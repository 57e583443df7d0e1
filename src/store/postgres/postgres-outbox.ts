import type { AggregateType, JsonValue, OutboxEntry, OutboxStatus } from '../../domain/records.js'
import { assertId } from '../../domain/validation.js'
import {
  encodeListCursor,
  validateClaimOptions,
  validateFailOptions,
  validateHeldEvents,
  validateListOutboxQuery,
  validatePurgePublished,
  validateSettleOptions,
} from '../outbox-checks.js'
import { CommitWakes } from '../outbox-wakes.js'
import type {
  ClaimOptions,
  FailOptions,
  ListOutboxQuery,
  OutboxAccess,
  OutboxLag,
  OutboxSubscription,
  Page,
  SettleOptions,
  SettleResult,
} from '../store.js'
import type { SqlDriver, SqlListener } from './driver/driver.js'
import { toStoreError } from './driver/errors.js'
import { SQL } from './sql.js'
import { isoOf } from './timestamp-text.js'

interface OutboxDbRow {
  tenant_id: string
  id: string
  aggregate_type: string
  aggregate_id: string
  sequence: number
  position: number
  type: string
  payload: { [key: string]: JsonValue }
  occurred_at: Date | string
  status: string
  attempts: number
  available_at: Date | string
  lease_owner: string | null
  lease_until: Date | string | null
  published_at: Date | string | null
  last_error: string | null
}

/** isoOf (timestamp-text.ts) for a nullable column. */
const isoOrNull = (value: Date | string | null): string | null => (value === null ? null : isoOf(value))

function toEntry(r: OutboxDbRow): OutboxEntry {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    aggregateType: r.aggregate_type as AggregateType,
    aggregateId: r.aggregate_id,
    sequence: Number(r.sequence),
    position: Number(r.position),
    type: r.type,
    payload: r.payload,
    occurredAt: isoOf(r.occurred_at),
    status: r.status as OutboxStatus,
    attempts: Number(r.attempts),
    availableAt: isoOf(r.available_at),
    leaseOwner: r.lease_owner,
    leaseUntil: isoOrNull(r.lease_until),
    publishedAt: isoOrNull(r.published_at),
    lastError: r.last_error,
  }
}

/** The channel stores NOTIFY after commits that wrote outbox events, and relays LISTEN on. */
export const NOTIFY_CHANNEL = 'user_engine_outbox'
/** Least time between two NOTIFYs of one store (see PostgresOutbox.committed). */
export const NOTIFY_INTERVAL_MS = 5
// Code-point order, as SQL's COLLATE "C" and ISO timestamps need.
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * The outbox of a Postgres store, with the reference (memory) outbox's rules. Each operation is one
 * statement, and lease checks use the database clock, so relays on hosts with skewed clocks agree.
 */
export class PostgresOutbox implements OutboxAccess {
  readonly #wakes = new CommitWakes()
  readonly #subscriptions = new Set<OutboxSubscription>()
  /** The NOTIFY in flight, if any. */
  #notifying: Promise<void> | undefined
  /** A commit came after the last NOTIFY was sent: one more is owed. */
  #notifyOwed = false
  #notifyTimer: ReturnType<typeof setTimeout> | undefined
  #lastNotifyAt = Number.NEGATIVE_INFINITY
  /** Send a NOTIFY after each commit with events (server stores). The store turns it off on request. */
  notifyOnCommit = true

  constructor(
    private readonly driver: SqlDriver,
    private readonly assertUsable: () => Promise<void>,
  ) {}

  async claim(options: ClaimOptions): Promise<OutboxEntry[]> {
    const o = validateClaimOptions(options)
    const rows = await this.#query<OutboxDbRow>('claim', SQL.outbox.claim, [
      o.owner,
      o.limit,
      o.leaseMs,
      o.perAggregate,
      o.newAggregates,
      o.continueAfter.map((c) => c.tenantId),
      o.continueAfter.map((c) => c.eventId),
    ])
    // RETURNING has no order: by aggregate, then each aggregate's sequence.
    return rows
      .map(toEntry)
      .sort(
        (a, b) =>
          cmp(a.tenantId, b.tenantId) ||
          cmp(a.aggregateType, b.aggregateType) ||
          cmp(a.aggregateId, b.aggregateId) ||
          a.sequence - b.sequence ||
          a.position - b.position,
      )
  }

  async acknowledge(owner: string, eventIds: readonly string[]): Promise<string[]> {
    const held = validateHeldEvents(owner, eventIds)
    await this.assertUsable()
    if (held.eventIds.length === 0) return []
    const rows = await this.#query<{ id: string }>('acknowledge', SQL.outbox.acknowledge, [
      held.owner,
      JSON.stringify(held.eventIds),
    ])
    const done = new Set(rows.map((r) => r.id))
    // In the order asked, as the reference store answers.
    return [...new Set(held.eventIds)].filter((id) => done.has(id))
  }

  async fail(options: FailOptions): Promise<'pending' | 'dead' | null> {
    const o = validateFailOptions(options)
    const rows = await this.#query<{ status: string }>('fail', SQL.outbox.fail, [
      o.owner,
      o.eventId,
      o.error,
      o.maxAttempts,
      o.backoffMs,
    ])
    const status = rows[0]?.status
    return status === undefined ? null : status === 'dead' ? 'dead' : 'pending'
  }

  async release(owner: string, eventIds: readonly string[]): Promise<number> {
    const held = validateHeldEvents(owner, eventIds)
    await this.assertUsable()
    if (held.eventIds.length === 0) return 0
    const rows = await this.#query('release', SQL.outbox.release, [held.owner, JSON.stringify(held.eventIds)])
    return rows.length
  }

  async settle(options: SettleOptions): Promise<SettleResult> {
    const o = validateSettleOptions(options)
    const result = new Map<string, 'published' | 'pending' | 'dead' | 'released' | 'lost'>()
    if (o.items.length === 0) {
      await this.assertUsable()
      return result
    }
    const rows = await this.#query<{ id: string; status: string; outcome: string }>(
      'settle',
      SQL.outbox.settle,
      [
        o.owner,
        o.items.map((i) => i.tenantId),
        o.items.map((i) => i.eventId),
        o.items.map((i) => i.outcome),
        o.items.map((i) => (i.outcome === 'failed' ? i.error : null)),
        o.items.map((i) => (i.outcome === 'failed' ? i.backoffMs : 0)),
        o.maxAttempts,
      ],
    )
    const done = new Map(rows.map((r) => [r.id, r]))
    for (const item of o.items) {
      const r = done.get(item.eventId)
      result.set(
        item.eventId,
        r === undefined
          ? 'lost'
          : r.outcome === 'published'
            ? 'published'
            : r.outcome === 'released'
              ? 'released'
              : r.status === 'dead'
                ? 'dead'
                : 'pending',
      )
    }
    return result
  }

  async retryDead(eventId: string): Promise<boolean> {
    assertId(eventId, 'eventId')
    return (await this.#query('retryDead', SQL.outbox.retryDead, [eventId])).length > 0
  }

  async discardDead(eventId: string): Promise<boolean> {
    assertId(eventId, 'eventId')
    return (await this.#query('discardDead', SQL.outbox.discardDead, [eventId])).length > 0
  }

  async purgePublished(olderThanMs: number, limit: number): Promise<number> {
    const o = validatePurgePublished(olderThanMs, limit)
    const rows = await this.#query('purgePublished', SQL.outbox.purgePublished, [o.olderThanMs, o.limit])
    return rows.length
  }

  async lag(): Promise<OutboxLag> {
    const rows = await this.#query<{ pending: unknown; dead: unknown; oldest_ms: unknown }>(
      'lag',
      SQL.outbox.lag,
      [],
    )
    const r = rows[0]
    return {
      pending: Number(r?.pending ?? 0),
      dead: Number(r?.dead ?? 0),
      oldestPendingAgeMs: Number(r?.oldest_ms ?? 0),
    }
  }

  async get(eventId: string): Promise<OutboxEntry | null> {
    assertId(eventId, 'eventId')
    const rows = await this.#query<OutboxDbRow>('get', SQL.outbox.get, [eventId])
    return rows[0] ? toEntry(rows[0]) : null
  }

  async listForAggregate(tenantId: string, aggregateId: string): Promise<OutboxEntry[]> {
    assertId(tenantId, 'tenantId')
    assertId(aggregateId, 'aggregateId')
    const rows = await this.#query<OutboxDbRow>('listForAggregate', SQL.outbox.listForAggregate, [
      tenantId,
      aggregateId,
    ])
    return rows.map(toEntry)
  }

  async list(query: ListOutboxQuery): Promise<Page<OutboxEntry>> {
    const q = validateListOutboxQuery(query)
    const a = q.after
    const rows = await this.#query<OutboxDbRow>('list', SQL.outbox.list, [
      q.status,
      q.tenantId ?? null,
      q.aggregateId ?? null,
      a?.tenantId ?? null,
      a?.aggregateType ?? null,
      a?.aggregateId ?? null,
      a?.sequence ?? null,
      a?.position ?? null,
      q.limit + 1,
    ])
    const items = rows.slice(0, q.limit).map(toEntry)
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > q.limit && last ? encodeListCursor(last, q) : null }
  }

  /**
   * Wakes `onCommit` after commits with events: commits through this store object signal in process; on a
   * server, a LISTEN connection (held for the subscription's life, rebuilt with backoff when it drops) hears
   * the NOTIFY other processes' stores send after their commits. Polling stays the relay's fallback.
   */
  async subscribe(onCommit: () => void): Promise<OutboxSubscription> {
    await this.assertUsable()
    this.#wakes.add(onCommit)
    let closed = false
    let listener: SqlListener | null = null
    let retry: ReturnType<typeof setTimeout> | undefined
    let delay = 250
    const listen = async () => {
      if (closed || this.driver.listen === undefined) return
      try {
        const opened = await this.driver.listen(NOTIFY_CHANNEL, onCommit, () => {
          listener = null
          if (!closed) retry = setTimeout(listen, delay)
        })
        if (closed) await opened.close()
        else {
          listener = opened
          delay = 250
          // Commits made while no one listened were not heard: one wake catches them up.
          onCommit()
        }
      } catch {
        delay = Math.min(delay * 2, 30_000)
        if (!closed) retry = setTimeout(listen, delay)
      }
    }
    if (this.driver.kind === 'postgres') await listen()
    const subscription: OutboxSubscription = {
      close: async () => {
        closed = true
        clearTimeout(retry)
        this.#wakes.delete(onCommit)
        this.#subscriptions.delete(subscription)
        await (listener as SqlListener | null)?.close().catch(() => {})
      },
    }
    this.#subscriptions.add(subscription)
    return subscription
  }

  /** Ends every subscription (their LISTEN connections): the store calls it before closing its driver. */
  async closeSubscriptions(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((s) => s.close()))
  }

  /**
   * Called by the store after a commit that wrote events: wakes this process's subscribers and, on a server,
   * tells relays in other processes with a NOTIFY sent after the commit, outside it. (A NOTIFY inside the
   * commit, from a trigger, serializes every committing transaction on the database until its WAL flush:
   * commits at 500/s went from 2.5 ms to 17 ms at the median, measured 2026-11-30.) At most one NOTIFY is in
   * flight and at most one starts per NOTIFY_INTERVAL_MS: commits meanwhile fold into the next. A NOTIFY
   * after each batch cost a third of the registrations at 8 callers (3532 against 2547/s, 2026-11-30); a
   * relay elsewhere now learns of a commit up to 5 ms later, one in this process at once.
   */
  committed(): void {
    this.#wakes.signal()
    if (this.driver.kind === 'postgres' && this.notifyOnCommit) this.#notify()
  }

  /** Sends the NOTIFY a commit is still owed, now, and waits for it: the store calls it before it closes. */
  async flushNotify(): Promise<void> {
    // The send in flight may end by scheduling the next: wait for it, then cancel whatever it scheduled.
    await this.#notifying
    clearTimeout(this.#notifyTimer)
    this.#notifyTimer = undefined
    await this.#notifying
    if (this.#notifyOwed) await this.#sendNotify()
  }

  #notify(): void {
    this.#notifyOwed = true
    if (this.#notifying !== undefined || this.#notifyTimer !== undefined) return
    const wait = this.#lastNotifyAt + NOTIFY_INTERVAL_MS - performance.now()
    if (wait > 0) {
      this.#notifyTimer = setTimeout(() => {
        this.#notifyTimer = undefined
        this.#notify()
      }, wait)
      // Only a wake-up (relays also poll): it never keeps a process alive.
      this.#notifyTimer.unref?.()
      return
    }
    void this.#sendNotify().then(() => {
      if (this.#notifyOwed) this.#notify()
    })
  }

  #sendNotify(): Promise<void> {
    this.#notifyOwed = false
    this.#lastNotifyAt = performance.now()
    const sent = this.driver
      .query(SQL.outbox.notify, [NOTIFY_CHANNEL])
      .then(() => undefined)
      .catch(() => {
        // Only a wake-up: relays still poll. A closed store or a lost connection loses nothing.
      })
      .finally(() => {
        this.#notifying = undefined
      })
    this.#notifying = sent
    return sent
  }

  async #query<R>(what: string, sql: string, params: readonly unknown[]): Promise<R[]> {
    await this.assertUsable()
    try {
      return (await this.driver.query<R>(sql, params)).rows
    } catch (error) {
      throw toStoreError(error, `outbox ${what}`)
    }
  }
}
