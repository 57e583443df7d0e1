import {
  assertThrottleInput,
  nextThrottleState,
  type ThrottleAccess,
  type ThrottlePolicy,
  type ThrottleState,
} from '../throttle.js'

interface ThrottleRow {
  failures: number
  lastFailureAt: number
  lockedUntil: string | null
}

/** The reference throttle: one map, each call applied in one synchronous step, so counts are exact. */
export class InMemoryThrottle implements ThrottleAccess {
  readonly #rows = new Map<string, ThrottleRow>()

  constructor(private readonly assertUsable: () => void) {}

  async read(tenantId: string, keys: readonly string[]): Promise<ThrottleState[]> {
    assertThrottleInput(tenantId, keys)
    this.assertUsable()
    return keys.flatMap((key) => {
      const row = this.#rows.get(`${tenantId}\u0000${key}`)
      return row ? [{ key, failures: row.failures, lockedUntil: row.lockedUntil }] : []
    })
  }

  async recordFailure(
    tenantId: string,
    keys: readonly string[],
    policy: ThrottlePolicy,
    now: Date,
  ): Promise<ThrottleState[]> {
    assertThrottleInput(tenantId, keys, policy, now)
    this.assertUsable()
    return [...new Set(keys)].map((key) => {
      const rowKey = `${tenantId}\u0000${key}`
      const next = nextThrottleState(this.#rows.get(rowKey), policy, now)
      this.#rows.set(rowKey, { ...next, lastFailureAt: now.getTime() })
      return { key, ...next }
    })
  }

  async clear(tenantId: string, keys: readonly string[]): Promise<void> {
    assertThrottleInput(tenantId, keys)
    this.assertUsable()
    for (const key of keys) this.#rows.delete(`${tenantId}\u0000${key}`)
  }
}
