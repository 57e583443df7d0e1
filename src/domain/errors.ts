/**
 * Stable error codes. Callers branch on `code`, never on `message`.
 * Messages name ids and codes only: never a profile value, an identifier value, a secret or a query parameter.
 */
export const ErrorCode = {
  VALIDATION: 'VALIDATION',
  NOT_FOUND: 'NOT_FOUND',
  VERSION_CONFLICT: 'VERSION_CONFLICT',
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  DUPLICATE_IDENTIFIER: 'DUPLICATE_IDENTIFIER',
  INVALID_UNIT_OF_WORK: 'INVALID_UNIT_OF_WORK',
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  INVALID_TOKEN: 'INVALID_TOKEN',
  THROTTLED: 'THROTTLED',
  USER_DISABLED: 'USER_DISABLED',
  USER_DELETED: 'USER_DELETED',
  TENANT_SUSPENDED: 'TENANT_SUSPENDED',
  SCHEMA_NOT_READY: 'SCHEMA_NOT_READY',
  SCHEMA_DRIFT: 'SCHEMA_DRIFT',
  SCHEMA_NEWER_THAN_CODE: 'SCHEMA_NEWER_THAN_CODE',
  MIGRATION_LOCK_TIMEOUT: 'MIGRATION_LOCK_TIMEOUT',
  MIGRATION_FAILED: 'MIGRATION_FAILED',
  POOLED_CONNECTION: 'POOLED_CONNECTION',
  KEY_NOT_FOUND: 'KEY_NOT_FOUND',
  DATA_CORRUPTED: 'DATA_CORRUPTED',
  STORE_CLOSED: 'STORE_CLOSED',
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  STORE_REFUSED: 'STORE_REFUSED',
  STORE_LOCKED: 'STORE_LOCKED',
  DEPENDENCY_MISSING: 'DEPENDENCY_MISSING',
  PUBLISH_FAILED: 'PUBLISH_FAILED',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/**
 * What each code means and what the caller can do about it. docs/errors.md shows this table (a test keeps
 * the two equal), and every code is raised by some path under test.
 */
export const ERROR_CODE_MEANINGS: Readonly<Record<ErrorCode, string>> = {
  VALIDATION:
    "Bad input: wrong type, too long, malformed id, unknown option or field (every object argument, options, inputs, credentials, proofs and subjects alike, must be a plain object with only the documented keys; a getter that throws is refused too, in `createKeyring` and `keyringFromEnv` as well), a clock that answers no time in ms or one past half of `Date`'s range (an expiry after it would overflow), a connection string with a NUL, a control character or surrounding whitespace. Nothing was changed.",
  NOT_FOUND:
    'The record does not exist in this tenant (a record of another tenant is never revealed), or the tenant does not exist.',
  VERSION_CONFLICT:
    "The record changed since it was read (optimistic concurrency). Nothing was written; re-read and retry. Raised for the caller's own `expectedVersion`, and when a unit of work lost its version race on every retry (8 by default, `maxAttempts`, with growing random backoff): many processes writing one user at once.",
  ALREADY_EXISTS: 'A record with this id already exists. Nothing was written.',
  DUPLICATE_IDENTIFIER: 'The identifier (email, username) is taken in this tenant. Nothing was written.',
  INVALID_UNIT_OF_WORK:
    'A unit of work was used wrongly: after it ended, or with writes the store contract forbids. A programming error.',
  INVALID_CREDENTIALS:
    'A sign-in failed. One code for every reason (unknown identifier, wrong password, disabled user, suspended tenant); the reason is in the audit trail only. The message says only which step failed: the identifier and password (`authenticate`) or the second-factor code (`completeSignIn`).',
  INVALID_TOKEN:
    'A session or single-use token was not accepted. One code for every reason (unknown, expired, revoked, already used, another purpose, malformed, inactive user or tenant), at the same cost.',
  THROTTLED:
    'Too many failed attempts for this identifier, user or caller key (passwords, TOTP and recovery codes alike); `details.retryAfterMs` says when to try again. Nothing was checked, and the refusal is not audited. A user locked through one identifier is refused through its others as `INVALID_CREDENTIALS` (audited with reason `user_locked`), so that the answer never ties an identifier to another.',
  USER_DISABLED:
    'The use case is not allowed on a disabled user (docs/status-rules.md). Nothing was written.',
  USER_DELETED:
    'The user was deleted: its data is erased and only getUser (the tombstone) and deleteUser (a no-op) work.',
  TENANT_SUSPENDED:
    'The tenant is suspended: reads work, changes are refused until reactivateTenant. Nothing was written.',
  SCHEMA_NOT_READY: 'The database schema is older than this code needs; run `migrate`.',
  SCHEMA_DRIFT:
    "An applied migration's recorded checksum differs from the code's, or a known migration's history row is missing.",
  SCHEMA_NEWER_THAN_CODE:
    'The database was migrated by a newer user-engine (its history names a version this code does not know); upgrade the code.',
  MIGRATION_LOCK_TIMEOUT: 'Another migrator held the migration lock longer than the wait allowed.',
  MIGRATION_FAILED:
    'A migration failed and was rolled back (or left an invalid index); the version is not recorded.',
  POOLED_CONNECTION:
    'A pooler stands between the client and the server where that is unsafe: migrate found one before taking its lock, or its statements moved between server connections, and stopped before its next step (run it over a direct connection); or prepared statements reached a server connection that did not prepare them (turn preparedStatements off).',
  KEY_NOT_FOUND:
    'A stored secret names an encryption key that is not in the keyring, or no keyring is configured.',
  DATA_CORRUPTED:
    'Stored data is not in a shape this code wrote (a damaged or hand-edited record). Nothing was changed.',
  STORE_CLOSED: 'The store or publisher was closed before the call.',
  STORE_UNAVAILABLE:
    "The database could not be reached, or the connection was lost, or the server failed the statement for its own state (`details.sqlState`): canceled by `statement_timeout` or an operator (57014), a lock wait past `lock_timeout` (55P03), a read-only server such as a standby after a failover (25006), out of disk or memory (53...), an I/O or internal error (58..., XX...), a deadlock or serialization failure (40P01, 40001). With `details.outcome` `'unknown'`, a commit was sent and its answer lost: it may or may not have been applied, so read before retrying a write that must not happen twice. With `'not_applied'`, the commit was rolled back by the server or never sent (no connection could be had). Otherwise nothing was applied; safe to retry later.",
  STORE_REFUSED:
    "The database answered and refused: unknown database, authentication failed, a protocol error, a privilege the store's role lacks (42501), or a row a provider store's own constraint or trigger refuses (nothing written). Retrying will not help.",
  STORE_LOCKED:
    'Another process holds the embedded database directory (PGlite allows one process per directory).',
  DEPENDENCY_MISSING: 'An optional peer package this feature needs is not installed; the message names it.',
  PUBLISH_FAILED:
    "The broker did not accept an event (unreachable, timed out, or refused); the relay retries it. `details.reason` is `'unreachable'` when NATS could not be reached (the relay pauses, counting no attempt) and `'no-stream'` when no stream takes the event's subject (a failed attempt).",
}

/** Safe, non-secret facts attached to an error (ids, field names, versions, limits). */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>

/** What every error constructor takes besides its code and message. */
export interface ErrorOptions {
  readonly details?: ErrorDetails
  /** The underlying error (a sanitized driver error, a broker error); never serialized by `toJSON`. */
  readonly cause?: unknown
}

/**
 * The one base class of every error the library raises on purpose. Every class is built the same way:
 * `(code, message, options)`, where subclasses with a fixed code drop the first argument.
 */
export class UserEngineError extends Error {
  override readonly name: string = 'UserEngineError'
  readonly code: ErrorCode
  readonly details: ErrorDetails

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options.details ?? {}
  }

  toJSON(): { name: string; code: ErrorCode; message: string; details: ErrorDetails } {
    return { name: this.name, code: this.code, message: this.message, details: this.details }
  }
}

/** Bad input: wrong type, too long, malformed id, unknown field. Nothing was changed. */
export class ValidationError extends UserEngineError {
  override readonly name = 'ValidationError'
  constructor(message: string, options: ErrorOptions = {}) {
    super(ErrorCode.VALIDATION, message, options)
  }
}

/** A record does not exist in this tenant (or exists only in another tenant, which is never revealed). */
export class NotFoundError extends UserEngineError {
  override readonly name = 'NotFoundError'
  constructor(message: string, options: ErrorOptions = {}) {
    super(ErrorCode.NOT_FOUND, message, options)
  }
}

/**
 * A commit's precondition failed: a version moved, a record that must not exist exists, or an identifier is
 * taken. The whole commit was refused and nothing was written. Callers may re-read and retry.
 */
export class ConflictError extends UserEngineError {
  override readonly name = 'ConflictError'
  constructor(code: ConflictCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options)
  }
}

export type ConflictCode =
  | typeof ErrorCode.VERSION_CONFLICT
  | typeof ErrorCode.ALREADY_EXISTS
  | typeof ErrorCode.DUPLICATE_IDENTIFIER

/** The database schema is missing, drifted, or newer than this code. */
export class SchemaError extends UserEngineError {
  override readonly name = 'SchemaError'
  constructor(code: SchemaErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options)
  }
}

export type SchemaErrorCode =
  | typeof ErrorCode.SCHEMA_NOT_READY
  | typeof ErrorCode.SCHEMA_DRIFT
  | typeof ErrorCode.SCHEMA_NEWER_THAN_CODE

/** Why a store is not ready: a schema problem, as its stable code. */
export type ReadinessReason = SchemaErrorCode

export function isUserEngineError(value: unknown, code?: ErrorCode): value is UserEngineError {
  return value instanceof UserEngineError && (code === undefined || value.code === code)
}
