import {
  createNodePostgresDriver,
  NODE_POSTGRES_DRIVER_OPTION_KEYS,
  type PgPoolLike,
  validateNodePostgresOptions,
} from './driver/node-postgres-driver.js'
import {
  POSTGRES_STORE_OPTION_KEYS,
  type PostgresStoreOptions,
  PostgresUserEngineStore,
  validatePostgresStoreOptions,
} from './postgres-store.js'

export type { SqlDriver, SqlResult, SqlSession } from './driver/driver.js'
export { SanitizedDatabaseError } from './driver/errors.js'
export {
  createNodePostgresDriver,
  type NodePostgresDriverOptions,
  type PgClientLike,
  type PgPoolLike,
} from './driver/node-postgres-driver.js'
export { PostgresOutbox } from './postgres-outbox.js'
export { type PostgresStoreOptions, PostgresUserEngineStore } from './postgres-store.js'
export { MIGRATIONS, type MigrationEntry } from './schema/manifest.js'
export { checksumOf, migrationStatements, readMigrationSql } from './schema/sql-files.js'

export interface NodePostgresStoreOptions extends PostgresStoreOptions {
  /** Where to connect; the store creates (and on `close()` ends) a pool. Else PG* environment variables. */
  readonly connectionString?: string
  /** A `pg.Pool` the caller owns: the store uses it and leaves it open on `close()`. */
  readonly pool?: PgPoolLike
  /**
   * Named prepared statements. Unset: on over a direct connection, off through a pooler (detected per
   * connection). `true` through a pooler needs one that carries them (PgBouncer 1.21+ with
   * `max_prepared_statements` above 0, or session mode), else calls fail with POOLED_CONNECTION: see
   * docs/operations.md.
   */
  readonly preparedStatements?: boolean
  /**
   * The longest one statement waits for the server's answer on the store's own connections, in ms
   * (not with `pool`). Default 30 000; 0 turns it off. Past it the call fails with STORE_UNAVAILABLE naming
   * host and port (a commit: "may or may not have been applied"; nothing is retried) and the connection is
   * closed, so a late answer never reaches another statement. Migration scripts are not bounded. See
   * docs/operations.md, "When the database stops answering".
   */
  readonly queryTimeoutMs?: number
}

/**
 * Opens the store on a Postgres server through node-postgres. Validates the schema history (refusing
 * drift or a newer schema); an unmigrated database opens not ready until `migrate()`.
 *
 * Errors, each a UserEngineError: VALIDATION for bad options (checked before anything connects),
 * DEPENDENCY_MISSING without the `pg` package, STORE_REFUSED when the server refuses the connection (no
 * such database or role, failed authentication, a refused startup parameter), STORE_UNAVAILABLE when it
 * cannot be reached or a statement gets no answer within `queryTimeoutMs`; then the schema errors of
 * `PostgresUserEngineStore.open`.
 */
export async function createNodePostgresStore(
  options: NodePostgresStoreOptions = {},
): Promise<PostgresUserEngineStore> {
  const what = 'createNodePostgresStore options'
  const driverOptions = validateNodePostgresOptions(options, what, POSTGRES_STORE_OPTION_KEYS)
  const storeOptions = validatePostgresStoreOptions(options, what, NODE_POSTGRES_DRIVER_OPTION_KEYS)
  const driver = await createNodePostgresDriver(driverOptions)
  return PostgresUserEngineStore.open(driver, storeOptions)
}
