import { hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { ErrorCode, UserEngineError, ValidationError } from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import { LIMITS } from '../domain/limits.js'
import { Secret } from '../domain/secret.js'

/**
 * Session and single-use tokens: `<tenant id>.<record id>.<secret>`.
 *
 * - The tenant id leads, so a token finds its tenant with no index across tenants: every key the lookup
 *   uses starts with the tenant id, and a token presented to a service names where it belongs.
 * - The record id (`ses_...`, `tok_...`) is the lookup key: a primary-key read, never a search by secret.
 * - The secret is 32 random bytes (256 bits) in base64url. The store keeps only the SHA-256 of the whole
 *   token, compared in constant time, so a leaked database row signs nobody in and a row copied to another
 *   tenant or record does not match.
 *
 * Ids are `[A-Za-z0-9_-]`, so the dots are unambiguous and the token is safe in a URL and a cookie as is.
 */
export const TOKEN_SECRET_BYTES = 32

/** The longest string taken for a token: a tenant id, a record id, the secret and two dots. */
const MAX_TOKEN_LENGTH = 2 * LIMITS.idLength + 43 + 2
// The whole shape in one match (one pass on the hot path): two ids as assertId takes them, 43 base64url.
const TOKEN_PATTERN =
  /^([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.[A-Za-z0-9_-]{43}$/

export interface NewToken {
  readonly id: string
  /** The token to hand out once. */
  readonly token: string
  /** SHA-256 (hex) of the token: what the store keeps. */
  readonly hash: string
}

// One-shot hashing: about a microsecond less per call than createHash, on the session validation hot path.
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex')
}

/** A fresh token for a record of `prefix` (`ses`, `tok`) in `tenantId`. */
export function newToken(tenantId: string, prefix: 'ses' | 'tok'): NewToken {
  const id = newId(prefix)
  const token = `${tenantId}.${id}.${randomBytes(TOKEN_SECRET_BYTES).toString('base64url')}`
  return { id, token, hash: hashToken(token) }
}

export interface ParsedToken {
  readonly tenantId: string
  readonly id: string
  readonly token: string
}

/**
 * The parts of a token, or null when the string is not shaped like one. A value that is not a string is a
 * caller's mistake (VALIDATION); any string is a token to judge, and a malformed one is refused like any other.
 */
export function parseToken(value: unknown, field = 'token'): ParsedToken | null {
  if (typeof value !== 'string') {
    throw new ValidationError(`${field} must be a string`, { details: { field } })
  }
  const match = value.length > MAX_TOKEN_LENGTH ? null : TOKEN_PATTERN.exec(value)
  if (match === null) return null
  const [, tenantId, id] = match as unknown as [string, string, string]
  return { tenantId, id, token: value }
}

// Compared against when there is no stored hash, so a miss costs what a mismatch costs.
const DUMMY_HASH = Buffer.from(hashToken('user-engine/no-such-token'), 'hex')
const HASH_HEX = /^[0-9a-f]{64}$/

/**
 * True when `token` hashes to `storedHash`. Always hashes and compares in constant time, also when there is
 * nothing stored (`null`) or nothing to hash, so every refusal costs the same.
 */
export function tokenMatches(token: string | null, storedHash: string | null | undefined): boolean {
  const actual = hash('sha256', token ?? '', 'buffer')
  const stored = typeof storedHash === 'string' && HASH_HEX.test(storedHash) ? storedHash : null
  const expected = stored === null ? DUMMY_HASH : Buffer.from(stored, 'hex')
  return timingSafeEqual(actual, expected) && stored !== null && token !== null
}

/** The one refusal every token use raises, whatever the reason. */
export function invalidToken(): UserEngineError {
  return new UserEngineError(ErrorCode.INVALID_TOKEN, 'the token is not valid')
}

/** A token as a use case returns it: printed `[redacted]` until the caller reveals it to send it. */
export function secretToken(token: string): Secret<string> {
  return new Secret(token)
}
