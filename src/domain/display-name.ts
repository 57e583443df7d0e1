import { ValidationError } from './errors.js'
import { assertString } from './validation.js'

// Control characters (C0, C1, line and paragraph separators) and the bidirectional embeddings, overrides and
// isolates that reorder how text around them is shown (a name that reads as another in an admin screen or a log).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is matched
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

/** A name people read (a tenant's): text as `assertString` takes it, not blank, and nothing that is not shown. */
export function assertDisplayName(value: unknown, field: string, maxLength: number): asserts value is string {
  assertString(value, field, maxLength)
  if (value.trim().length === 0)
    throw new ValidationError(`${field} must not be blank`, { details: { field } })
  if (UNSHOWABLE.test(value)) {
    throw new ValidationError(`${field} has control or text-direction characters`, { details: { field } })
  }
}
