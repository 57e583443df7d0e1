import type { OutboxEntry, OutboxStatus } from '../../domain/records.js'
import { assertId } from '../../domain/validation.js'
import {
  compareListKeys,
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

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** An outbox entry as the memory store keeps it: mutable delivery state plus numeric times. */
export type OutboxRow = Mutable<OutboxEntry> & {
  availableAtMs: number
  leaseUntilMs: number | null
  publishedAtMs: number | null
}

const BLOCKING: ReadonlySet<OutboxStatus> = new Set(['pending', 'dead'])
const iso = (ms: number) => new Date(ms).toISOString()
const aggregateKey = (r: OutboxRow) => `${r.tenantId}\u0000${r.aggregateType}\u0000${r.aggregateId}`
const bySequence = (a: OutboxRow, b: OutboxRow) => a.sequence - b.sequence || a.position - b.position
const claimable = (r: OutboxRow, now: number) =>
  r.status === 'pending' && r.availableAtMs <= now && (r.leaseUntilMs === null || r.leaseUntilMs <= now)

function toEntry(row: OutboxRow): OutboxEntry {
  const { availableAtMs: _a, leaseUntilMs: _l, publishedAtMs: _p, ...entry } = row
  return structuredClone(entry)
}

/** The reference outbox: the same claim-by-state rules the SQL store enforces with SKIP LOCKED. */
export class InMemoryOutbox implements OutboxAccess {
  readonly #wakes = new CommitWakes()

  constructor(
    private readonly rows: OutboxRow[],
    private readonly assertUsable: () => void,
  ) {}

  async claim(options: ClaimOptions): Promise<OutboxEntry[]> {
    const o = validateClaimOptions(options)
    this.assertUsable()
    const now = Date.now()
    // Each aggregate's pending and dead events in order: its head first.
    const queues = new Map<string, OutboxRow[]>()
    for (const r of this.rows) {
      if (!BLOCKING.has(r.status)) continue
      const k = aggregateKey(r)
      const q = queues.get(k)
      if (q) q.push(r)
      else queues.set(k, [r])
    }
    for (const q of queues.values()) q.sort(bySequence)
    const runs: OutboxRow[][] = []
    /** The ready events of `queue` from index `from`, at most perAggregate, stopping at the first that is not. */
    const runFrom = (queue: OutboxRow[], from: number) => {
      const run: OutboxRow[] = []
      for (let i = from; i < queue.length && run.length < o.perAggregate; i++) {
        if (!claimable(queue[i]!, now)) break
        run.push(queue[i]!)
      }
      return run
    }
    const continued = new Set<string>()
    for (const cursor of o.continueAfter) {
      const at = this.rows.find((r) => r.tenantId === cursor.tenantId && r.id === cursor.eventId)
      if (!at) continue
      const k = aggregateKey(at)
      continued.add(k)
      const queue = queues.get(k)
      if (!queue) continue
      const head = queue[0]!
      const held = bySequence(head, at) <= 0
      // Rule 5: while earlier events are pending, they must all be this owner's (the head stands for them).
      if (held && !(head.leaseOwner === o.owner && head.leaseUntilMs !== null && head.leaseUntilMs > now))
        continue
      // Renewed whether or not anything follows yet, as the Postgres store does: the hold is the owner's.
      if (held) {
        head.leaseUntilMs = Math.max(head.leaseUntilMs ?? 0, now + o.leaseMs)
        head.leaseUntil = iso(head.leaseUntilMs)
      }
      const from = queue.findIndex((r) => bySequence(r, at) > 0)
      if (from === -1) continue
      const run = runFrom(queue, from)
      if (run.length === 0) continue
      runs.push(run)
    }
    if (o.newAggregates > 0) {
      const heads = [...queues.entries()]
        .filter(([k, q]) => !continued.has(k) && claimable(q[0]!, now))
        .map(([, q]) => q)
        .sort((a, b) => a[0]!.availableAtMs - b[0]!.availableAtMs)
        .slice(0, o.newAggregates)
      for (const q of heads) runs.push(runFrom(q, 0))
    }
    // Oldest first across aggregates, each run whole and in order; the limit cuts the last one short.
    runs.sort((a, b) => a[0]!.availableAtMs - b[0]!.availableAtMs)
    const claimed: OutboxRow[] = []
    for (const run of runs) {
      for (const row of run) {
        if (claimed.length >= o.limit) break
        row.leaseOwner = o.owner
        row.leaseUntilMs = now + o.leaseMs
        row.leaseUntil = iso(row.leaseUntilMs)
        claimed.push(row)
      }
    }
    return claimed.map(toEntry)
  }

  async acknowledge(owner: string, eventIds: readonly string[]): Promise<string[]> {
    const held = validateHeldEvents(owner, eventIds)
    this.assertUsable()
    const now = Date.now()
    const done: string[] = []
    for (const id of new Set(held.eventIds)) {
      const row = this.#held(owner, id, now)
      if (!row) continue
      row.status = 'published'
      row.publishedAtMs = now
      row.publishedAt = iso(now)
      row.leaseOwner = null
      row.leaseUntil = null
      row.leaseUntilMs = null
      done.push(id)
    }
    return done
  }

  async fail(options: FailOptions): Promise<'pending' | 'dead' | null> {
    const o = validateFailOptions(options)
    this.assertUsable()
    const now = Date.now()
    const row = this.#held(o.owner, o.eventId, now)
    if (!row) return null
    row.attempts += 1
    row.lastError = o.error
    row.leaseOwner = null
    row.leaseUntil = null
    row.leaseUntilMs = null
    if (row.attempts >= o.maxAttempts) {
      row.status = 'dead'
    } else {
      row.availableAtMs = now + o.backoffMs
      row.availableAt = iso(row.availableAtMs)
    }
    return row.status === 'dead' ? 'dead' : 'pending'
  }

  async release(owner: string, eventIds: readonly string[]): Promise<number> {
    const held = validateHeldEvents(owner, eventIds)
    this.assertUsable()
    const now = Date.now()
    let released = 0
    for (const id of new Set(held.eventIds)) {
      const row = this.#held(held.owner, id, now)
      if (!row) continue
      row.leaseOwner = null
      row.leaseUntil = null
      row.leaseUntilMs = null
      released++
    }
    return released
  }

  async settle(options: SettleOptions): Promise<SettleResult> {
    const o = validateSettleOptions(options)
    this.assertUsable()
    const now = Date.now()
    const result = new Map<string, 'published' | 'pending' | 'dead' | 'released' | 'lost'>()
    for (const item of o.items) {
      const row = this.#held(o.owner, item.eventId, now)
      if (!row || row.tenantId !== item.tenantId) {
        result.set(item.eventId, 'lost')
        continue
      }
      row.leaseOwner = null
      row.leaseUntil = null
      row.leaseUntilMs = null
      if (item.outcome === 'published') {
        row.status = 'published'
        row.publishedAtMs = now
        row.publishedAt = iso(now)
        result.set(item.eventId, 'published')
      } else if (item.outcome === 'released') {
        result.set(item.eventId, 'released')
      } else {
        row.attempts += 1
        row.lastError = item.error
        if (row.attempts >= o.maxAttempts) row.status = 'dead'
        else {
          row.availableAtMs = now + item.backoffMs
          row.availableAt = iso(row.availableAtMs)
        }
        result.set(item.eventId, row.status === 'dead' ? 'dead' : 'pending')
      }
    }
    return result
  }

  async retryDead(eventId: string): Promise<boolean> {
    assertId(eventId, 'eventId')
    this.assertUsable()
    const row = this.rows.find((r) => r.id === eventId && r.status === 'dead')
    if (!row) return false
    row.status = 'pending'
    row.attempts = 0
    row.availableAtMs = Date.now()
    row.availableAt = iso(row.availableAtMs)
    return true
  }

  async discardDead(eventId: string): Promise<boolean> {
    assertId(eventId, 'eventId')
    this.assertUsable()
    const row = this.rows.find((r) => r.id === eventId && r.status === 'dead')
    if (!row) return false
    row.status = 'discarded'
    return true
  }

  async purgePublished(olderThanMs: number, limit: number): Promise<number> {
    const o = validatePurgePublished(olderThanMs, limit)
    this.assertUsable()
    const cutoff = Date.now() - o.olderThanMs
    let removed = 0
    for (let i = 0; i < this.rows.length && removed < limit; ) {
      const row = this.rows[i]!
      if (row.status === 'published' && row.publishedAtMs !== null && row.publishedAtMs < cutoff) {
        this.rows.splice(i, 1)
        removed++
      } else {
        i++
      }
    }
    return removed
  }

  async lag(): Promise<OutboxLag> {
    this.assertUsable()
    const now = Date.now()
    let pending = 0
    let dead = 0
    let oldest = now
    for (const r of this.rows) {
      if (r.status === 'pending') {
        pending++
        oldest = Math.min(oldest, Date.parse(r.occurredAt))
      } else if (r.status === 'dead') dead++
    }
    return { pending, dead, oldestPendingAgeMs: pending === 0 ? 0 : now - oldest }
  }

  async get(eventId: string): Promise<OutboxEntry | null> {
    assertId(eventId, 'eventId')
    this.assertUsable()
    const row = this.rows.find((r) => r.id === eventId)
    return row ? toEntry(row) : null
  }

  async listForAggregate(tenantId: string, aggregateId: string): Promise<OutboxEntry[]> {
    assertId(tenantId, 'tenantId')
    assertId(aggregateId, 'aggregateId')
    this.assertUsable()
    return this.rows
      .filter((r) => r.tenantId === tenantId && r.aggregateId === aggregateId)
      .sort((a, b) => a.sequence - b.sequence || a.position - b.position)
      .map(toEntry)
  }

  async list(query: ListOutboxQuery): Promise<Page<OutboxEntry>> {
    const q = validateListOutboxQuery(query)
    this.assertUsable()
    const rows = this.rows
      .filter(
        (r) =>
          r.status === q.status &&
          (q.tenantId === undefined || r.tenantId === q.tenantId) &&
          (q.aggregateId === undefined || r.aggregateId === q.aggregateId) &&
          (q.after === undefined || compareListKeys(r, q.after) > 0),
      )
      .sort(compareListKeys)
    const items = rows.slice(0, q.limit)
    const last = items[items.length - 1]
    return {
      items: items.map(toEntry),
      nextCursor: rows.length > q.limit && last ? encodeListCursor(last, q) : null,
    }
  }

  async subscribe(onCommit: () => void): Promise<OutboxSubscription> {
    this.assertUsable()
    this.#wakes.add(onCommit)
    return {
      close: async () => {
        this.#wakes.delete(onCommit)
      },
    }
  }

  /** Called by the store after a commit that wrote events: wakes subscribers after the commit returns. */
  committed(): void {
    this.#wakes.signal()
  }

  #held(owner: string, eventId: string, now: number): OutboxRow | undefined {
    return this.rows.find(
      (r) =>
        r.id === eventId &&
        r.status === 'pending' &&
        r.leaseOwner === owner &&
        r.leaseUntilMs !== null &&
        r.leaseUntilMs > now,
    )
  }
}
