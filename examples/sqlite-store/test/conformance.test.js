// @ts-check
// The whole conformance harness from user-engine/testing against the SQLite store, under node:test.
import { test } from 'node:test'
import { registerConformanceTests } from 'user-engine/testing'
import { SqliteDatabase, SqliteUserEngineStore } from '../src/index.js'

/** @param {import('user-engine').UserEngineStore} store */
const databaseOf = (store) => /** @type {SqliteUserEngineStore} */ (store).database

registerConformanceTests({
  // Every store gets a database of its own: a new SQLite database in memory is cheap, brand-new and never
  // migrated, which serves ownDatabase: true and false alike.
  createStore: async () => SqliteUserEngineStore.open({ database: await SqliteDatabase.create() }),
  // No createSharedStores: sql.js cannot share one database between processes (multiProcess: false).
  // The schema-history cases: write a history row as a newer release or a hand edit would, then reopen.
  plantSchemaVersion: async (store, { version, name, checksum }) => {
    databaseOf(store).run(
      `INSERT OR REPLACE INTO ue_schema_versions (version, name, checksum, applied_at, execution_ms)
       VALUES (?, ?, ?, ?, 0)`,
      [version, name, checksum, new Date().toISOString()],
    )
  },
  reopenStore: async (store) => SqliteUserEngineStore.open({ database: databaseOf(store) }),
  // Declared up front, so the cases this store cannot run are registered as skipped with the reason.
  capabilities: { multiProcess: false, rowLocking: false },
  test,
  skipTest: (name, reason) => test(name, { skip: reason }, () => {}),
})
