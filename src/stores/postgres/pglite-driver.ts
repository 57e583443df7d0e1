import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { SqlDriver, SqlResult, SqlSession } from './driver.js'

/** The part of a PGlite instance the driver uses, typed structurally so the package stays optional. */
export interface PGliteLike {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>
  exec(sql: string): Promise<unknown>
  close(): Promise<void>
  readonly closed?: boolean
}

export interface PgliteDriverOptions {
  /** A directory to keep the database in; omitted, the database lives in memory. */
  readonly dataDir?: string
  /** An instance the caller owns: `close()` leaves it open. */
  readonly db?: PGliteLike
}

/**
 * A driver over embedded PGlite. PGlite is one connection, so every query and every session is
 * serialized through one queue: a session (BEGIN ... COMMIT, an advisory lock) has the connection to
 * itself until it ends, and nothing else interleaves with it.
 */
export async function createPgliteDriver(options: PgliteDriverOptions = {}): Promise<SqlDriver> {
  let db = options.db
  const owned = db === undefined
  if (db === undefined) {
    const { PGlite } = await import('@electric-sql/pglite')
    // PGlite creates its data directory but not the parents (./.user-engine/data on a fresh checkout).
    if (options.dataDir !== undefined) mkdirSync(dirname(options.dataDir), { recursive: true })
    const created = new PGlite(options.dataDir)
    await created.waitReady
    db = created as unknown as PGliteLike
  }
  const conn = db
  let tail: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn)
    // The queue continues whether this step succeeds or fails.
    tail = run.catch(() => {})
    return run
  }
  const session: SqlSession = {
    query: async <R>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>> => {
      const r = await conn.query<R>(sql, params === undefined ? undefined : [...params])
      return { rows: r.rows, rowCount: r.affectedRows ?? 0 }
    },
    exec: async (sql: string) => {
      await conn.exec(sql)
    },
  }
  let closed = false
  return {
    kind: 'pglite',
    query: (sql, params) => exclusive(() => session.query(sql, params)),
    exec: (sql) => exclusive(() => session.exec(sql)),
    session: (fn) => exclusive(() => fn(session)),
    async close() {
      if (closed) return
      closed = true
      if (owned) await exclusive(() => conn.close())
    },
  }
}
