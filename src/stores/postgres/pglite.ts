import { createPgliteDriver } from './pglite-driver.js'
import { type PostgresStoreOptions, PostgresUserEngineStore } from './postgres-store.js'

export { createPgliteDriver, type PGliteLike, type PgliteDriverOptions } from './pglite-driver.js'
export { type PostgresStoreOptions, PostgresUserEngineStore } from './postgres-store.js'

export interface PgliteStoreOptions extends PostgresStoreOptions {
  /** A directory to keep the database in; omitted, the database lives in memory and ends with the store. */
  readonly dataDir?: string
}

/**
 * Opens the store on embedded PGlite (the same SQL as the server store, one connection). Validates the
 * schema history; an unmigrated database opens not ready until `migrate()`.
 */
export async function createPgliteStore(options: PgliteStoreOptions = {}): Promise<PostgresUserEngineStore> {
  const { dataDir, ...storeOptions } = options
  const driver = await createPgliteDriver(dataDir === undefined ? {} : { dataDir })
  return PostgresUserEngineStore.open(driver, storeOptions)
}
