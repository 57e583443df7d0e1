import { ErrorCode, UserEngineError } from '../../domain/errors.js'

/**
 * A driver error with everything that may hold a value removed: only SQLSTATE, constraint, table, column
 * and routine names survive. Drivers put the failing query, its parameters and the offending key value
 * into their errors (DETAIL, `query`, `params`); this is what the library keeps as `cause` instead.
 */
export class SanitizedDatabaseError extends Error {
  override readonly name = 'SanitizedDatabaseError'
  readonly code: string | null
  readonly constraint: string | null
  readonly table: string | null
  readonly column: string | null
  readonly routine: string | null

  constructor(fields: {
    code: string | null
    constraint: string | null
    table: string | null
    column: string | null
    routine: string | null
  }) {
    const parts = [fields.code ? `SQLSTATE ${fields.code}` : 'connection error']
    if (fields.constraint) parts.push(`constraint ${fields.constraint}`)
    super(`database error: ${parts.join(', ')}`)
    this.code = fields.code
    this.constraint = fields.constraint
    this.table = fields.table
    this.column = fields.column
    this.routine = fields.routine
  }
}

const str = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null)
// Identifiers, not values: safe to keep. Anything longer is not a Postgres identifier.
const ident = (value: unknown): string | null => {
  const s = str(value)
  return s !== null && s.length <= 63 && /^[A-Za-z0-9_$.]+$/.test(s) ? s : null
}

export function sanitizeDatabaseError(error: unknown): SanitizedDatabaseError {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>
  const code = str(e.code)
  return new SanitizedDatabaseError({
    code: code !== null && /^[A-Z0-9_]{1,16}$/.test(code) ? code : null,
    constraint: ident(e.constraint),
    table: ident(e.table),
    column: ident(e.column),
    routine: ident(e.routine),
  })
}

/** A SQLSTATE, when the error came from the database server. */
export function sqlState(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
])

/** The server is unreachable, went away, or refuses connections: retrying later may help. */
export function isConnectionError(error: unknown): boolean {
  const state = sqlState(error)
  // 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot connect now; 53300: too many.
  if (state !== null) return state.startsWith('08') || /^57P0[123]$/.test(state) || state === '53300'
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true
  const message = error instanceof Error ? error.message : ''
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connect ECONNREFUSED|Cannot use a pool after calling end|PGlite is closed/i.test(
    message,
  )
}

/**
 * Turns a driver error into what the library throws: connection trouble becomes STORE_UNAVAILABLE, any
 * other database error its sanitized form. Errors that are not from the driver (bugs) pass unchanged.
 */
export function toStoreError(error: unknown, what: string): unknown {
  if (error instanceof UserEngineError) return error
  if (isConnectionError(error)) {
    return new UserEngineError(ErrorCode.STORE_UNAVAILABLE, `the database is unavailable (${what})`, {
      cause: sanitizeDatabaseError(error),
    })
  }
  if (sqlState(error) !== null) return sanitizeDatabaseError(error)
  return error
}

/** Attaches a cause to an error whose constructor takes none (ConflictError), as `new Error(m, {cause})` would. */
export function withCause<E extends Error>(error: E, cause: unknown): E {
  Object.defineProperty(error, 'cause', {
    value: cause,
    writable: true,
    configurable: true,
    enumerable: false,
  })
  return error
}
