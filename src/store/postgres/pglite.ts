import { createPgliteDriver } from './driver/pglite-driver.js'
import {
  type PostgresStoreOptions,
  PostgresUserEngineStore,
  validatePostgresStoreOptions,
} from './postgres-store.js'

export { createPgliteDriver, type PGliteLike, type PgliteDriverOptions } from './driver/pglite-driver.js'
export { type PostgresStoreOptions, PostgresUserEngineStore } from './postgres-store.js'

export interface PgliteStoreOptions extends PostgresStoreOptions {
  /**
   * A directory to keep the database in (created if missing); omitted, the database lives in memory and
   * ends with the store. One process at a time: see `createPgliteDriver`.
   */
  readonly dataDir?: string
}

/**
 * Opens the store on embedded PGlite (the same SQL as the server store, one connection). Validates the
 * schema history; an unmigrated database opens not ready until `migrate()`.
 *
 * Errors, each a UserEngineError: VALIDATION for bad options (not an object, an unknown key) or a `dataDir`
 * that is not a directory path (a file, empty, not a string), STORE_LOCKED when another live process (or another store in this one) has the directory
 * open, STORE_UNAVAILABLE when it cannot be created, written or started, DEPENDENCY_MISSING without the
 * `@electric-sql/pglite` package; then the schema errors of `PostgresUserEngineStore.open`. `close()`
 * releases the directory.
 */
export async function createPgliteStore(options: PgliteStoreOptions = {}): Promise<PostgresUserEngineStore> {
  // Checked before PGlite loads: a typo in an option must not cost a database start.
  const storeOptions = validatePostgresStoreOptions(options, 'createPgliteStore options', ['dataDir'])
  const driver = await createPgliteDriver(options.dataDir === undefined ? {} : { dataDir: options.dataDir })
  return PostgresUserEngineStore.open(driver, storeOptions)
}
