import { ValidationError } from './errors.js'
import { hasInvisibleCharacter } from './identifier-safety.js'
import { LIMITS } from './limits.js'
import { IDENTIFIER_KINDS, type IdentifierKind, type UserStatus } from './records.js'
import {
  assertOptionalBoolean,
  assertOptionalCursor,
  foldIdentifier,
  isStorableText,
  optionsObject,
  USER_STATUSES,
  validatePageSize,
} from './validation.js'

/**
 * A search by identifier prefix: users holding an identifier of `kind` whose normalized value starts with
 * `prefix`. Stores compare in Unicode code-point order (Postgres: `COLLATE "C"`), never by a locale.
 */
export interface IdentifierPrefix {
  readonly kind: IdentifierKind
  /** Already normalized, as stored values are (the engine folds it like an identifier). 1 or more characters. */
  readonly prefix: string
}

/** `listUsers`' query, checked. */
export interface ValidListUsersQuery {
  readonly limit: number
  /** Opaque; the store decodes it (`decodeIdCursor`, or `decodeValueCursor` for a prefix search). */
  readonly cursor: string | undefined
  readonly status: UserStatus | undefined
  readonly identifierPrefix: IdentifierPrefix | undefined
  readonly includeIdentifiers: boolean
}

/** `countUsers`' query, checked. */
export interface ValidCountUsersQuery {
  readonly status: UserStatus | undefined
  readonly identifierPrefix: IdentifierPrefix | undefined
}

// The longest stored identifier value a store accepts in a lookup (assertIdentifierLookup's bound).
const MAX_VALUE_LENGTH = LIMITS.emailLength * 4

function validateStatus(value: unknown): UserStatus | undefined {
  if (value !== undefined && !USER_STATUSES.includes(value as UserStatus)) {
    // Not echoed: a bad status may be anything the caller was sent.
    throw new ValidationError('status must be active, disabled or deleted', { details: { field: 'status' } })
  }
  return value as UserStatus | undefined
}

function validateIdentifierPrefix(value: unknown): IdentifierPrefix | undefined {
  if (value === undefined) return undefined
  const o = optionsObject(value, 'identifierPrefix', ['kind', 'prefix'])
  if (!IDENTIFIER_KINDS.includes(o.kind as IdentifierKind)) {
    throw new ValidationError('identifierPrefix.kind must be email or username', {
      details: { field: 'identifierPrefix.kind' },
    })
  }
  const prefix = o.prefix
  if (
    typeof prefix !== 'string' ||
    prefix.length === 0 ||
    prefix.length > MAX_VALUE_LENGTH ||
    !isStorableText(prefix)
  ) {
    throw new ValidationError('identifierPrefix.prefix must be 1 or more storable characters', {
      details: { field: 'identifierPrefix.prefix' },
    })
  }
  return { kind: o.kind as IdentifierKind, prefix }
}

/** `listUsers`' query: an object (or undefined) with only known keys, each valid. Every store runs it. */
export function validateListUsersQuery(query: unknown): ValidListUsersQuery {
  const q = optionsObject(query, 'listUsers query', [
    'limit',
    'cursor',
    'status',
    'identifierPrefix',
    'includeIdentifiers',
  ])
  const limit = validatePageSize(q.limit)
  assertOptionalCursor(q.cursor)
  assertOptionalBoolean(q.includeIdentifiers, 'includeIdentifiers')
  return {
    limit,
    cursor: q.cursor,
    status: validateStatus(q.status),
    identifierPrefix: validateIdentifierPrefix(q.identifierPrefix),
    includeIdentifiers: q.includeIdentifiers === true,
  }
}

/** `countUsers`' query: an object (or undefined) with only status and identifierPrefix. */
export function validateCountUsersQuery(query: unknown): ValidCountUsersQuery {
  const q = optionsObject(query, 'countUsers query', ['status', 'identifierPrefix'])
  return { status: validateStatus(q.status), identifierPrefix: validateIdentifierPrefix(q.identifierPrefix) }
}

/**
 * The least string above every string that starts with `prefix`, in code-point order: the last code point
 * plus one (skipping the surrogate range), or, when it is U+10FFFF, the same for the prefix without it.
 * Null when no such string exists (a prefix of U+10FFFF only). So `[prefix, upper)` is exactly the strings
 * with that prefix, which a B-tree in code-point order reads as one range.
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = Array.from(prefix, (c) => c.codePointAt(0)!)
  while (points.length > 0) {
    const last = points.pop()!
    if (last < 0x10ffff) {
      points.push(last + 1 === 0xd800 ? 0xe000 : last + 1)
      return String.fromCodePoint(...points)
    }
  }
  return null
}

/**
 * Compares two strings in Unicode code-point order (the order of their UTF-8 bytes, Postgres's `COLLATE "C"`).
 * JavaScript's `<` compares UTF-16 units, which puts U+10000 and above before U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (D800..DFFF) encode code points above FFFF: they sort after every other BMP unit.
    const surrogate = (u: number) => u >= 0xd800 && u <= 0xdfff
    if (surrogate(x) !== surrogate(y)) return surrogate(x) ? 1 : -1
    return x - y
  }
  return a.length - b.length
}

/**
 * Normalizes a search prefix the way identifiers are normalized (NFKC, trimmed, lower-cased; see
 * normalizeIdentifier), so a prefix typed in any letter case finds the stored values. Refuses what no stored
 * identifier can hold (invisible or format characters, unstorable text) and an empty or over-long prefix, with a
 * ValidationError that does not repeat the value.
 */
export function normalizeIdentifierPrefix(kind: IdentifierKind, raw: unknown): string {
  const field = `${kind}Prefix`
  if (typeof raw !== 'string') throw new ValidationError(`${field} must be a string`, { details: { field } })
  if (raw.length > MAX_VALUE_LENGTH || !isStorableText(raw)) {
    throw new ValidationError(`${field} is not valid`, { details: { field } })
  }
  const value = foldIdentifier(raw)
  if (hasInvisibleCharacter(raw) || hasInvisibleCharacter(value)) {
    throw new ValidationError(`${field} has invisible or format characters`, { details: { field } })
  }
  const max = kind === 'email' ? LIMITS.emailLength : LIMITS.usernameLength
  if (value.length === 0 || value.length > max) {
    throw new ValidationError(`${field} must be 1 to ${max} characters`, { details: { field } })
  }
  return value
}
