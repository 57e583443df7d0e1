// Long on purpose: one adapter from pg.Pool to SqlDriver, with its option checks, pooler detection, text-row query and
// prepared-statement switch, which all act on the same connections.
import { withDeadline } from '../../../domain/deadline.js'
import { ErrorCode, isUserEngineError, UserEngineError, ValidationError } from '../../../domain/errors.js'
import { importOptional } from '../../../domain/optional-import.js'
import { optionsObject } from '../../../domain/validation.js'
import type { SqlDriver, SqlListener, SqlResult, SqlSession } from './driver.js'
import {
  CONTROL_CHARACTER,
  type ConnectionTarget,
  connectError,
  isConnectionError,
  noteTarget,
  sqlState,
} from './errors.js'
import { statementName } from './statement-names.js'

/** The part of a `pg` result the driver reads. */
export interface PgQueryResultLike {
  rows: unknown[]
  rowCount: number | null
}

/** The part of a `pg.PoolClient` the driver uses. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>
  /** node-postgres' query config form: a `name` prepares the statement once per connection. */
  query(config: { name: string; text: string; values: unknown[] }): Promise<PgQueryResultLike>
  release(destroy?: boolean | Error): void
}

/** The events of a pg.Client that `listen` uses (notification, error, end). */
interface PgEmitterLike {
  on?: (event: string, listener: (...args: never[]) => void) => unknown
  off?: (event: string, listener: (...args: never[]) => void) => unknown
}

/**
 * The part of a `pg.Pool` the driver uses: typed structurally (as Kysely does) so `pg` stays an optional
 * peer dependency. A `pg.Pool` satisfies it.
 */
export interface PgPoolLike {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>
  connect(): Promise<PgClientLike>
  end(): Promise<void>
}

export interface NodePostgresDriverOptions {
  /** Used to create a pool when `pool` is not given (else libpq's PG* environment variables apply). */
  readonly connectionString?: string
  /** A pool the caller owns: `close()` leaves it open. */
  readonly pool?: PgPoolLike
  /**
   * Named prepared statements for the store's parameterized statements: each is parsed and planned once per
   * connection. By default on for a direct connection and off through a pooler (detected per connection:
   * see `throughPooler`). `true` behind a pooler needs one that carries them across transactions (PgBouncer
   * 1.21+ with `max_prepared_statements` above 0, or session mode); else calls fail with POOLED_CONNECTION.
   */
  readonly preparedStatements?: boolean
  /**
   * How long one statement may wait for the server's answer, in ms, on the connections the driver opens
   * itself (not with `pool`: set node-postgres' `query_timeout` on it). Default 30 000; 0 turns it off.
   * A statement without an answer in time fails with STORE_UNAVAILABLE naming host and port (a commit: "may
   * or may not have been applied"), and its connection is closed, never reused, so a late answer cannot
   * reach another statement. Nothing is retried. It bounds a frozen server (stopped process, network
   * partition), not a slow one only: a statement waiting this long on a lock is cut as well. Migration
   * scripts (`exec`: CREATE INDEX CONCURRENTLY on a large table can run for hours) are not bounded.
   */
  readonly queryTimeoutMs?: number
}

/** The options' keys, for factories that accept them among their own. */
export const NODE_POSTGRES_DRIVER_OPTION_KEYS = [
  'connectionString',
  'pool',
  'preparedStatements',
  'queryTimeoutMs',
] as const

/**
 * The default bound on one statement's wait: the store's statements answer in milliseconds (a registration's
 * p99 measured 12-50 ms at 8 callers under load, docs/performance.md), so 30 s is far above any healthy wait
 * and short enough that callers see an outage instead of hanging.
 */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000
// setTimeout's largest delay; a longer one would fire at once.
const MAX_TIMER_MS = 2_147_483_647

const POOL_FUNCTIONS = ['query', 'connect', 'end'] as const
const URL_MESSAGE =
  'is not a valid postgres:// URL (postgres://user:password@host:port/database; percent-encode special characters in the user and password)'

function decodedOrSame(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/**
 * A pooled connection within `ms`, whatever the pool does meanwhile: pg-pool bounds a wait in its queue and a
 * new connection's start-up each by connectionTimeoutMillis, so a request queued and then handed a new
 * connection to a frozen server could wait twice that. A connection that arrives late goes back to the pool.
 */
async function checkoutWithin(pool: PgPoolLike, ms: number): Promise<PgClientLike> {
  const checkout = pool.connect()
  try {
    // The words node-postgres uses, so isConnectionError and connectError read it as theirs.
    return await withDeadline(checkout, ms, () => new Error('timeout exceeded when trying to connect'))
  } catch (error) {
    checkout.then(
      (client) => client.release(),
      () => undefined,
    )
    throw error
  }
}

/**
 * Checks a connection string without ever echoing it (it may hold a password): a `postgres://` or
 * `postgresql://` URL (or node-postgres' `socket:` URL, or a socket directory `/path database`), with
 * well-formed percent escapes.
 */
function assertConnectionString(value: unknown, name: string): asserts value is string {
  // details.field is the bare option name, stable for callers (the CLI) to branch on.
  const field = 'connectionString'
  if (typeof value !== 'string') {
    throw new ValidationError(`${name} must be a string (a postgres:// URL)`, { details: { field } })
  }
  if (value.trim() === '') {
    throw new ValidationError(
      `${name} is empty; give a postgres:// URL or leave it out to use PG* variables`,
      {
        details: {
          field,
        },
      },
    )
  }
  // URL parsing drops tabs and newlines and trims spaces, and a NUL (raw or %00) would end a string of the
  // server's startup message early, letting the rest of it add settings: refuse them rather than guess.
  if (
    value !== value.trim() ||
    CONTROL_CHARACTER.test(value) ||
    CONTROL_CHARACTER.test(decodedOrSame(value))
  ) {
    throw new ValidationError(
      `${name} has surrounding whitespace, a control character or a NUL (%00); none belongs in a connection string`,
      { details: { field } },
    )
  }
  if (value.startsWith('/')) return
  let url: URL
  try {
    url = new URL(value)
  } catch {
    // Not the TypeError: its `input` is the string.
    throw new ValidationError(`${name} ${URL_MESSAGE}`, { details: { field } })
  }
  if (!['postgres:', 'postgresql:', 'socket:'].includes(url.protocol)) {
    throw new ValidationError(`${name} must start with postgres:// or postgresql://`, { details: { field } })
  }
  const wellFormed = (part: string) => {
    try {
      decodeURIComponent(part)
      return true
    } catch {
      return false
    }
  }
  if (
    /%(?![0-9A-Fa-f]{2})/.test(value) ||
    ![url.username, url.password, url.hostname, url.pathname].every(wellFormed)
  ) {
    throw new ValidationError(`${name} ${URL_MESSAGE}`, { details: { field } })
  }
}

function assertPool(value: unknown, name: string): asserts value is PgPoolLike {
  const pool = value as Record<string, unknown> | null
  if (
    typeof pool !== 'object' ||
    pool === null ||
    POOL_FUNCTIONS.some((f) => typeof pool[f] !== 'function')
  ) {
    throw new ValidationError(
      `${name} must be a pg.Pool (an object with query, connect and end functions), or leave it out and give connectionString`,
      { details: { field: 'pool' } },
    )
  }
}

/**
 * Checks node-postgres options (VALIDATION: a non-object, an unknown key, a connection string that is not a
 * postgres:// URL, a pool without query/connect/end, both at once). `what` names the caller in messages;
 * `extraKeys` are keys the calling factory checks itself.
 */
export function validateNodePostgresOptions(
  options: unknown,
  what = 'createNodePostgresDriver options',
  extraKeys: readonly string[] = [],
): NodePostgresDriverOptions {
  const o = optionsObject(options, what, [...NODE_POSTGRES_DRIVER_OPTION_KEYS, ...extraKeys])
  if (o.connectionString !== undefined) assertConnectionString(o.connectionString, `${what}.connectionString`)
  if (o.pool !== undefined) assertPool(o.pool, `${what}.pool`)
  if (o.pool !== undefined && o.connectionString !== undefined) {
    throw new ValidationError(
      `${what}: give connectionString or pool, not both (a pool brings its own connection settings)`,
      { details: { field: what } },
    )
  }
  if (o.preparedStatements !== undefined && typeof o.preparedStatements !== 'boolean') {
    throw new ValidationError(`${what}.preparedStatements must be a boolean`, {
      details: { field: 'preparedStatements' },
    })
  }
  if (
    o.queryTimeoutMs !== undefined &&
    (typeof o.queryTimeoutMs !== 'number' ||
      !Number.isInteger(o.queryTimeoutMs) ||
      o.queryTimeoutMs < 0 ||
      o.queryTimeoutMs > MAX_TIMER_MS)
  ) {
    throw new ValidationError(
      `${what}.queryTimeoutMs must be an integer number of milliseconds from 0 (off) to ${MAX_TIMER_MS}`,
      { details: { field: 'queryTimeoutMs' } },
    )
  }
  if (o.pool !== undefined && o.queryTimeoutMs !== undefined) {
    throw new ValidationError(
      `${what}: queryTimeoutMs applies to connections the store opens; with a pool, set node-postgres' query_timeout on the pool instead`,
      { details: { field: 'queryTimeoutMs' } },
    )
  }
  const prepared = o.preparedStatements === undefined ? {} : { preparedStatements: o.preparedStatements }
  if (o.pool !== undefined) return { pool: o.pool, ...prepared }
  const timeout = o.queryTimeoutMs === undefined ? {} : { queryTimeoutMs: o.queryTimeoutMs }
  return o.connectionString === undefined
    ? { ...prepared, ...timeout }
    : { connectionString: o.connectionString, ...prepared, ...timeout }
}

const env = (name: string): string | undefined => {
  const value = process.env[name]
  return value === undefined || value === '' ? undefined : value
}

const decoded = (part: string): string => {
  try {
    return decodeURIComponent(part)
  } catch {
    return part
  }
}

/** Host, port and passwords as node-postgres resolves them: URL, then `?host=`/`?port=`, then PG*, then defaults. */
function targetOf(settings: {
  connectionString?: unknown
  host?: unknown
  port?: unknown
  password?: unknown
}): ConnectionTarget {
  const secrets = [env('PGPASSWORD'), typeof settings.password === 'string' ? settings.password : undefined]
  let host = typeof settings.host === 'string' && settings.host !== '' ? settings.host : undefined
  let port =
    typeof settings.port === 'number' || (typeof settings.port === 'string' && settings.port !== '')
      ? String(settings.port)
      : undefined
  const cs = settings.connectionString
  if (typeof cs === 'string' && cs.startsWith('/')) {
    host ??= cs.split(' ')[0]
  } else if (typeof cs === 'string') {
    try {
      const url = new URL(cs)
      secrets.push(decoded(url.password), url.searchParams.get('password') ?? undefined)
      if (url.protocol === 'socket:') host ??= decoded(url.pathname)
      host ??=
        url.searchParams.get('host') ?? (decoded(url.hostname.replace(/^\[(.+)\]$/, '$1')) || undefined)
      port ??= url.searchParams.get('port') ?? (url.port || undefined)
    } catch {
      // Validated before: an unparsable string only comes in a caller's pool, whose errors tell the rest.
    }
  }
  return {
    host: host ?? env('PGHOST') ?? 'localhost',
    port: port ?? env('PGPORT') ?? '5432',
    secrets: secrets.filter((s): s is string => s !== undefined && s !== ''),
  }
}

/** Where the connection failed: Node's socket errors say exactly which address was tried. */
function failedTarget(error: unknown, target: ConnectionTarget): ConnectionTarget {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>
  const host = typeof e.address === 'string' ? e.address : typeof e.hostname === 'string' ? e.hostname : null
  if (host === null) return target
  return {
    ...target,
    host,
    port: typeof e.port === 'number' || typeof e.port === 'string' ? String(e.port) : target.port,
  }
}

const CONNECT_TIMEOUT_MS = 10_000
// First keep-alive probe after 10 s idle instead of the OS's 2 hours: a LISTEN connection or an idle pooled
// one whose peer vanished (host down, partition) is found and dropped; Node 20 sets only this delay, so the
// probes' interval and count stay the OS's (Linux: 9 probes 75 s apart).
const KEEPALIVE_DELAY_MS = 10_000

// Connections closed because a statement got no answer in time: never returned to the pool.
const timedOut = new WeakSet<object>()

/**
 * What a statement without an answer in time fails with: a connection error (ETIMEDOUT) to every mapper,
 * carrying the bound so the typed error can say which wait ran out (`answerTimeoutOf`).
 */
function queryTimeoutError(ms: number): Error {
  return Object.assign(
    new Error(`the server did not answer within ${ms} ms (queryTimeoutMs); the connection was closed`),
    { code: 'ETIMEDOUT', queryTimeoutMs: ms },
  )
}

/**
 * Runs `send` with a bound on its wait. On timeout the socket is destroyed, so the connection can never
 * hand the statement's late answer to the next one, and the client is marked to be removed on release.
 * node-postgres' own query_timeout fails the call but keeps the connection, its active query still waiting.
 */
function bounded<T>(client: PgClientLike, ms: number, send: () => Promise<T>): Promise<T> {
  if (ms === 0) return send()
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      timedOut.add(client)
      ;(client as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.()
      reject(queryTimeoutError(ms))
    }, ms)
    // After a timeout the destroyed connection fails `send` too: the first outcome stands.
    send().then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

/** node-postgres' own query_timeout (a caller's pool): the connection still waits for the answer. */
const isPgReadTimeout = (error: unknown): boolean =>
  error instanceof Error && error.message === 'Query read timeout'

/** A connection that must not go back to the pool. */
const broken = (client: PgClientLike, error: unknown): boolean =>
  timedOut.has(client) ||
  isPgReadTimeout(error) ||
  isConnectionError(error) ||
  isUserEngineError(error, 'POOLED_CONNECTION')

/** `pg` is an optional peer: without it, DEPENDENCY_MISSING naming `npm i pg`. */
async function loadPg() {
  return (await importOptional(() => import('pg'), 'pg', 'the node-postgres store')).default
}

/** A pg.Client announces its server process id (BackendKeyData) as `processID`. */
interface PgProcessLike {
  readonly processID?: unknown
}

// Whether each physical connection goes through a pooler, asked once per connection; `knownPooled` holds the
// answer once it came, so the hot path reads it without waiting on a promise.
const pooledConnections = new WeakMap<object, Promise<boolean>>()
const knownPooled = new WeakMap<object, boolean>()

/**
 * A pooler answers the startup itself and announces a process id of its own making (PgBouncer: random), so
 * a connection whose announced id differs from `pg_backend_pid()` goes through one. A client that announces
 * none (a caller's pool of another kind) counts as direct: there is nothing to compare.
 */
function throughPooler(client: PgClientLike, timeoutMs: number): Promise<boolean> {
  const announced = (client as PgClientLike & PgProcessLike).processID
  if (typeof announced !== 'number') return Promise.resolve(false)
  let pooled = pooledConnections.get(client)
  if (pooled === undefined) {
    pooled = bounded(client, timeoutMs, () => client.query('SELECT pg_backend_pid() AS pid')).then((r) => {
      const through = Number((r.rows[0] as { pid?: unknown } | undefined)?.pid) !== announced
      knownPooled.set(client, through)
      return through
    })
    pooledConnections.set(client, pooled)
    pooled.catch(() => pooledConnections.delete(client))
  }
  return pooled
}

// 26000: no such prepared statement; 42P05: it exists already. Our statements are named once per connection,
// so either means the statements of one connection reached several server connections.
const MOVED_PREPARED_STATE = new Set(['26000', '42P05'])

function preparedStatementMoved(error: unknown): UserEngineError {
  const state = sqlState(error)
  return new UserEngineError(
    ErrorCode.POOLED_CONNECTION,
    `a prepared statement was ${state === '26000' ? 'missing on' : 'already on'} the server connection (SQLSTATE ${state}): a pooler in transaction mode hands this connection's statements to several server connections and does not carry prepared statements (PgBouncer before 1.21, or max_prepared_statements = 0). Open the store with preparedStatements: false (or leave it unset), or set max_prepared_statements in PgBouncer 1.21+`,
    { details: { sqlState: state } },
  )
}

/** A statement's failure as the store sees it: a prepared statement gone astray, or the error noting where. */
function queryError(error: unknown, named: boolean, target: ConnectionTarget): unknown {
  if (isPgReadTimeout(error)) {
    const lost = new Error(
      "the server did not answer within the pool's query_timeout; the connection is closed",
    )
    return noteTarget(Object.assign(lost, { code: 'ETIMEDOUT' }), target)
  }
  const state = sqlState(error)
  if (named && state !== null && MOVED_PREPARED_STATE.has(state)) return preparedStatementMoved(error)
  return noteTarget(error, target)
}

/** One statement on a held connection; named (prepared once per connection) when `prepared` and it has values. */
async function runStatement<R>(
  client: PgClientLike,
  sql: string,
  params: readonly unknown[] | undefined,
  prepared: boolean,
  target: ConnectionTarget,
  timeoutMs: number,
): Promise<SqlResult<R>> {
  // node-postgres reads the values and never changes them: no copy.
  const values = params as unknown[] | undefined
  const named = prepared && values !== undefined
  try {
    const r = await bounded(client, timeoutMs, () =>
      named ? client.query({ name: statementName(sql), text: sql, values }) : client.query(sql, values),
    )
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 }
  } catch (error) {
    throw queryError(error, named, target)
  }
}

/** The parts of node-postgres' Connection a TextRowsQuery writes with (as pg-cursor does). */
interface PgConnectionLike {
  parsedStatements: Record<string, string>
  submittedNamedStatements: Record<string, string>
  stream: { cork?: () => void; uncork?: () => void }
  parse(message: { text: string; name: string }): void
  bind(message: { portal: string; statement: string; values: readonly string[]; binary: boolean }): void
  execute(message: { portal: string }): void
  sync(): void
  sendCopyFail(message: string): void
}

const isPgConnection = (c: unknown): c is PgConnectionLike => {
  const x = c as Partial<Record<keyof PgConnectionLike, unknown>> | null
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.parsedStatements === 'object' &&
    typeof x.submittedNamedStatements === 'object' &&
    typeof x.stream === 'object' &&
    typeof x.parse === 'function' &&
    typeof x.bind === 'function' &&
    typeof x.execute === 'function' &&
    typeof x.sync === 'function' &&
    typeof x.sendCopyFail === 'function'
  )
}

/** A row of text values in select order; null for NULL. */
export type TextRow = (string | null)[]

/**
 * A node-postgres Submittable (the interface pg-cursor implements) for a statement whose columns the caller
 * knows: Parse (once per connection when named), Bind, Execute and Sync, without the Describe a pg Query
 * sends, so no RowDescription is built, sent or parsed, and rows stay the text the server sent. The client
 * calls the handle* methods while this is its active query.
 */
class TextRowsQuery {
  readonly rows: TextRow[] = []
  #done = false
  constructor(
    /** '' for an unnamed statement (parsed on every call). */
    readonly name: string,
    readonly text: string,
    readonly values: readonly string[],
    readonly resolve: (rows: TextRow[]) => void,
    readonly reject: (error: unknown) => void,
  ) {}

  submit(connection: PgConnectionLike): null {
    const { name, text } = this
    connection.stream.cork?.()
    try {
      if (
        name === '' ||
        !(name in connection.parsedStatements || name in connection.submittedNamedStatements)
      ) {
        connection.parse({ text, name })
        if (name !== '') connection.submittedNamedStatements[name] = text
      }
      connection.bind({ portal: '', statement: name, values: this.values, binary: false })
      connection.execute({ portal: '' })
      connection.sync()
    } finally {
      connection.stream.uncork?.()
    }
    return null
  }

  handleDataRow(message: { fields: TextRow }): void {
    this.rows.push(message.fields)
  }

  handleError(error: unknown): void {
    if (this.#done) return
    this.#done = true
    this.reject(error)
  }

  handleReadyForQuery(): void {
    if (this.#done) return
    this.#done = true
    this.resolve(this.rows)
  }

  handleRowDescription(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
  handleCopyInResponse(connection: PgConnectionLike): void {
    connection.sendCopyFail('user-engine reads copy nothing')
  }
}

// Every type as the text the server sent, for the fallback through an ordinary pg query.
const TEXT_TYPES = { getTypeParser: () => (value: string) => value }

async function runTextStatement(
  client: PgClientLike,
  sql: string,
  params: readonly string[],
  prepared: boolean,
  target: ConnectionTarget,
  timeoutMs: number,
): Promise<TextRow[]> {
  const name = prepared ? statementName(sql) : ''
  try {
    const connection = (client as { connection?: unknown }).connection
    if (isPgConnection(connection)) {
      return await bounded(
        client,
        timeoutMs,
        () =>
          new Promise<TextRow[]>((resolve, reject) => {
            ;(client as unknown as { query(q: TextRowsQuery): unknown }).query(
              new TextRowsQuery(name, sql, params, resolve, reject),
            )
          }),
      )
    }
    // A client of another kind: its own query, rows as arrays of text.
    const config = { text: sql, values: [...params], rowMode: 'array', types: TEXT_TYPES }
    const r = await bounded(client, timeoutMs, () =>
      client.query(prepared ? { ...config, name } : (config as never)),
    )
    return r.rows as TextRow[]
  } catch (error) {
    throw queryError(error, prepared, target)
  }
}

function sessionOf(
  client: PgClientLike,
  target: ConnectionTarget,
  prepared: boolean,
  timeoutMs: number,
): SqlSession {
  return {
    query: <R>(sql: string, params?: readonly unknown[]) =>
      runStatement<R>(client, sql, params, prepared, target, timeoutMs),
    // No values: node-postgres sends the simple protocol, which accepts a script of several statements.
    // Not bounded: scripts are migrations, whose CREATE INDEX (CONCURRENTLY) may rightly run for hours.
    exec: async (sql: string) => {
      try {
        await client.query(sql)
      } catch (error) {
        throw queryError(error, false, target)
      }
    },
    throughPooler: () => throughPooler(client, timeoutMs),
  }
}

const guarded = new WeakSet<object>()
const ignore = () => {}

/**
 * node-postgres emits 'error' on a client whose connection ends unexpectedly (a crashed or restarted server)
 * even while a query holds it, after failing that query; a pool listens only to idle clients, so unhandled
 * the event would crash the host process. The failed statement already reports the outage (STORE_UNAVAILABLE),
 * and the broken client is destroyed on release: the event itself needs no handling. Once per connection.
 */
function guardCheckedOut(client: PgClientLike): void {
  const emitter = client as PgClientLike & Partial<PgEmitterLike>
  if (guarded.has(client) || typeof emitter.on !== 'function') return
  guarded.add(client)
  emitter.on('error', ignore)
}

/** How long a closed pool's connections wait for the server to close them before they are destroyed. */
const TERMINATE_GRACE_MS = 1000

type SocketLike = { destroyed: boolean; destroy(): void; once(event: 'close', fn: () => void): unknown }

/**
 * The sockets of the connections a store's own pool opened. `pool.end()` sends each server a Terminate and
 * resolves, and the socket then waits for the server to close it: a frozen server (stopped, partitioned)
 * never does, and the socket holds the process open for as long. Those still open after a grace are
 * destroyed.
 */
class LingeringSockets {
  readonly #open = new Set<SocketLike>()

  readonly track = (client: PgClientLike): void => {
    // node-postgres keeps the socket as `connection.stream`; a pool of another shape is not tracked.
    const stream = (client as { connection?: { stream?: Partial<SocketLike> } }).connection?.stream
    if (typeof stream?.destroy !== 'function' || typeof stream.once !== 'function') return
    const socket = stream as SocketLike
    this.#open.add(socket)
    socket.once('close', () => this.#open.delete(socket))
  }

  releaseAfter(ms: number): void {
    if (this.#open.size === 0) return
    // Unreferenced: a socket still open keeps the process alive until this runs; closed ones do not need it.
    setTimeout(() => {
      for (const socket of this.#open) if (!socket.destroyed) socket.destroy()
      this.#open.clear()
    }, ms).unref()
  }
}

/**
 * A driver over a node-postgres pool: queries go to any pooled connection, a session holds one.
 *
 * Nothing connects until the first statement. A connection that cannot be opened raises STORE_REFUSED (the
 * server refused it: unknown database or role, failed authentication, a refused startup parameter) or
 * STORE_UNAVAILABLE (unreachable, starting, stopping, full), naming host and port and never a password.
 * A statement without an answer within `queryTimeoutMs` fails with an ETIMEDOUT connection error (the store
 * types it STORE_UNAVAILABLE) and its connection is closed. Invalid options raise VALIDATION; a missing `pg`
 * package DEPENDENCY_MISSING.
 */
export async function createNodePostgresDriver(options: NodePostgresDriverOptions = {}): Promise<SqlDriver> {
  const valid = validateNodePostgresOptions(options)
  let pool = valid.pool
  const owned = pool === undefined
  let target: ConnectionTarget
  if (pool === undefined) {
    const pg = await loadPg()
    const created = new pg.Pool({
      ...(valid.connectionString === undefined ? {} : { connectionString: valid.connectionString }),
      // A server that accepts TCP but never answers (a hung host, a black-holed route) must fail the call,
      // not hold it forever; keep-alive finds connections a dead peer left open.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    })
    // An idle connection dropped by the server emits 'error' on the pool; unhandled, it would crash the
    // process. The next query reports the outage as STORE_UNAVAILABLE instead.
    created.on('error', () => {})
    pool = created
    target = targetOf({ connectionString: valid.connectionString })
  } else {
    // A pg.Pool keeps its settings in `options`; any other pool is described by the PG* defaults.
    const settings = (pool as { options?: unknown }).options
    target = targetOf(typeof settings === 'object' && settings !== null ? settings : {})
  }
  const p = pool
  // Guarded as the pool hands a new connection out, not after `await p.connect()` resumes: pg-pool drops
  // its idle 'error' listener synchronously, and a FATAL (a terminated backend) read in the same chunk as
  // the connection's ReadyForQuery is emitted before that await returns, with nothing listening.
  const events = pool as Partial<PgEmitterLike>
  if (typeof events.on === 'function') events.on.call(pool, 'connect', guardCheckedOut)
  const sockets = new LingeringSockets()
  if (owned && typeof events.on === 'function') events.on.call(pool, 'connect', sockets.track)
  // A caller's pool gets the same guard for as long as the store uses it: an idle connection the server
  // drops (a restart, pg_terminate_backend) must not crash a service that attached no 'error' listener.
  const ignoreIdleError = () => {}
  if (!owned && typeof events.on === 'function') events.on.call(pool, 'error', ignoreIdleError)
  const preparedSetting = valid.preparedStatements
  // Only on connections opened here: a caller's pool brings its own (node-postgres' query_timeout).
  const timeoutMs = owned ? (valid.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS) : 0
  const connect = async (): Promise<PgClientLike> => {
    let client: PgClientLike
    try {
      client = owned ? await checkoutWithin(p, CONNECT_TIMEOUT_MS) : await p.connect()
    } catch (error) {
      throw connectError(error, failedTarget(error, target))
    }
    guardCheckedOut(client)
    return client
  }
  /** One statement on a pooled connection (what pool.query does, with the connect step typed). */
  const onConnection = async <T>(fn: (session: SqlSession) => Promise<T>): Promise<T> => {
    const client = await connect()
    let result: T
    try {
      // Unset: named statements on a direct connection only (a pooler may not carry them).
      const prepared = preparedSetting ?? !(await throughPooler(client, timeoutMs))
      result = await fn(sessionOf(client, target, prepared, timeoutMs))
    } catch (error) {
      // A broken connection must not go back to the pool, nor one whose prepared statements are astray.
      client.release(broken(client, error))
      throw noteTarget(error, target)
    }
    // `fn` may have caught a timeout and gone on: the closed connection still must not be reused.
    client.release(timedOut.has(client))
    return result
  }
  /** The connection's prepared-statement switch, with no wait once its pooler check has answered. */
  const preparedOn = (client: PgClientLike): boolean | Promise<boolean> => {
    if (preparedSetting !== undefined) return preparedSetting
    const pooled = knownPooled.get(client)
    return pooled === undefined ? throughPooler(client, timeoutMs).then((p) => !p) : !pooled
  }
  /** One statement on a pooled connection: onConnection's work without a session object or closures per call. */
  const oneStatement = async <T>(
    run: (client: PgClientLike, prepared: boolean) => Promise<T>,
  ): Promise<T> => {
    const client = await connect()
    let result: T
    try {
      const prepared = preparedOn(client)
      result = await run(client, typeof prepared === 'boolean' ? prepared : await prepared)
    } catch (error) {
      client.release(broken(client, error))
      throw noteTarget(error, target)
    }
    client.release()
    return result
  }
  let closed = false
  return {
    kind: 'postgres',
    query: <R>(sql: string, params?: readonly unknown[]) =>
      oneStatement((client, prepared) => runStatement<R>(client, sql, params, prepared, target, timeoutMs)),
    queryText: (sql: string, params: readonly string[]) =>
      oneStatement((client, prepared) => runTextStatement(client, sql, params, prepared, target, timeoutMs)),
    // A script must run on one connection (the pool may hand each query to a different one).
    exec: (sql) => onConnection((session) => session.exec(sql)),
    session: (fn) => onConnection(fn),
    throughPooler: () => onConnection((session) => session.throughPooler?.() ?? Promise.resolve(false)),
    listen: (channel, onNotify, onLost) => listenOn(connect, channel, onNotify, onLost, target, timeoutMs),
    async close() {
      if (closed) return
      closed = true
      if (owned) {
        await p.end()
        sockets.releaseAfter(TERMINATE_GRACE_MS)
      } else if (typeof events.off === 'function') events.off.call(p, 'error', ignoreIdleError)
    },
  }
}

/**
 * LISTEN on a pooled connection held until `close()` (it counts against the pool's size). The channel is a
 * constant of this package, checked to be a plain name because LISTEN takes no parameter.
 */
async function listenOn(
  connect: () => Promise<PgClientLike>,
  channel: string,
  onNotify: () => void,
  onLost: (error: unknown) => void,
  target: ConnectionTarget,
  timeoutMs: number,
): Promise<SqlListener> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) {
    throw new ValidationError('a LISTEN channel must be a plain lower-case name', {
      details: { field: 'channel' },
    })
  }
  const client = await connect()
  const emitter = client as PgClientLike & PgEmitterLike
  const on = emitter.on?.bind(client)
  const off = emitter.off?.bind(client)
  if (on === undefined || off === undefined) {
    client.release()
    throw new ValidationError('listening needs a pg.Pool whose clients emit events', {
      details: { field: 'pool' },
    })
  }
  let done = false
  const onNotification = (message: { channel?: string }) => {
    if (message.channel === channel) onNotify()
  }
  const stop = (error: unknown) => {
    if (done) return
    done = true
    off('notification', onNotification)
    client.release(true)
    onLost(noteTarget(error, target))
  }
  const onError = (error: unknown) => stop(error)
  const onEnd = () => stop(new Error('the LISTEN connection ended'))
  on('notification', onNotification)
  on('error', onError)
  on('end', onEnd)
  try {
    await bounded(client, timeoutMs, () => client.query(`LISTEN ${channel}`))
  } catch (error) {
    done = true
    off('notification', onNotification)
    client.release(true)
    throw noteTarget(error, target)
  }
  return {
    async close() {
      if (done) return
      done = true
      off('notification', onNotification)
      // Destroyed rather than returned: the pool must not hand out a connection still listening.
      client.release(true)
    },
  }
}
