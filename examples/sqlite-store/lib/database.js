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
 * Any other database failure: STORE_UNAVAILABLE with the SQLite error reduced to its first words.
 * @param {unknown} error
 * @param {string} during
 */
export function unavailable(error, during) {
  if (error instanceof UserEngineError) return error
  const message = String(/** @type {{ message?: unknown }} */ (error)?.message ?? '')
  const kind = message.split(':')[0]?.slice(0, 80) || 'sqlite error'
  return new UserEngineError(ErrorCode.STORE_UNAVAILABLE, `the SQLite database failed during ${during}`, {
    cause: new SanitizedSqliteError(kind, null),
  })
}
