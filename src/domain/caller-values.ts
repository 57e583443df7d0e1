// Reading what a caller hands over (arrays, signals, objects behind proxies or getters): once, bounded, and
// with the caller's own errors turned into VALIDATION that does not repeat their text.
import { UserEngineError, ValidationError } from './errors.js'

/**
 * What to throw when reading a caller's value threw: our own error as it is; the caller's getter or proxy
 * error as a ValidationError naming `field`, its text not shown (it may hold the value it guarded).
 */
export function unreadable(error: unknown, field: string): UserEngineError {
  if (error instanceof UserEngineError) return error
  return new ValidationError(`${field} could not be read`, { details: { field } })
}

/** Runs `read` over a caller's value (a proxy, an object with getters): a throw of theirs is VALIDATION. */
export function readingCallerValue<T>(field: string, read: () => T): T {
  try {
    return read()
  } catch (error) {
    throw unreadable(error, field)
  }
}

/**
 * A caller's array, copied: not an array, longer than `maxLength`, with a hole, or with an item `isItem`
 * refuses is a ValidationError with `message`; a proxy or element getter that throws is one naming `field`.
 * The length is checked before any element is read, so a sparse array of 2**32 - 1 is refused at once
 * instead of walked.
 */
export function plainList<T = unknown>(
  value: unknown,
  field: string,
  maxLength: number,
  message: string,
  isItem: (item: unknown) => item is T = (item): item is T => true,
): T[] {
  const invalid = () => new ValidationError(message, { details: { field } })
  return readingCallerValue(field, () => {
    if (!Array.isArray(value)) throw invalid()
    const length: unknown = value.length
    if (typeof length !== 'number' || length > maxLength) throw invalid()
    const copy: T[] = []
    for (let i = 0; i < length; i++) {
      if (!Object.hasOwn(value, i)) throw invalid()
      const item: unknown = value[i]
      if (!isItem(item)) throw invalid()
      copy.push(item)
    }
    return copy
  })
}

/**
 * An AbortSignal, or anything shaped like one (`aborted` is a boolean), or undefined: returns whether it has
 * been aborted, read afresh on each call. A getter or proxy of the caller's that throws, now or later, is
 * VALIDATION naming `field`.
 */
export function abortedReader(value: unknown, field: string): () => boolean {
  if (value === undefined) return () => false
  const invalid = () => new ValidationError(`${field} must be an AbortSignal`, { details: { field } })
  if (typeof value !== 'object' || value === null) throw invalid()
  const read = () =>
    readingCallerValue(field, () => {
      const aborted: unknown = (value as { aborted?: unknown }).aborted
      if (typeof aborted !== 'boolean') throw invalid()
      return aborted
    })
  read()
  return read
}
