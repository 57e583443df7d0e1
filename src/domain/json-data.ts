import { ValidationError } from './errors.js'
import { isStorableText } from './validation.js'

// Deeper JSON than any record or payload needs, and well inside what jsonb and a recursive walk take.
const MAX_JSON_DEPTH = 64

/** Every string in a parsed JSON value (keys included) is storable text, nested at most MAX_JSON_DEPTH deep. */
function isStorableJson(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return isStorableText(value)
  if (typeof value !== 'object' || value === null) return true
  if (depth >= MAX_JSON_DEPTH) return false
  if (Array.isArray(value)) return value.every((v) => isStorableJson(v, depth + 1))
  return Object.entries(value).every(([k, v]) => isStorableText(k) && isStorableJson(v, depth + 1))
}

/**
 * A value as the JSON a store keeps: `JSON.stringify` of it, parsed back, so every store holds the same data (a
 * Date becomes its ISO text, an undefined property is dropped). A bigint, a cycle, a `toJSON` that throws, a
 * value with no JSON form, nesting past 64 levels or text Postgres cannot store is a ValidationError naming
 * `field`; the caller's own error is never shown (it may hold the value).
 */
export function jsonData(value: unknown, field: string, what: string): { data: unknown; bytes: number } {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch {
    throw new ValidationError(`${what} is not JSON data (a bigint, a cycle, or a toJSON that throws)`, {
      details: { field },
    })
  }
  if (text === undefined) {
    throw new ValidationError(`${what} is not JSON data`, { details: { field } })
  }
  const data: unknown = JSON.parse(text)
  if (!isStorableJson(data)) {
    throw new ValidationError(`${what} has characters that cannot be stored, or is nested too deep`, {
      details: { field },
    })
  }
  return { data, bytes: Buffer.byteLength(text) }
}
