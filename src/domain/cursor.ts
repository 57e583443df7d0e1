import { ValidationError } from './errors.js'
import { assertId } from './validation.js'

/**
 * Opaque keyset cursors: base64url of a small JSON document. Decoding validates the shape, so a forged
 * cursor is a ValidationError, never a query fragment.
 */
export function encodeCursor(after: string | number): string {
  return Buffer.from(JSON.stringify({ a: after })).toString('base64url')
}

function decode(cursor: unknown): unknown {
  if (
    typeof cursor !== 'string' ||
    cursor.length === 0 ||
    cursor.length > 200 ||
    !/^[A-Za-z0-9_-]+$/.test(cursor)
  ) {
    throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
  }
  try {
    return (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { a?: unknown }).a
  } catch {
    throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
  }
}

export function decodeIdCursor(cursor: unknown): string {
  const after = decode(cursor)
  try {
    assertId(after, 'cursor')
  } catch {
    throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
  }
  return after
}

export function decodeSeqCursor(cursor: unknown): number {
  const after = decode(cursor)
  if (typeof after !== 'number' || !Number.isSafeInteger(after) || after < 0) {
    throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
  }
  return after
}
