import { isIP } from 'node:net'
import { unreadable } from './caller-values.js'
import { ValidationError } from './errors.js'
import { hasInvisibleCharacter, isHighlyRestrictive } from './identifier-safety.js'
import { LIMITS } from './limits.js'
import {
  IDENTIFIER_KINDS,
  type IdentifierKind,
  type ProfileAttributes,
  type ProfileValue,
  SIGN_IN_METHODS,
  type SignInMethod,
  type UserStatus,
} from './records.js'

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*$/
const PROFILE_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_]*$/
// One @, a dot-separated domain with a TLD of 2+ letters; no spaces, quotes or control characters.
const EMAIL_PATTERN = /^[^\s@"<>()[\]\\,;:]+@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+\p{L}{2,}$/u
const USERNAME_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N}._-]*$/u

/** Checks an id (tenant, user, factor, event). Ids are ASCII, 1..64 characters: safe to print in messages. */
export function assertId(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string')
    throw new ValidationError(`${field} must be a string`, { details: { field } })
  if (value.length === 0 || value.length > LIMITS.idLength || !ID_PATTERN.test(value)) {
    // The value itself is not echoed: a malformed id may be anything the caller was sent.
    throw new ValidationError(`${field} is not a valid id`, { details: { field } })
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Text a database can store: no NUL character (Postgres text and jsonb refuse it) and no unpaired UTF-16
 * surrogate (not valid Unicode). Checked up front so every store refuses the same input the same way.
 */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value)
}

/**
 * Checks an identifier lookup a store receives (already normalized by the caller): a known kind and storable,
 * bounded text. Stores check it so a bad lookup is a ValidationError on every store, never a driver error.
 */
export function assertIdentifierLookup(kind: unknown, value: unknown): void {
  if (!IDENTIFIER_KINDS.includes(kind as IdentifierKind)) {
    throw new ValidationError('identifier kind must be email or username', { details: { field: 'kind' } })
  }
  if (typeof value !== 'string' || value.length > LIMITS.emailLength * 4 || !isStorableText(value)) {
    throw new ValidationError('identifier value is not valid', { details: { field: 'value' } })
  }
}

export function assertString(
  value: unknown,
  field: string,
  maxLength: number,
  minLength = 1,
): asserts value is string {
  if (typeof value !== 'string')
    throw new ValidationError(`${field} must be a string`, { details: { field } })
  if (!isStorableText(value))
    throw new ValidationError(`${field} has characters that cannot be stored`, { details: { field } })
  if (value.length < minLength)
    throw new ValidationError(`${field} is too short`, { details: { field, minLength } })
  if (value.length > maxLength)
    throw new ValidationError(`${field} is too long`, { details: { field, maxLength } })
}

/** An IPv4 or IPv6 address in text form (an IPv6 zone id allowed), at most 64 characters. Never echoed. */
export function assertIpAddress(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || value.length > 64 || isIP(value) === 0) {
    throw new ValidationError(`${field} must be an IPv4 or IPv6 address`, { details: { field } })
  }
}

export function assertPositiveInt(
  value: unknown,
  field: string,
  max = Number.MAX_SAFE_INTEGER,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ValidationError(`${field} must be an integer from 1 to ${max}`, { details: { field } })
  }
}

/** The folding identifiers and identifier search prefixes share: NFKC, trimmed, lower-cased. */
export function foldIdentifier(raw: string): string {
  return raw.normalize('NFKC').trim().toLowerCase()
}

/**
 * Normalizes an identifier for storage and lookup: NFKC, trimmed, lower-cased, so that `Ann@Example.COM`
 * and `ann@example.com` are one identifier. Invisible/format characters and mixed-script parts are refused
 * (identifier-safety.ts). Lower-casing, not full case folding, on purpose: `ß` and `ss` stay two identifiers
 * (mail systems treat them as different local parts), and values stored by earlier versions keep their form.
 * Throws a ValidationError (without the value) when malformed.
 */
export function normalizeIdentifier(kind: IdentifierKind, raw: unknown): string {
  if (typeof raw !== 'string')
    throw new ValidationError(`${kind} must be a string`, { details: { field: kind } })
  // Bound the work before normalizing: NFKC can expand a string.
  if (raw.length > LIMITS.emailLength * 4)
    throw new ValidationError(`${kind} is too long`, { details: { field: kind } })
  if (!isStorableText(raw))
    throw new ValidationError(`${kind} has characters that are not allowed`, { details: { field: kind } })
  const value = foldIdentifier(raw)
  if (hasInvisibleCharacter(raw) || hasInvisibleCharacter(value)) {
    throw new ValidationError(`${kind} has invisible or format characters`, { details: { field: kind } })
  }
  if (kind === 'email') {
    if (value.length > LIMITS.emailLength)
      throw new ValidationError('email is too long', { details: { field: kind } })
    if (!EMAIL_PATTERN.test(value))
      throw new ValidationError('email is not a valid address', { details: { field: kind } })
    if (!value.split(/[@.]/).every(isHighlyRestrictive))
      throw new ValidationError('email mixes scripts in one part', { details: { field: kind } })
  } else {
    if (value.length === 0 || value.length > LIMITS.usernameLength) {
      throw new ValidationError('username must be 1 to 64 characters', { details: { field: kind } })
    }
    if (!USERNAME_PATTERN.test(value))
      throw new ValidationError('username has characters that are not allowed', { details: { field: kind } })
    if (!isHighlyRestrictive(value))
      throw new ValidationError('username mixes scripts', { details: { field: kind } })
  }
  return value
}

/** Validates profile attributes: flat, bounded keys, scalar values, bounded total size. Returns a frozen copy. */
export function validateProfile(value: unknown): ProfileAttributes {
  const entries = Object.entries(plainObject(value, 'profile'))
  if (entries.length > LIMITS.profileKeys) {
    throw new ValidationError('profile has too many attributes', {
      details: {
        field: 'profile',
        max: LIMITS.profileKeys,
      },
    })
  }
  const out: Record<string, ProfileValue> = {}
  for (const [key, v] of entries) {
    if (key.length > LIMITS.profileKeyLength || !PROFILE_KEY_PATTERN.test(key)) {
      throw new ValidationError('profile attribute name is not valid', { details: { field: 'profile' } })
    }
    if (typeof v === 'string') {
      if (!isStorableText(v)) {
        throw new ValidationError(`profile attribute ${key} has characters that cannot be stored`, {
          details: {
            field: `profile.${key}`,
          },
        })
      }
      if (v.length > LIMITS.profileStringLength) {
        throw new ValidationError(`profile attribute ${key} is too long`, {
          details: { field: `profile.${key}` },
        })
      }
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v))
        throw new ValidationError(`profile attribute ${key} must be finite`, {
          details: { field: `profile.${key}` },
        })
    } else if (typeof v !== 'boolean' && v !== null) {
      throw new ValidationError(`profile attribute ${key} must be a string, number, boolean or null`, {
        details: {
          field: `profile.${key}`,
        },
      })
    }
    out[key] = v as ProfileValue
  }
  if (Buffer.byteLength(JSON.stringify(out)) > LIMITS.profileBytes) {
    throw new ValidationError('profile is too large', {
      details: { field: 'profile', maxBytes: LIMITS.profileBytes },
    })
  }
  return Object.freeze(out)
}

export function validatePageSize(value: unknown, fallback = 50): number {
  if (value === undefined) return fallback
  assertPositiveInt(value, 'limit', LIMITS.pageSizeMax)
  return value
}

// ---- options objects ------------------------------------------------------------------------------------

const OPTION_NAME = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/

/**
 * A plain object (an object literal, or one with a null prototype), copied: its own enumerable properties
 * read once into a fresh object, so a getter that throws is a ValidationError and one that answers
 * differently on each read cannot change a value after it was checked. A Map, a Date, a boxed string, an
 * array or a class instance is refused: none carries what the caller meant as fields.
 */
export function plainObject(value: unknown, what: string): Record<string, unknown> {
  const notObject = () => new ValidationError(`${what} must be an object`, { details: { field: what } })
  if (typeof value !== 'object' || value === null) throw notObject()
  const copy: Record<string, unknown> = {}
  try {
    // Inside the try: Array.isArray throws on a revoked proxy.
    if (Array.isArray(value)) throw notObject()
    // Any realm's Object.prototype has a null prototype; Map.prototype, Date.prototype and a class's do not.
    const proto = Object.getPrototypeOf(value) as object | null
    if (proto !== null && Object.getPrototypeOf(proto) !== null) throw notObject()
    for (const key of Object.keys(value)) {
      // Own keys only: a `__proto__` key would otherwise set the copy's prototype.
      Object.defineProperty(copy, key, {
        value: (value as Record<string, unknown>)[key],
        enumerable: true,
        writable: true,
        configurable: true,
      })
    }
  } catch (error) {
    throw unreadable(error, what)
  }
  return copy
}

/**
 * Checks an options (or query) argument: `undefined` is `{}`; null, an array, anything but a plain object
 * or a key not in `known` is a ValidationError naming `what` (e.g. `createNodePostgresStore options`). A
 * misspelt option fails here instead of being silently ignored. Returns a copy (see `plainObject`). Values
 * are never echoed; a key is, when it looks like a name.
 */
export function optionsObject(
  value: unknown,
  what: string,
  known: readonly string[],
): Record<string, unknown> {
  if (value === undefined) return {}
  return knownKeys(plainObject(value, what), what, known)
}

/** As `optionsObject`, for an argument that must be given (a registration's input, a sign-in's credentials). */
export function inputObject(value: unknown, what: string, known: readonly string[]): Record<string, unknown> {
  return knownKeys(plainObject(value, what), what, known)
}

function knownKeys(
  o: Record<string, unknown>,
  what: string,
  known: readonly string[],
): Record<string, unknown> {
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) {
      const name = OPTION_NAME.test(key) ? `"${key}"` : '(not a name)'
      throw new ValidationError(`${what} has an unknown key ${name}; known keys: ${known.join(', ')}`, {
        details: { field: what },
      })
    }
  }
  return o
}

/** One of the sign-in methods a session records. */
export const isSignInMethod = (value: unknown): value is SignInMethod =>
  SIGN_IN_METHODS.includes(value as SignInMethod)

/** Most milliseconds from the epoch a Date holds, either way. */
export const MAX_TIME_MS = 8.64e15

/** A time in ms since the epoch that a Date can hold. */
export function assertTimeMs(value: unknown, field: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || Math.abs(value) > MAX_TIME_MS) {
    throw new ValidationError(`${field} must be a time in ms since the epoch`, { details: { field } })
  }
}

export function assertOptionalBoolean(value: unknown, field: string): asserts value is boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new ValidationError(`${field} must be true or false`, { details: { field } })
  }
}

export function assertFunction(
  value: unknown,
  field: string,
): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function')
    throw new ValidationError(`${field} must be a function`, { details: { field } })
}

/** An integer from `min` to `max` (inclusive). */
export function assertIntegerInRange(
  value: unknown,
  field: string,
  min: number,
  max: number,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(`${field} must be an integer from ${min} to ${max}`, {
      details: { field, min, max },
    })
  }
}

// ---- store queries: one check every store runs, so every store refuses the same input the same way -------

export const USER_STATUSES: readonly UserStatus[] = Object.freeze(['active', 'disabled', 'deleted'])

export interface ValidListAuditQuery {
  readonly limit: number
  /** Opaque; the store decodes it (`decodeIdCursor`: the last record listed), which refuses a malformed one. */
  readonly cursor: string | undefined
  readonly userId: string | undefined
}

export function assertOptionalCursor(value: unknown): asserts value is string | undefined {
  if (value !== undefined && typeof value !== 'string') {
    throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
  }
}

/** `listTenants`' query: an object (or undefined) with only limit and cursor. */
export function validateListTenantsQuery(query: unknown): { limit: number; cursor: string | undefined } {
  const q = optionsObject(query, 'listTenants query', ['limit', 'cursor'])
  const limit = validatePageSize(q.limit)
  assertOptionalCursor(q.cursor)
  return { limit, cursor: q.cursor as string | undefined }
}

/** `listAudit`'s query: an object (or undefined) with only limit, cursor and a valid userId. */
export function validateListAuditQuery(query: unknown): ValidListAuditQuery {
  const q = optionsObject(query, 'listAudit query', ['limit', 'cursor', 'userId'])
  if (q.userId !== undefined) assertId(q.userId, 'userId')
  const limit = validatePageSize(q.limit)
  assertOptionalCursor(q.cursor)
  return { limit, cursor: q.cursor, userId: q.userId as string | undefined }
}

// ---- instants and maintenance queries -------------------------------------------------------------------

/**
 * An ISO 8601 instant exactly as `toISOString()` writes it (24 characters, UTC, milliseconds), so stores can
 * compare instants as text in code-point order.
 */
export function isIsoInstant(value: unknown): value is string {
  if (typeof value !== 'string' || value.length !== 24) return false
  const ms = Date.parse(value)
  return Number.isFinite(ms) && new Date(ms).toISOString() === value
}

export function assertInstant(value: unknown, field: string): asserts value is string {
  if (!isIsoInstant(value)) {
    throw new ValidationError(`${field} must be an ISO 8601 instant (toISOString)`, { details: { field } })
  }
}

/** The largest batch `purgeExpired` deletes in one call. */
export const MAX_PURGE_BATCH = 10_000

/** `purgeExpired`'s query: `before` an instant, `limit` 1..MAX_PURGE_BATCH. */
export function validatePurgeExpiredQuery(query: unknown): { before: string; limit: number } {
  const q = optionsObject(query, 'purgeExpired query', ['before', 'limit'])
  assertInstant(q.before, 'before')
  assertIntegerInRange(q.limit, 'limit', 1, MAX_PURGE_BATCH)
  return { before: q.before, limit: q.limit as number }
}

/** `listSealedFactors`'s query: a key id to exclude, an optional factor id to start after, a page size. */
export function validateListSealedFactorsQuery(query: unknown): {
  excludeKeyId: string
  after: string
  limit: number
} {
  const q = optionsObject(query, 'listSealedFactors query', ['excludeKeyId', 'after', 'limit'])
  assertId(q.excludeKeyId, 'excludeKeyId')
  if (q.after !== undefined) assertId(q.after, 'after')
  assertIntegerInRange(q.limit, 'limit', 1, LIMITS.pageSizeMax)
  return {
    excludeKeyId: q.excludeKeyId,
    after: (q.after as string | undefined) ?? '',
    limit: q.limit as number,
  }
}
