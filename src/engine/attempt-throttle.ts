import { createHash } from 'node:crypto'
import { ErrorCode, UserEngineError } from '../domain/errors.js'
import type { ThrottleState } from '../store/throttle.js'

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
 * Attempts at one secret run one at a time in this process. The throttle reads the lock before hashing
 * and counts a failure after the check, so attempts already in flight all read "not locked": 40 parallel
 * guesses at one email were all checked. One at a time per identifier (or user), each attempt reads the
 * count the one before it left, so at most `lockAfter` are checked before the lock; across processes at
 * most one more per process. Correct attempts are never refused for their own concurrency, and attempts of
 * one user no longer race each other's commits (VERSION_CONFLICT). Other keys run in parallel. The engine
 * also lines up here the retries of units that collided on one record (EngineContext.unit).
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
