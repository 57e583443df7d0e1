import { ErrorCode, UserEngineError } from '../../../domain/errors.js'

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
 * Where a driver connects, for messages: never a URL, a user or a password. `secrets` are the passwords the
 * driver was configured with, removed from any server text a message quotes (the server never sends one back,
 * but a message must not depend on that).
 */
export interface ConnectionTarget {
  readonly host: string
  readonly port: string
  readonly secrets: readonly string[]
}

/** `host:port` (`[v6]:port`; a socket directory with its port). */
export function describeTarget(target: ConnectionTarget): string {
  if (target.host.startsWith('/')) return `${target.host} (socket, port ${target.port})`
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`
}

// The target a failed query's connection had, so toStoreError can name it (driver errors have no room).
const targets = new WeakMap<object, ConnectionTarget>()
const NO_TARGET: ConnectionTarget = { host: '', port: '', secrets: [] }

/** Where a failed statement's connection went, for a message (` at host:port`) and details; empty if unknown. */
export function whereFailed(error: unknown): { at: string; details: { host?: string; port?: string } } {
  const target = typeof error === 'object' && error !== null ? targets.get(error) : undefined
  return target === undefined
    ? { at: '', details: {} }
    : { at: ` at ${describeTarget(target)}`, details: { host: target.host, port: target.port } }
}

/** Remembers which server an error came from; returns the error unchanged. */
export function noteTarget<E>(error: E, target: ConnectionTarget): E {
  if (typeof error === 'object' && error !== null) targets.set(error, target)
  return error
}

/**
 * C0 and C1 control characters, DEL and the Unicode line separators: refused in a connection string, and
 * replaced in server text a message quotes (a terminal would act on them).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is matched
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/
const CONTROL_RUNS = new RegExp(`${CONTROL_CHARACTER.source}+`, 'g')

/** Server text fit for a message: one line, bounded, with the configured passwords removed. */
function serverText(message: unknown, target: ConnectionTarget): string {
  let text = typeof message === 'string' ? message : ''
  for (const secret of target.secrets) if (secret.length > 0) text = text.split(secret).join('***')
  text = text.replace(CONTROL_RUNS, ' ').trim()
  return text.length > 300 ? `${text.slice(0, 300)}...` : text
}

const UNREACHABLE: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed (temporary DNS failure)',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOENT: 'no server socket at that path',
  EACCES: 'permission denied on the server socket',
}

// At startup: 57P01-03 shutting down / starting up, 53xxx out of resources (53300 too many connections), and
// 08 connection exceptions other than the server refusing the startup packet (08P01, 08004).
const isUnavailableState = (state: string) =>
  /^57P0[123]$/.test(state) || state.startsWith('53') || (state.startsWith('08') && !REFUSED_08.has(state))
const REFUSED_08 = new Set(['08P01', '08004'])
// PgBouncer reports its own passing conditions (a wait or timeout, a full or restarting pooler, a server it
// cannot reach yet) as 08P01 too: those are unavailability, not a refusal.
const POOLER_TRANSIENT =
  /query_wait_timeout|query_timeout|idle_transaction_timeout|client_idle_timeout|server conn crashed|cannot connect to server|server_login_retry|try again later|no more connections allowed|shutting down|pause mode|server_lifetime/i
/** A refusal the same request meets again: a protocol violation or a rejected connection, not a pooler's wait. */
const isRefusal = (state: string | null, message: string): boolean =>
  state !== null && REFUSED_08.has(state) && !POOLER_TRANSIENT.test(message)
const messageOf = (error: unknown): string => {
  const message = (error as { message?: unknown } | null)?.message
  return typeof message === 'string' ? message : ''
}

// What to check, by startup SQLSTATE: the server's message says what is wrong, this says where to fix it.
const REFUSAL_HINTS: Readonly<Record<string, string>> = {
  '3D000': 'create the database or fix the database name in the connection string',
  '28000': "check the user name in the connection string and the server's pg_hba.conf",
  '28P01': 'check the user name and password in the connection string',
  '42501': 'grant the role CONNECT on the database',
  '08P01':
    'a protocol violation: the server or a pooler in front of it (PgBouncer) refused what was sent, such as a startup parameter it does not support',
  '08004': 'the server refused the connection',
}

function unavailableReason(state: string | null, nodeCode: string | null, message: string): string {
  // The server's own words for a startup refusal of this kind ("sorry, too many clients already").
  if (state?.startsWith('53'))
    return `${message}; retry later, use fewer pool connections or raise max_connections`
  if (state !== null) return `${message}; retry when the server accepts connections again`
  if (/after calling end on the pool/i.test(message)) {
    return 'its pool was ended (the store was closed, or the caller ended the pool it passed)'
  }
  // Node's messages repeat the address (`connect ECONNREFUSED 127.0.0.1:1`): the code says it shorter.
  const reason =
    (nodeCode === null ? undefined : UNREACHABLE[nodeCode]) ??
    (/timeout/i.test(message)
      ? 'connection timed out'
      : /terminated|closed/i.test(message)
        ? 'the server closed the connection during startup'
        : 'the connection failed')
  return `${reason}${nodeCode === null ? '' : ` (${nodeCode})`}; check that the server is running and that host and port are right`
}

/**
 * Types an error raised while a connection was being opened (before any statement was sent, so nothing
 * was applied): the server refusing the startup (a database or role that does not exist, failed
 * authentication, a refused startup parameter) is STORE_REFUSED with the server's own message, which for
 * these errors names the database or role and never a password; an unreachable, starting, stopping or full
 * server is STORE_UNAVAILABLE naming host and port. The cause is the sanitized driver error. Anything else
 * (a bug) is returned unchanged. DETAIL, the query and parameters are never quoted.
 */
export function connectError(error: unknown, target: ConnectionTarget): unknown {
  if (error instanceof UserEngineError) return error
  const where = describeTarget(target)
  const details = { host: target.host, port: target.port }
  const cause = sanitizeDatabaseError(error)
  const state = sqlState(error)
  const message = serverText((error as { message?: unknown } | null)?.message, target)
  const poolerWait = state !== null && REFUSED_08.has(state) && !isRefusal(state, message)
  if (state !== null && !isUnavailableState(state) && !poolerWait) {
    const hint = REFUSAL_HINTS[state] ?? (state.startsWith('28') ? 'check the credentials' : null)
    return new UserEngineError(
      ErrorCode.STORE_REFUSED,
      `the PostgreSQL server at ${where} refused the connection: ${message || 'no reason given'}${hint ? ` (${hint})` : ''}`,
      { details: { ...details, sqlState: state }, cause },
    )
  }
  const syscall = (error as { syscall?: unknown } | null)?.syscall
  if (state !== null || isConnectionError(error) || syscall === 'connect' || syscall === 'getaddrinfo') {
    const code = (error as { code?: unknown } | null)?.code
    const nodeCode = state === null && typeof code === 'string' && /^E[A-Z_]{2,20}$/.test(code) ? code : null
    return new UserEngineError(
      ErrorCode.STORE_UNAVAILABLE,
      `the PostgreSQL server at ${where} is unavailable: ${unavailableReason(state, nodeCode, message)}`,
      { details: { ...details, ...(state === null ? {} : { sqlState: state }) }, cause },
    )
  }
  // TLS and SASL failures carry no SQLSTATE: the client or server refused the handshake.
  const code = (error as { code?: unknown } | null)?.code
  const text = typeof code === 'string' ? `${code} ` : ''
  if (/SSL|TLS|CERT/i.test(text) || /^(SASL|The server does not support SSL)|certificate/i.test(message)) {
    return new UserEngineError(
      ErrorCode.STORE_REFUSED,
      `the connection to the PostgreSQL server at ${where} failed during TLS or authentication: ${message}`,
      { details, cause },
    )
  }
  return error
}

/** The bound whose wait ran out, when a statement failed for want of an answer (the driver's queryTimeoutMs). */
export function answerTimeoutOf(error: unknown): number | undefined {
  const ms = (error as { queryTimeoutMs?: unknown } | null)?.queryTimeoutMs
  return typeof ms === 'number' ? ms : undefined
}

/**
 * A statement the server failed because of its own state, not the request: canceled (`statement_timeout`, an
 * operator's `pg_cancel_backend`), a lock wait past `lock_timeout`, a read-only server (a standby after a
 * failover), out of disk or memory, an I/O or internal error, a deadlock or serialization failure. The server
 * rolled the statement back; the same request may work later.
 */
export function isServerStateFailure(state: string | null): boolean {
  if (state === null) return false
  return (
    ['25006', '25P03', '40001', '40P01', '55P03', '55006'].includes(state) ||
    ['53', '57', '58', 'XX'].some((cls) => state.startsWith(cls))
  )
}

/**
 * Turns a driver error into what the library throws: connection trouble and a statement the server failed
 * for its own state (isServerStateFailure) become STORE_UNAVAILABLE, a revoked privilege STORE_REFUSED, any
 * other database error (a bug) its sanitized form. Errors that are not from the driver pass unchanged.
 */
export function toStoreError(error: unknown, what: string): unknown {
  if (error instanceof UserEngineError) return error
  const state = sqlState(error)
  const target = typeof error === 'object' && error !== null ? targets.get(error) : undefined
  const at = target === undefined ? '' : ` at ${describeTarget(target)}`
  if (!isConnectionError(error) && (isServerStateFailure(state) || state === '42501')) {
    // The server's words for these states name objects (a relation, a file), never a value.
    const said = serverText(messageOf(error), target ?? NO_TARGET) || 'no reason given'
    const details = {
      ...(target === undefined ? {} : { host: target.host, port: target.port }),
      sqlState: state,
      ...(what === 'commit' ? { outcome: 'not_applied' } : {}),
    }
    const applied = what === 'commit' ? '; the commit was not applied' : ''
    return state === '42501'
      ? new UserEngineError(
          ErrorCode.STORE_REFUSED,
          `the database${at} refused the statement (${what}): ${said} (SQLSTATE 42501; grant the store's role its privileges)${applied}`,
          { cause: sanitizeDatabaseError(error), details },
        )
      : new UserEngineError(
          ErrorCode.STORE_UNAVAILABLE,
          `the database${at} failed the statement (${what}): ${said} (SQLSTATE ${state})${applied}`,
          { cause: sanitizeDatabaseError(error), details },
        )
  }
  if (isConnectionError(error) || isRefusal(state, messageOf(error))) {
    const timeoutMs = answerTimeoutOf(error)
    const details = {
      ...(target === undefined ? {} : { host: target.host, port: target.port }),
      ...(state === null ? {} : { sqlState: state }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    }
    // The server's (or pooler's) own words, which for these states name no value: what the operator needs.
    const said =
      state === null
        ? ''
        : `: ${serverText((error as { message?: unknown }).message, target ?? NO_TARGET) || 'no reason given'} (SQLSTATE ${state})`
    if (state !== null && isRefusal(state, messageOf(error))) {
      // A protocol violation or a rejected connection: the same request fails again, so no retry advice.
      return new UserEngineError(
        ErrorCode.STORE_REFUSED,
        `the database${at} refused the request (${what})${said}; ${REFUSAL_HINTS[state] ?? 'retrying will not help'}`,
        { cause: sanitizeDatabaseError(error), details },
      )
    }
    return new UserEngineError(
      ErrorCode.STORE_UNAVAILABLE,
      timeoutMs === undefined
        ? `the database${at} is unavailable (${what})${said}`
        : `the database${at} did not answer within ${timeoutMs} ms (${what}; queryTimeoutMs); the connection was closed`,
      {
        cause: sanitizeDatabaseError(error),
        ...(Object.keys(details).length === 0 ? {} : { details }),
      },
    )
  }
  if (sqlState(error) !== null) return sanitizeDatabaseError(error)
  return error
}
