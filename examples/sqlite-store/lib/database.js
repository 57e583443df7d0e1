// @ts-check
// The database handle: one SQLite database (sql.js, SQLite compiled to WebAssembly) and the few query helpers
// the store uses. sql.js runs every statement synchronously on the calling thread, so a method that does all
// its SQL between two awaits is one atomic step for every store open in this process.
import { createRequire } from 'node:module'
import { ErrorCode, UserEngineError } from 'user-engine'

/** @typedef {import('sql.js').Database} SqlJsDatabase */
/** @typedef {import('sql.js').SqlValue} SqlValue */
/** @typedef {Record<string, SqlValue>} Row */

/** @type {Promise<import('sql.js').SqlJsStatic> | undefined} */
let engine

/** Loads the SQLite WebAssembly module once per process (from the sql.js package, never the network). */
function loadEngine() {
  if (!engine) {
    const require = createRequire(import.meta.url)
    const wasm = require.resolve('sql.js/dist/sql-wasm.wasm')
    engine = import('sql.js').then((m) => m.default({ locateFile: () => wasm }))
  }
  return engine
}

/**
 * One SQLite database. Several stores may be open over it (a restarted process, the harness's reopen); it
 * is closed when the last of them closes. `PRAGMA foreign_keys` is not needed: the store has no foreign keys.
 */
export class SqliteDatabase {
  /** @param {SqlJsDatabase} db */
  constructor(db) {
    this.db = db
    /** How many stores are open over it. */
    this.users = 0
    this.closed = false
    /** @type {Set<() => void>} outbox wake subscribers of every store over this database */
    this.wakes = new Set()
  }

  /** A new, empty database in memory; `bytes` opens an exported image (`export()`) instead. */
  /** @param {Uint8Array} [bytes] */
  static async create(bytes) {
    const SQL = await loadEngine()
    return new SqliteDatabase(new SQL.Database(bytes))
  }

  /** The database image, for a provider that keeps it in a file. */
  export() {
    return this.db.export()
  }

  /**
   * All rows of one statement, as objects keyed by column name.
   * @param {string} sql
   * @param {SqlValue[]} [params]
   * @returns {Row[]}
   */
  all(sql, params = []) {
    const stmt = this.db.prepare(sql)
    try {
      stmt.bind(params)
      /** @type {Row[]} */
      const rows = []
      while (stmt.step()) rows.push(/** @type {Row} */ (stmt.getAsObject()))
      return rows
    } finally {
      stmt.free()
    }
  }

  /**
   * @param {string} sql
   * @param {SqlValue[]} [params]
   * @returns {Row | undefined}
   */
  get(sql, params = []) {
    return this.all(sql, params)[0]
  }

  /**
   * Runs one statement; returns how many rows it changed.
   * @param {string} sql
   * @param {SqlValue[]} [params]
   */
  run(sql, params = []) {
    this.db.run(sql, params)
    return this.db.getRowsModified()
  }

  /** @param {string} script several statements, no parameters */
  exec(script) {
    this.db.exec(script)
  }

  /**
   * Runs `fn` inside BEGIN IMMEDIATE ... COMMIT, rolling back when it throws. `fn` must be synchronous: no
   * other caller's statement can then run inside this transaction.
   * @template T
   * @param {() => T} fn
   * @returns {T}
   */
  atomically(fn) {
    this.db.exec('BEGIN IMMEDIATE')
    try {
      const result = fn()
      this.db.exec('COMMIT')
      return result
    } catch (error) {
      // A failed COMMIT or statement may already have ended the transaction; then ROLLBACK has nothing to do.
      try {
        this.db.exec('ROLLBACK')
      } catch {}
      throw error
    }
  }

  close() {
    if (!this.closed) {
      this.closed = true
      this.db.close()
    }
  }
}

/**
 * What a SQLite error may say in a log: its kind only. SQLite's messages name tables and columns, never
 * values, but a provider should not rely on that for every driver; the cause keeps the constraint name only.
 */
export class SanitizedSqliteError extends Error {
  /** @param {string} kind @param {string | null} constraint */
  constructor(kind, constraint) {
    super(constraint ? `${kind} (${constraint})` : kind)
    this.name = 'SanitizedSqliteError'
    this.kind = kind
    this.constraint = constraint
  }
}

/**
 * The unique constraint a SQLite error names (`UNIQUE constraint failed: t.a, t.b` lists the columns), or null.
 * @param {unknown} error
 */
export function uniqueViolation(error) {
  const message = String(/** @type {{ message?: unknown }} */ (error)?.message ?? '')
  const m = /^UNIQUE constraint failed: (.+)$/.exec(message)
  return m ? m[1] : null
}

/**
 * The constraint a SQLite error says refused a row (not a unique index: `uniqueViolation` handles those), as
 * `{ kind, constraint }`, or null for any other error. sql.js reports only the message, so it is matched on
 * SQLite's own wording: `CHECK constraint failed: <name>`, `NOT NULL constraint failed: <table.column>`,
 * `FOREIGN KEY constraint failed`, and for a trigger, which words its own message in `RAISE(ABORT, ...)`, the
 * same shape: `TRIGGER constraint failed: <trigger name>` (see `refusingTrigger`). A driver that reports the
 * extended result code (better-sqlite3's `code`, node:sqlite's `errcode`) would match `SQLITE_CONSTRAINT_*`
 * (1811 for a trigger, 275 for a CHECK) instead. A name that is not a plain identifier (an unnamed CHECK's
 * expression text) is left out.
 * @param {unknown} error
 * @returns {{ kind: string, constraint: string | null } | null}
 */
export function constraintRefusal(error) {
  const message = String(/** @type {{ message?: unknown }} */ (error)?.message ?? '')
  const m = /^(CHECK|NOT NULL|FOREIGN KEY|TRIGGER) constraint failed(?:: (.*))?$/.exec(message)
  if (!m) return null
  const name = m[2] ?? ''
  return { kind: m[1] ?? 'CONSTRAINT', constraint: /^[A-Za-z_][\w.]{0,100}$/.test(name) ? name : null }
}

/**
 * The statement a trigger runs to refuse a row the way a constraint does: `RAISE(ABORT, ...)` fails the
 * statement (SQLITE_CONSTRAINT_TRIGGER), leaves the transaction open for the caller to roll back, and says
 * `TRIGGER constraint failed: <name>`, which `constraintRefusal` recognizes.
 * @param {string} name the trigger's name, a plain identifier
 */
export function refusingTrigger(name) {
  if (!/^[A-Za-z_]\w{0,100}$/.test(name)) throw new TypeError('a trigger name is a plain identifier')
  return `SELECT RAISE(ABORT, 'TRIGGER constraint failed: ${name}')`
}

/**
 * Any other database failure, as a typed error with the SQLite error reduced to its kind (and a constraint's
 * name): a constraint or trigger that refused a row is STORE_REFUSED (the database answered, and the same
 * request fails again; the statement's transaction was rolled back, so nothing of it was written); anything
 * else is STORE_UNAVAILABLE.
 * @param {unknown} error
 * @param {string} during
 */
export function storeError(error, during) {
  if (error instanceof UserEngineError) return error
  const refusal = constraintRefusal(error)
  if (refusal) {
    return new UserEngineError(
      ErrorCode.STORE_REFUSED,
      `a ${refusal.kind} constraint of the SQLite database refused a row during ${during}; nothing was written`,
      {
        details: {
          constraintKind: refusal.kind,
          ...(refusal.constraint ? { constraint: refusal.constraint } : {}),
        },
        cause: new SanitizedSqliteError(`${refusal.kind} constraint failed`, refusal.constraint),
      },
    )
  }
  const message = String(/** @type {{ message?: unknown }} */ (error)?.message ?? '')
  const kind = message.split(':')[0]?.slice(0, 80) || 'sqlite error'
  return new UserEngineError(ErrorCode.STORE_UNAVAILABLE, `the SQLite database failed during ${during}`, {
    cause: new SanitizedSqliteError(kind, null),
  })
}
