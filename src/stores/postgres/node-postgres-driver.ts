import type { SqlDriver, SqlResult, SqlSession } from './driver.js'
import { isConnectionError } from './errors.js'

/** The part of a `pg` result the driver reads. */
export interface PgQueryResultLike {
  rows: unknown[]
  rowCount: number | null
}

/** The part of a `pg.PoolClient` the driver uses. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>
  release(destroy?: boolean | Error): void
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
}

const toResult = <R>(r: PgQueryResultLike): SqlResult<R> => ({
  rows: r.rows as R[],
  rowCount: r.rowCount ?? 0,
})

function sessionOf(client: Pick<PgClientLike, 'query'>): SqlSession {
  return {
    query: async <R>(sql: string, params?: readonly unknown[]) =>
      toResult<R>(await client.query(sql, params === undefined ? undefined : [...params])),
    // No values: node-postgres sends the simple protocol, which accepts a script of several statements.
    exec: async (sql: string) => {
      await client.query(sql)
    },
  }
}

/** A driver over a node-postgres pool: queries go to any pooled connection, a session holds one. */
export async function createNodePostgresDriver(options: NodePostgresDriverOptions = {}): Promise<SqlDriver> {
  let pool = options.pool
  const owned = pool === undefined
  if (pool === undefined) {
    const pg = (await import('pg')).default
    const created = new pg.Pool(
      options.connectionString === undefined ? {} : { connectionString: options.connectionString },
    )
    // An idle connection dropped by the server emits 'error' on the pool; unhandled, it would crash the
    // process. The next query reports the outage as STORE_UNAVAILABLE instead.
    created.on('error', () => {})
    pool = created
  }
  const p = pool
  const direct = sessionOf(p)
  let closed = false
  return {
    kind: 'postgres',
    query: direct.query,
    exec: async (sql) => {
      // A script must run on one connection (the pool may hand each query to a different one).
      const client = await p.connect()
      try {
        await client.query(sql)
        client.release()
      } catch (error) {
        client.release(isConnectionError(error))
        throw error
      }
    },
    async session<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
      const client = await p.connect()
      let result: T
      try {
        result = await fn(sessionOf(client))
      } catch (error) {
        // A broken connection must not go back to the pool.
        client.release(isConnectionError(error))
        throw error
      }
      client.release()
      return result
    },
    async close() {
      if (closed) return
      closed = true
      if (owned) await p.end()
    },
  }
}
