/** What a query returns: rows as objects keyed by column name. */
export interface SqlResult<R> {
  readonly rows: R[]
  /** Rows changed by an INSERT/UPDATE/DELETE (0 when the driver does not say). */
  readonly rowCount: number
}

/** One connection's worth of SQL: parameterized queries, and scripts for migrations. */
export interface SqlSession {
  /** One parameterized statement ($1, $2, ...). Values are never spliced into the text. */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>>
  /** A script of one or more statements without parameters (migration files). */
  exec(sql: string): Promise<void>
  /**
   * Optional: true when a pooler (PgBouncer, ...) stands between this connection and the server: the
   * server process the connection announced at startup is not the one answering. Server drivers only.
   */
  throughPooler?(): Promise<boolean>
}

/**
 * The small, structural driver the Postgres store is written against, so `pg` and `@electric-sql/pglite`
 * stay optional: each has an adapter in this folder and nothing else imports them.
 */
export interface SqlDriver extends SqlSession {
  /** `postgres` (a server through node-postgres) or `pglite` (embedded). */
  readonly kind: 'postgres' | 'pglite'
  /**
   * Runs `fn` on one dedicated connection held for its whole duration: what advisory locks and explicit
   * BEGIN/COMMIT need. Other work on the driver may run meanwhile on other connections (pglite: waits).
   */
  session<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>
  /**
   * Optional: LISTEN on `channel` on a connection of its own, calling `onNotify` for each notification, and
   * `onLost` once if that connection drops (the listener is then gone; listen again). Server drivers only.
   */
  listen?(channel: string, onNotify: () => void, onLost: (error: unknown) => void): Promise<SqlListener>
  /**
   * Optional, for hot reads whose columns the caller knows: one parameterized statement with text parameters,
   * each row an array of the text the server sent (null for NULL), in select order, no value parsed.
   */
  queryText?(sql: string, params: readonly string[]): Promise<(string | null)[][]>
  /** Releases what the driver owns (a pool it created, an embedded database). */
  close(): Promise<void>
}

/** A held LISTEN connection; `close()` gives it up. */
export interface SqlListener {
  close(): Promise<void>
}
