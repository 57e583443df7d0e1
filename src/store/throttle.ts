import { plainList } from '../domain/caller-values.js'
import { ValidationError } from '../domain/errors.js'
import { assertId } from '../domain/validation.js'

/**
 * Failed sign-in attempts, counted per key in the store so a lockout holds across processes. A key is an
 * opaque digest the engine derives (an identifier, a user, a caller-supplied key such as an IP): the store
 * never sees the identifier or the IP itself.
 */
export interface ThrottlePolicy {
  /** The failure count that first locks the key (for `baseLockMs`); each further failure doubles it. */
  readonly lockAfter: number
  /** The first lockout. */
  readonly baseLockMs: number
  /** The longest lockout. */
  readonly maxLockMs: number
  /** A key with no failure for this long starts again from zero. */
  readonly windowMs: number
}

export interface ThrottleState {
  readonly key: string
  /** Failures counted in the current window. */
  readonly failures: number
  /** ISO time until which the key is locked; null when it is not. */
  readonly lockedUntil: string | null
}

/**
 * MUST rules (the harness's `throttle` suite checks each):
 * 1. `recordFailure` counts exactly one failure per key per call, atomically: N concurrent calls on one key,
 *    from any number of processes, leave `failures` = N.
 * 2. The new state follows `nextThrottleState` exactly: the count restarts at 1 when the last failure is at
 *    least `windowMs` before `now`, and `lockedUntil` is `lockUntil(failures, policy, now)`.
 * 3. `read` returns the stored state of the keys that have one (others are omitted), `clear` forgets keys.
 *    Both are scoped to the tenant: a key of another tenant is invisible and untouched.
 */
export interface ThrottleAccess {
  read(tenantId: string, keys: readonly string[]): Promise<ThrottleState[]>
  recordFailure(
    tenantId: string,
    keys: readonly string[],
    policy: ThrottlePolicy,
    now: Date,
  ): Promise<ThrottleState[]>
  clear(tenantId: string, keys: readonly string[]): Promise<void>
}

/** The lockout after `failures` failures: none below `lockAfter`, then base, 2 x base, ... up to max. */
export function lockUntil(failures: number, policy: ThrottlePolicy, now: Date): string | null {
  if (failures < policy.lockAfter) return null
  const exponent = Math.min(failures - policy.lockAfter, 40)
  const ms = Math.min(policy.maxLockMs, policy.baseLockMs * 2 ** exponent)
  return new Date(now.getTime() + ms).toISOString()
}

/** A key's state after one more failure at `now`; `previous` is its stored state, if any. */
export function nextThrottleState(
  previous: { failures: number; lastFailureAt: number } | undefined,
  policy: ThrottlePolicy,
  now: Date,
): { failures: number; lockedUntil: string | null } {
  const fresh = previous === undefined || previous.lastFailureAt <= now.getTime() - policy.windowMs
  const failures = fresh ? 1 : previous.failures + 1
  return { failures, lockedUntil: lockUntil(failures, policy, now) }
}

const KEY_PATTERN = /^[a-z]{1,16}:[0-9a-f]{64}$/
const MAX_KEYS = 8

/** Checks what every store's throttle receives; a store calls it first so bad input is VALIDATION everywhere. */
export function assertThrottleInput(tenantId: unknown, keys: unknown, policy?: unknown, now?: unknown): void {
  assertId(tenantId, 'tenantId')
  plainList(
    keys,
    'keys',
    MAX_KEYS,
    `keys must be at most ${MAX_KEYS} throttle keys (kind:sha256 hex)`,
    (k): k is string => typeof k === 'string' && KEY_PATTERN.test(k),
  )
  if (policy !== undefined) assertThrottlePolicy(policy)
  if (now !== undefined && !(now instanceof Date && Number.isFinite(now.getTime()))) {
    throw new ValidationError('now must be a valid Date', { details: { field: 'now' } })
  }
}

const DAY_MS = 86_400_000

export function assertThrottlePolicy(policy: unknown): asserts policy is ThrottlePolicy {
  const p = (typeof policy === 'object' && policy !== null ? policy : {}) as Record<string, unknown>
  const bounds: Record<keyof ThrottlePolicy, number> = {
    lockAfter: 1000,
    baseLockMs: DAY_MS,
    maxLockMs: 30 * DAY_MS,
    windowMs: 30 * DAY_MS,
  }
  for (const [field, max] of Object.entries(bounds)) {
    const value = p[field]
    const min = field === 'lockAfter' ? 1 : 0
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ValidationError(`throttle.${field} must be an integer from ${min} to ${max}`, {
        details: { field: `throttle.${field}` },
      })
    }
  }
  if ((p.maxLockMs as number) < (p.baseLockMs as number)) {
    throw new ValidationError('throttle.maxLockMs must be at least baseLockMs', {
      details: { field: 'throttle.maxLockMs' },
    })
  }
}
