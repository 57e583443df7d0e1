import {
  assertThrottleInput,
  type ThrottleAccess,
  type ThrottlePolicy,
  type ThrottleState,
} from '../throttle.js'
import type { SqlDriver } from './driver/driver.js'
import { toStoreError } from './driver/errors.js'
import { SQL } from './sql.js'
import { isoOf } from './timestamp-text.js'

interface ThrottleDbRow {
  key: string
  failures: number
  locked_until: Date | string | null
}

const toState = (r: ThrottleDbRow): ThrottleState => ({
  key: r.key,
  failures: Number(r.failures),
  lockedUntil: r.locked_until === null ? null : isoOf(r.locked_until),
})

/** The throttle of a Postgres store: one statement per call; the row lock of ON CONFLICT keeps counts exact. */
export class PostgresThrottle implements ThrottleAccess {
  constructor(
    private readonly driver: SqlDriver,
    private readonly assertUsable: () => Promise<void>,
  ) {}

  async read(tenantId: string, keys: readonly string[]): Promise<ThrottleState[]> {
    assertThrottleInput(tenantId, keys)
    if (keys.length === 0) return []
    const rows = await this.#query<ThrottleDbRow>('read', SQL.throttle.read, [tenantId, [...keys]])
    const byKey = new Map(rows.map((r) => [r.key, toState(r)]))
    return keys.flatMap((k) => byKey.get(k) ?? [])
  }

  async recordFailure(
    tenantId: string,
    keys: readonly string[],
    policy: ThrottlePolicy,
    now: Date,
  ): Promise<ThrottleState[]> {
    assertThrottleInput(tenantId, keys, policy, now)
    const unique = [...new Set(keys)]
    if (unique.length === 0) return []
    const rows = await this.#query<ThrottleDbRow>('recordFailure', SQL.throttle.recordFailure, [
      tenantId,
      unique,
      now,
      policy.windowMs,
      policy.lockAfter,
      policy.baseLockMs,
      policy.maxLockMs,
    ])
    const byKey = new Map(rows.map((r) => [r.key, toState(r)]))
    return unique.map((k) => byKey.get(k)!)
  }

  async clear(tenantId: string, keys: readonly string[]): Promise<void> {
    assertThrottleInput(tenantId, keys)
    if (keys.length === 0) return
    await this.#query('clear', SQL.throttle.clear, [tenantId, [...keys]])
  }

  async #query<R>(what: string, sql: string, params: readonly unknown[]): Promise<R[]> {
    await this.assertUsable()
    try {
      return (await this.driver.query<R>(sql, params)).rows
    } catch (error) {
      throw toStoreError(error, `throttle ${what}`)
    }
  }
}
