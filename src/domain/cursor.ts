import { ValidationError } from './errors.js'
import { LIMITS } from './limits.js'
import { assertId, isStorableText } from './validation.js'

/**
 * Opaque keyset cursors: base64url of a small JSON document. Decoding validates the shape, so a forged
 * cursor is a ValidationError, never a query fragment.
 *
 * Two shapes: an id cursor (`{ a: id }`: the last user of an id-ordered page, or the last audit record listed)
 * and a value cursor (`{ v: value }`: the last matched identifier value of a prefix search). One shape is
 * refused where the other is expected, so a search cursor cannot be replayed into a plain listing.
 */
export function encodeCursor(after: string): string {
  return Buffer.from(JSON.stringify({ a: after })).toString('base64url')
}

/** The cursor of a prefix search: the last identifier value listed. */
export function encodeValueCursor(value: string): string {
  return Buffer.from(JSON.stringify({ v: value })).toString('base64url')
}

const invalid = () => new ValidationError('cursor is not valid', { details: { field: 'cursor' } })

function decode(cursor: unknown, maxLength: number): Record<string, unknown> {
  if (
    typeof cursor !== 'string' ||
    cursor.length === 0 ||
    cursor.length > maxLength ||
    !/^[A-Za-z0-9_-]+$/.test(cursor)
  ) {
    throw invalid()
  }
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid()
  return doc as Record<string, unknown>
}

export function decodeIdCursor(cursor: unknown): string {
  const after = decode(cursor, 200).a
  try {
    assertId(after, 'cursor')
  } catch {
    throw invalid()
  }
  return after
}

// base64url of {"v":"..."} with an identifier value of up to 4 x emailLength UTF-16 units, each at most
// 6 bytes of JSON (a \uXXXX escape): generous, and still bounded.
const VALUE_CURSOR_MAX = Math.ceil(((LIMITS.emailLength * 4 * 6 + 10) * 4) / 3)

export function decodeValueCursor(cursor: unknown): string {
  const value = decode(cursor, VALUE_CURSOR_MAX).v
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > LIMITS.emailLength * 4 ||
    !isStorableText(value)
  ) {
    throw invalid()
  }
  return value
}
