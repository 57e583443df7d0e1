import { createHash } from 'node:crypto'
import { ErrorCode, UserEngineError } from '../domain/errors.js'
import type { UserEngineStore } from '../store/store.js'
import type { ThrottlePolicy, ThrottleState } from '../store/throttle.js'

/** Throttle keys are digests: the store never holds the email, username or IP they stand for. */
export function throttleKey(kind: 'identifier' | 'user' | 'caller', value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('hex')}`
}

export const isCallerKey = (key: string) => key.startsWith('caller:')

export function throttled(retryAfterMs: number): UserEngineError {
  return new UserEngineError(ErrorCode.THROTTLED, 'too many failed attempts; retry later', {
    details: { retryAfterMs },
  })
}

/** How long the longest lock among `states` still runs at `now` (0: none). */
export function lockedFor(states: readonly ThrottleState[], now: number): number {
  let ms = 0
  for (const s of states) {
    if (s.lockedUntil !== null) ms = Math.max(ms, Date.parse(s.lockedUntil) - now)
  }
  return ms
}

/**
 * Claims the attempt about to be checked on the keys that already count failures, before the check: their
 * count goes up now (a failed check then records nothing more; a passed one clears it as always). Each
 * attempt so gets its own number from the store, across processes, and only numbers up to `lockAfter` are
 * checked; past the lock's first period, only the attempt right after the one the caller read. Any other is
 * THROTTLED, unchecked. Without this, each process could let one attempt through at the lock while the
 * count was one short of it. Keys with no failure are not claimed: a first attempt costs no write.
 * Returns the keys claimed (never the caller's key: a passed check does not clear that one).
 */
export async function claimAttempt(
  store: { recordFailure: UserEngineStore['throttle']['recordFailure'] },
  tenantId: string,
  keys: readonly string[],
  states: readonly ThrottleState[],
  policy: ThrottlePolicy,
  now: number,
): Promise<string[]> {
  const before = new Map(states.map((s) => [s.key, s.failures]))
  const due = keys.filter((k) => !isCallerKey(k) && (before.get(k) ?? 0) > 0)
  if (due.length === 0) return []
  const after = await store.recordFailure(tenantId, due, policy, new Date(now))
  for (const s of after) {
    if (s.failures > policy.lockAfter && s.failures !== (before.get(s.key) ?? 0) + 1) {
      throw throttled(Math.max(1, lockedFor([s], now)))
    }
  }
  return due
}

/**
 * Attempts at one secret run one at a time in this process. The throttle reads the lock before hashing
 * and counts a failure after the check, so attempts already in flight all read "not locked": 40 parallel
 * guesses at one email were all checked. One at a time per identifier (or user), each attempt reads the
 * count the one before it left, so at most `lockAfter` are checked before the lock; across processes,
 * claimAttempt keeps that bound once a key counts a failure (a burst at a key with no failure yet checks at
 * most lockAfter + N - 1 across N processes). Correct attempts are never refused for their own concurrency,
 * and attempts of one user no longer race each other's commits (VERSION_CONFLICT). Other keys run in
 * parallel. The engine also lines up here the retries of units that collided on one record
 * (EngineContext.unit).
 */
export class OneAtATime {
  readonly #tails = new Map<string, Promise<void>>()

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(fn)
    const tail = result.then(
      () => {},
      () => {},
    )
    this.#tails.set(key, tail)
    // The last in line removes the key, so the map holds only keys with attempts in flight.
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return result
  }
}
