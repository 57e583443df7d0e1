import { createNodePostgresDriver, type PgPoolLike } from './node-postgres-driver.js'
import { type PostgresStoreOptions, PostgresUserEngineStore } from './postgres-store.js'

export type { SqlDriver, SqlResult, SqlSession } from './driver.js'
export { SanitizedDatabaseError } from './errors.js'
export {
  createNodePostgresDriver,
  type NodePostgresDriverOptions,
  type PgClientLike,
  type PgPoolLike,
} from './node-postgres-driver.js'
export { PostgresOutbox } from './postgres-outbox.js'
export { type PostgresStoreOptions, PostgresUserEngineStore } from './postgres-store.js'

export interface NodePostgresStoreOptions extends PostgresStoreOptions {
  /** Where to connect; the store creates (and on `close()` ends) a pool. Else PG* environment variables. */
  readonly connectionString?: string
  /** A `pg.Pool` the caller owns: the store uses it and leaves it open on `close()`. */
  readonly pool?: PgPoolLike
}

/**
 * Opens the store on a Postgres server through node-postgres. Validates the schema history (refusing
 * drift or a newer schema); an unmigrated database opens not ready until `migrate()`.
 */
export async function createNodePostgresStore(
  options: NodePostgresStoreOptions = {},
): Promise<PostgresUserEngineStore> {
  const { connectionString, pool, ...storeOptions } = options
  const driver = await createNodePostgresDriver(
    pool === undefined ? (connectionString === undefined ? {} : { connectionString }) : { pool },
  )
  return PostgresUserEngineStore.open(driver, storeOptions)
}
