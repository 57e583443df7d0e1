// @ts-check
// The harness's store factories for this store, in one place: the node:test file passes them to
// registerConformanceTests, and the CLI takes this module as it is:
//   npx user-engine conformance --store ./conformance.js
import { SqliteDatabase, SqliteUserEngineStore } from './lib/index.js'

/** @param {import('user-engine').UserEngineStore} store */
const databaseOf = (store) => /** @type {SqliteUserEngineStore} */ (store).database

/** @type {Pick<import('user-engine/testing').ConformanceOptions, 'createStore' | 'plantSchemaVersion' | 'reopenStore'>} */
const factories = {
  // Every store gets a database of its own: a new SQLite database in memory is cheap, brand-new and never
  // migrated, which serves ownDatabase: true and false alike.
  createStore: async () => SqliteUserEngineStore.open({ database: await SqliteDatabase.create() }),
  // No createSharedStores: a sql.js database lives in one process (capabilities.multiProcess is false).
  // The schema-history cases: write a history row as a newer release or a hand edit would, then reopen.
  plantSchemaVersion: async (store, { version, name, checksum }) => {
    databaseOf(store).run(
      `INSERT OR REPLACE INTO ue_schema_versions (version, name, checksum, applied_at, execution_ms)
       VALUES (?, ?, ?, ?, 0)`,
      [version, name, checksum, new Date().toISOString()],
    )
  },
  reopenStore: async (store) => SqliteUserEngineStore.open({ database: databaseOf(store) }),
}

export default factories
