// @ts-check
// Failed sign-in counts (ThrottleAccess). Each call is one SQLite transaction run synchronously, so a
// read-modify-write of a key cannot interleave with another caller's: N calls leave failures = N.
import { assertThrottleInput, nextThrottleState } from 'user-engine'

/** @typedef {import('user-engine').ThrottleAccess} ThrottleAccess */

/** @implements {ThrottleAccess} */
export class SqliteThrottle {
  /**
   * @param {import('./database.js').SqliteDatabase} db
   * @param {() => void} assertUsable
   */
  constructor(db, assertUsable) {
    this.db = db
    this.assertUsable = assertUsable
  }

  /** @param {string} tenantId @param {readonly string[]} keys */
  async read(tenantId, keys) {
    assertThrottleInput(tenantId, keys)
    this.assertUsable()
    /** @type {import('user-engine').ThrottleState[]} */
    const out = []
    for (const key of keys) {
      const row = this.db.get(
        'SELECT failures, locked_until FROM ue_throttle WHERE tenant_id = ? AND key = ?',
        [tenantId, key],
      )
      if (row)
        out.push({
          key,
          failures: Number(row.failures),
          lockedUntil: /** @type {string|null} */ (row.locked_until),
        })
    }
    return out
  }

  /**
   * @param {string} tenantId @param {readonly string[]} keys
   * @param {import('user-engine').ThrottlePolicy} policy @param {Date} now
   */
  async recordFailure(tenantId, keys, policy, now) {
    assertThrottleInput(tenantId, keys, policy, now)
    this.assertUsable()
    // Each distinct key once, in the caller's order (the whole call is one transaction, so order cannot deadlock).
    return this.db.atomically(() =>
      [...new Set(keys)].map((key) => {
        const row = this.db.get(
          'SELECT failures, last_failure_ms FROM ue_throttle WHERE tenant_id = ? AND key = ?',
          [tenantId, key],
        )
        const previous = row
          ? { failures: Number(row.failures), lastFailureAt: Number(row.last_failure_ms) }
          : undefined
        const next = nextThrottleState(previous, policy, now)
        this.db.run(
          `INSERT INTO ue_throttle (tenant_id, key, failures, last_failure_ms, locked_until) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (tenant_id, key) DO UPDATE SET failures = excluded.failures,
             last_failure_ms = excluded.last_failure_ms, locked_until = excluded.locked_until`,
          [tenantId, key, next.failures, now.getTime(), next.lockedUntil],
        )
        return { key, ...next }
      }),
    )
  }

  /** @param {string} tenantId @param {readonly string[]} keys */
  async clear(tenantId, keys) {
    assertThrottleInput(tenantId, keys)
    this.assertUsable()
    this.db.atomically(() => {
      for (const key of keys)
        this.db.run('DELETE FROM ue_throttle WHERE tenant_id = ? AND key = ?', [tenantId, key])
    })
  }
}
