// @ts-check
// The relay's view of the outbox (OutboxAccess), across tenants. Claims are by state, never by a cursor: an
// event is claimable while it is pending, due and unleased (or its lease expired), and only as part of its
// aggregate's ready prefix. Each call runs its statements in one synchronous SQLite transaction, so two
// claims in this process never see the same unleased row (isolation from SQLite's single writer and sql.js's
// synchronous calls). The store declares isolatedClaims: false all the same: no relay in another process can
// reach a sql.js database, so claims across processes are not something it offers.
import { assertId } from 'user-engine'
import {
  assertInt,
  claimOptions,
  encodeOutboxCursor,
  lastErrorText,
  listOutboxQuery,
  settleOptions,
} from './checks.js'

/**
 * @typedef {import('./database.js').Row} Row
 * @typedef {import('user-engine').OutboxEntry} OutboxEntry
 */

const iso = (/** @type {number} */ ms) => new Date(ms).toISOString()

/** @param {Row} r @returns {OutboxEntry} */
function toEntry(r) {
  return {
    id: String(r.id),
    tenantId: String(r.tenant_id),
    aggregateType: /** @type {'tenant' | 'user'} */ (r.aggregate_type),
    aggregateId: String(r.aggregate_id),
    sequence: Number(r.sequence),
    position: Number(r.position),
    type: String(r.type),
    payload: JSON.parse(String(r.payload)),
    occurredAt: String(r.occurred_at),
    status: /** @type {import('user-engine').OutboxStatus} */ (r.status),
    attempts: Number(r.attempts),
    availableAt: iso(Number(r.available_at_ms)),
    leaseOwner: r.lease_owner === null ? null : String(r.lease_owner),
    leaseUntil: r.lease_until_ms === null ? null : iso(Number(r.lease_until_ms)),
    publishedAt: r.published_at_ms === null ? null : iso(Number(r.published_at_ms)),
    lastError: r.last_error === null ? null : String(r.last_error),
  }
}

/** (sequence, position) order within one aggregate. @param {Row} a @param {Row} b */
const bySequence = (a, b) =>
  Number(a.sequence) - Number(b.sequence) || Number(a.position) - Number(b.position)

/** @param {Row} r @param {number} now */
const claimable = (r, now) =>
  r.status === 'pending' &&
  Number(r.available_at_ms) <= now &&
  (r.lease_until_ms === null || Number(r.lease_until_ms) <= now)

/** @typedef {import('user-engine').OutboxAccess} OutboxAccess */

/** @implements {OutboxAccess} */
export class SqliteOutbox {
  /**
   * @param {import('./database.js').SqliteDatabase} db
   * @param {() => void} assertUsable
   * @param {Set<() => void>} wakes subscribers of every store open over this database
   */
  constructor(db, assertUsable, wakes) {
    this.db = db
    this.assertUsable = assertUsable
    this.wakes = wakes
  }

  /** An aggregate's pending and dead events in order: its head first. @param {Row} r */
  #queueOf(r) {
    return this.db.all(
      `SELECT * FROM ue_outbox WHERE tenant_id = ? AND aggregate_type = ? AND aggregate_id = ?
         AND status IN ('pending', 'dead') ORDER BY sequence, position`,
      [r.tenant_id, r.aggregate_type, r.aggregate_id],
    )
  }

  /** @param {import('user-engine').ClaimOptions} options */
  async claim(options) {
    const o = claimOptions(options)
    this.assertUsable()
    return this.db.atomically(() => {
      const now = Date.now()
      const aggregateKey = (/** @type {Row} */ r) =>
        `${r.tenant_id}\u0000${r.aggregate_type}\u0000${r.aggregate_id}`
      /** The ready events of `queue` from `from`, at most perAggregate, stopping at the first that is not. */
      const runFrom = (/** @type {Row[]} */ queue, /** @type {number} */ from) => {
        const run = []
        for (let i = from; i < queue.length && run.length < o.perAggregate; i++) {
          if (!claimable(queue[i], now)) break
          run.push(queue[i])
        }
        return run
      }
      /** @type {Row[][]} */
      const runs = []
      const continued = new Set()
      // Continuations (rule 5): the ready events after the named one, while every earlier pending event of
      // the aggregate is this owner's; the head's lease is renewed so nobody else starts the aggregate.
      for (const cursor of o.continueAfter) {
        const at = this.db.get('SELECT * FROM ue_outbox WHERE tenant_id = ? AND id = ?', [
          cursor.tenantId,
          cursor.eventId,
        ])
        if (!at) continue
        continued.add(aggregateKey(at))
        const queue = this.#queueOf(at)
        if (queue.length === 0) continue
        const head = queue[0]
        const held = bySequence(head, at) <= 0
        if (
          held &&
          !(head.lease_owner === o.owner && head.lease_until_ms !== null && Number(head.lease_until_ms) > now)
        )
          continue
        const from = queue.findIndex((r) => bySequence(r, at) > 0)
        if (from === -1) continue
        const run = runFrom(queue, from)
        if (run.length === 0) continue
        if (held) {
          const until = Math.max(Number(head.lease_until_ms ?? 0), now + o.leaseMs)
          this.db.run('UPDATE ue_outbox SET lease_until_ms = ? WHERE seq = ?', [until, head.seq])
        }
        runs.push(run)
      }
      // New aggregates: heads (no earlier pending or dead event of their aggregate) that are claimable, oldest
      // due first, read from the pending-by-aggregate index.
      if (o.newAggregates > 0) {
        const heads = this.db.all(
          `SELECT o.* FROM ue_outbox o
            WHERE o.status = 'pending' AND o.available_at_ms <= ?
              AND (o.lease_until_ms IS NULL OR o.lease_until_ms <= ?)
              AND NOT EXISTS (
                SELECT 1 FROM ue_outbox p
                 WHERE p.tenant_id = o.tenant_id AND p.aggregate_type = o.aggregate_type
                   AND p.aggregate_id = o.aggregate_id AND p.status IN ('pending', 'dead')
                   AND (p.sequence < o.sequence OR (p.sequence = o.sequence AND p.position < o.position)))
            ORDER BY o.available_at_ms, o.seq
            LIMIT ?`,
          [now, now, o.newAggregates + continued.size],
        )
        for (const head of heads.filter((h) => !continued.has(aggregateKey(h))).slice(0, o.newAggregates)) {
          runs.push(runFrom(this.#queueOf(head), 0))
        }
      }
      // Oldest first across aggregates, each run whole and in order; the limit cuts the last one short.
      runs.sort((a, b) => Number(a[0].available_at_ms) - Number(b[0].available_at_ms))
      const leaseUntil = now + o.leaseMs
      /** @type {OutboxEntry[]} */
      const claimed = []
      for (const run of runs) {
        for (const row of run) {
          if (claimed.length >= o.limit) break
          this.db.run('UPDATE ue_outbox SET lease_owner = ?, lease_until_ms = ? WHERE seq = ?', [
            o.owner,
            leaseUntil,
            row.seq,
          ])
          claimed.push(toEntry({ ...row, lease_owner: o.owner, lease_until_ms: leaseUntil }))
        }
      }
      return claimed
    })
  }

  /** The row of an event whose lease `owner` still holds. @param {string} owner @param {string} eventId @param {number} now */
  #held(owner, eventId, now) {
    return this.db.get(
      `SELECT * FROM ue_outbox WHERE id = ? AND status = 'pending' AND lease_owner = ? AND lease_until_ms > ?`,
      [eventId, owner, now],
    )
  }

  /** @param {string} owner @param {readonly string[]} eventIds */
  async acknowledge(owner, eventIds) {
    this.assertUsable()
    return this.db.atomically(() => {
      const now = Date.now()
      const done = []
      for (const id of eventIds) {
        const row = this.#held(owner, id, now)
        if (!row) continue
        this.#publish(row, now)
        done.push(id)
      }
      return done
    })
  }

  /** @param {import('user-engine').FailOptions} options */
  async fail(options) {
    assertInt(options.maxAttempts, 'maxAttempts', 1, Number.MAX_SAFE_INTEGER)
    this.assertUsable()
    return this.db.atomically(() => {
      const now = Date.now()
      const row = this.#held(options.owner, options.eventId, now)
      if (!row) return null
      return this.#failed(
        row,
        String(options.error),
        Math.max(0, options.backoffMs),
        options.maxAttempts,
        now,
      )
    })
  }

  /** @param {string} owner @param {readonly string[]} eventIds */
  async release(owner, eventIds) {
    this.assertUsable()
    return this.db.atomically(() => {
      const now = Date.now()
      let released = 0
      for (const id of eventIds) {
        const row = this.#held(owner, id, now)
        if (!row) continue
        this.db.run('UPDATE ue_outbox SET lease_owner = NULL, lease_until_ms = NULL WHERE seq = ?', [row.seq])
        released++
      }
      return released
    })
  }

  /** @param {import('user-engine').SettleOptions} options */
  async settle(options) {
    const o = settleOptions(options)
    this.assertUsable()
    return this.db.atomically(() => {
      const now = Date.now()
      /** @type {Map<string, 'published' | 'pending' | 'dead' | 'released' | 'lost'>} */
      const result = new Map()
      for (const item of o.items) {
        const row = this.#held(o.owner, item.eventId, now)
        if (!row || row.tenant_id !== item.tenantId) {
          result.set(item.eventId, 'lost')
        } else if (item.outcome === 'published') {
          this.#publish(row, now)
          result.set(item.eventId, 'published')
        } else if (item.outcome === 'released') {
          this.db.run('UPDATE ue_outbox SET lease_owner = NULL, lease_until_ms = NULL WHERE seq = ?', [
            row.seq,
          ])
          result.set(item.eventId, 'released')
        } else {
          result.set(
            item.eventId,
            this.#failed(row, item.error ?? '', item.backoffMs ?? 0, o.maxAttempts, now),
          )
        }
      }
      return result
    })
  }

  /** @param {Row} row @param {number} now */
  #publish(row, now) {
    this.db.run(
      `UPDATE ue_outbox SET status = 'published', published_at_ms = ?, lease_owner = NULL, lease_until_ms = NULL
        WHERE seq = ?`,
      [now, row.seq],
    )
  }

  /**
   * One failed attempt: dead at maxAttempts, otherwise due again after the backoff.
   * @param {Row} row @param {string} error @param {number} backoffMs @param {number} maxAttempts @param {number} now
   * @returns {'pending' | 'dead'}
   */
  #failed(row, error, backoffMs, maxAttempts, now) {
    const attempts = Number(row.attempts) + 1
    const dead = attempts >= maxAttempts
    this.db.run(
      `UPDATE ue_outbox SET attempts = ?, last_error = ?, lease_owner = NULL, lease_until_ms = NULL,
         status = ?, available_at_ms = ? WHERE seq = ?`,
      [
        attempts,
        lastErrorText(error),
        dead ? 'dead' : 'pending',
        dead ? Number(row.available_at_ms) : now + backoffMs,
        row.seq,
      ],
    )
    return dead ? 'dead' : 'pending'
  }

  /** @param {string} eventId */
  async retryDead(eventId) {
    assertId(eventId, 'eventId')
    this.assertUsable()
    const changed = this.db.run(
      `UPDATE ue_outbox SET status = 'pending', attempts = 0, available_at_ms = ? WHERE id = ? AND status = 'dead'`,
      [Date.now(), eventId],
    )
    return changed > 0
  }

  /** @param {string} eventId */
  async discardDead(eventId) {
    assertId(eventId, 'eventId')
    this.assertUsable()
    return (
      this.db.run(`UPDATE ue_outbox SET status = 'discarded' WHERE id = ? AND status = 'dead'`, [eventId]) > 0
    )
  }

  /** @param {number} olderThanMs @param {number} limit */
  async purgePublished(olderThanMs, limit) {
    assertInt(limit, 'limit', 1, 100_000)
    this.assertUsable()
    // Only published events: a pending, dead or discarded event is never purged here.
    return this.db.run(
      `DELETE FROM ue_outbox WHERE seq IN (
         SELECT seq FROM ue_outbox WHERE status = 'published' AND published_at_ms < ? ORDER BY seq LIMIT ?)`,
      [Date.now() - olderThanMs, limit],
    )
  }

  async lag() {
    this.assertUsable()
    const now = Date.now()
    const r = this.db.get(
      `SELECT (SELECT COUNT(*) FROM ue_outbox WHERE status = 'pending') AS pending,
              (SELECT COUNT(*) FROM ue_outbox WHERE status = 'dead') AS dead,
              (SELECT MIN(occurred_at) FROM ue_outbox WHERE status = 'pending') AS oldest`,
    )
    const pending = Number(r?.pending ?? 0)
    return {
      pending,
      dead: Number(r?.dead ?? 0),
      oldestPendingAgeMs: pending === 0 ? 0 : Math.max(0, now - Date.parse(String(r?.oldest))),
    }
  }

  /** @param {string} eventId */
  async get(eventId) {
    assertId(eventId, 'eventId')
    this.assertUsable()
    const row = this.db.get('SELECT * FROM ue_outbox WHERE id = ? ORDER BY seq LIMIT 1', [eventId])
    return row ? toEntry(row) : null
  }

  /** @param {string} tenantId @param {string} aggregateId */
  async listForAggregate(tenantId, aggregateId) {
    assertId(tenantId, 'tenantId')
    assertId(aggregateId, 'aggregateId')
    this.assertUsable()
    return this.db
      .all('SELECT * FROM ue_outbox WHERE tenant_id = ? AND aggregate_id = ? ORDER BY sequence, position', [
        tenantId,
        aggregateId,
      ])
      .map(toEntry)
  }

  /** @param {import('user-engine').ListOutboxQuery} query */
  async list(query) {
    const q = listOutboxQuery(query)
    this.assertUsable()
    const where = ['status = ?']
    /** @type {import('./database.js').SqlValue[]} */
    const params = [q.status]
    if (q.tenantId !== undefined) {
      where.push('tenant_id = ?')
      params.push(q.tenantId)
    }
    if (q.aggregateId !== undefined) {
      where.push('aggregate_id = ?')
      params.push(q.aggregateId)
    }
    if (q.after !== undefined) {
      where.push('(tenant_id, aggregate_type, aggregate_id, sequence, position) > (?, ?, ?, ?, ?)')
      params.push(...q.after)
    }
    const rows = this.db.all(
      `SELECT * FROM ue_outbox WHERE ${where.join(' AND ')}
        ORDER BY tenant_id, aggregate_type, aggregate_id, sequence, position LIMIT ?`,
      [...params, q.limit + 1],
    )
    const items = rows.slice(0, q.limit).map(toEntry)
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > q.limit && last ? encodeOutboxCursor(last, q) : null }
  }

  /** An in-process wake after commits that wrote events, for relays on any store over this database. */
  async subscribe(/** @type {() => void} */ onCommit) {
    this.assertUsable()
    this.wakes.add(onCommit)
    return {
      close: async () => {
        this.wakes.delete(onCommit)
      },
    }
  }
}
