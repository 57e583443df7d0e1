import type { OutboxEntry, OutboxStatus } from '../../domain/records.js'
import { assertId, assertPositiveInt } from '../../domain/validation.js'
import type { ClaimOptions, FailOptions, OutboxAccess, OutboxLag } from '../store.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** An outbox entry as the memory store keeps it: mutable delivery state plus numeric times. */
export type OutboxRow = Mutable<OutboxEntry> & {
  availableAtMs: number
  leaseUntilMs: number | null
  publishedAtMs: number | null
}

const BLOCKING: ReadonlySet<OutboxStatus> = new Set(['pending', 'dead'])
const iso = (ms: number) => new Date(ms).toISOString()

function toEntry(row: OutboxRow): OutboxEntry {
  const { availableAtMs: _a, leaseUntilMs: _l, publishedAtMs: _p, ...entry } = row
  return structuredClone(entry)
}

/** The reference outbox: the same claim-by-state rules the SQL store enforces with SKIP LOCKED. */
export class InMemoryOutbox implements OutboxAccess {
  constructor(
    private readonly rows: OutboxRow[],
    private readonly assertUsable: () => void,
  ) {}

  async claim(options: ClaimOptions): Promise<OutboxEntry[]> {
    assertId(options.owner, 'owner')
    assertPositiveInt(options.limit, 'limit', 10_000)
    assertPositiveInt(options.leaseMs, 'leaseMs')
    this.assertUsable()
    const now = Date.now()
    const claimed: OutboxRow[] = []
    const due = this.rows
      .filter(
        (r) =>
          r.status === 'pending' &&
          r.availableAtMs <= now &&
          (r.leaseUntilMs === null || r.leaseUntilMs <= now),
      )
      .sort((a, b) => a.availableAtMs - b.availableAtMs)
    for (const row of due) {
      if (claimed.length >= options.limit) break
      if (!this.#isHead(row)) continue
      row.leaseOwner = options.owner
      row.leaseUntilMs = now + options.leaseMs
      row.leaseUntil = iso(row.leaseUntilMs)
      claimed.push(row)
    }
    return claimed.map(toEntry)
  }

  async acknowledge(owner: string, eventIds: readonly string[]): Promise<string[]> {
    this.assertUsable()
    const now = Date.now()
    const done: string[] = []
    for (const id of eventIds) {
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
    assertPositiveInt(options.maxAttempts, 'maxAttempts')
    this.assertUsable()
    const now = Date.now()
    const row = this.#held(options.owner, options.eventId, now)
    if (!row) return null
    row.attempts += 1
    row.lastError = options.error.slice(0, 500)
    row.leaseOwner = null
    row.leaseUntil = null
    row.leaseUntilMs = null
    if (row.attempts >= options.maxAttempts) {
      row.status = 'dead'
    } else {
      row.availableAtMs = now + Math.max(0, options.backoffMs)
      row.availableAt = iso(row.availableAtMs)
    }
    return row.status === 'dead' ? 'dead' : 'pending'
  }

  async release(owner: string, eventIds: readonly string[]): Promise<number> {
    this.assertUsable()
    const now = Date.now()
    let released = 0
    for (const id of eventIds) {
      const row = this.#held(owner, id, now)
      if (!row) continue
      row.leaseOwner = null
      row.leaseUntil = null
      row.leaseUntilMs = null
      released++
    }
    return released
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
    assertPositiveInt(limit, 'limit', 100_000)
    this.assertUsable()
    const cutoff = Date.now() - olderThanMs
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

  #isHead(row: OutboxRow): boolean {
    return !this.rows.some(
      (o) =>
        o !== row &&
        o.tenantId === row.tenantId &&
        o.aggregateType === row.aggregateType &&
        o.aggregateId === row.aggregateId &&
        BLOCKING.has(o.status) &&
        (o.sequence < row.sequence || (o.sequence === row.sequence && o.position < row.position)),
    )
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
