// @ts-check
// The harness's store factories for this store, in one place: the node:test file passes them to
// registerConformanceTests, and the CLI takes this module as it is:
//   npx user-engine conformance --store ./conformance.js
import { createHash } from 'node:crypto'
import { refusingTrigger, SqliteDatabase, SqliteUserEngineStore } from './lib/index.js'

/** @param {import('user-engine').UserEngineStore} store */
const databaseOf = (store) => /** @type {SqliteUserEngineStore} */ (store).database

/** A text literal for DDL, which takes no bound parameters. @param {string} value */
const literal = (value) => `'${value.replaceAll("'", "''")}'`

/**
 * @type {Pick<import('user-engine/testing').ConformanceOptions,
 *   'createStore' | 'plantSchemaVersion' | 'reopenStore' | 'refuseRows'>}
 */
const factories = {
  // Every store gets a database of its own: a new SQLite database in memory is cheap, brand-new and never
  // migrated, which serves ownDatabase: true and false alike.
  createStore: async () => SqliteUserEngineStore.open({ database: await SqliteDatabase.create() }),
  // No createSharedStores: a sql.js database lives in the memory of one process, so several stores over one
  // database as separate processes would hold them cannot exist (capabilities.concurrentInstances is false).
  // The schema-history cases: write a history row as a newer release or a hand edit would, then reopen.
  plantSchemaVersion: async (store, { version, name, checksum }) => {
    databaseOf(store).run(
      `INSERT OR REPLACE INTO ue_schema_versions (version, name, checksum, applied_at, execution_ms)
       VALUES (?, ?, ?, ?, 0)`,
      [version, name, checksum, new Date().toISOString()],
    )
  },
  reopenStore: async (store) => SqliteUserEngineStore.open({ database: databaseOf(store) }),
  // The atomicity case: the database itself refuses an audit record with this action and an event of this
  // type, as a failing constraint would. SQLite cannot add a CHECK to an existing table without rebuilding it,
  // so two BEFORE INSERT triggers abort the statement (RAISE(ABORT): the statement fails, the commit's
  // transaction stays open and the store rolls all of it back, then reports STORE_REFUSED).
  refuseRows: async (store, { auditAction, eventType }) => {
    const tag = createHash('sha256').update(`${auditAction}\0${eventType}`).digest('hex').slice(0, 16)
    const audit = `ue_refuse_audit_${tag}`
    const event = `ue_refuse_event_${tag}`
    databaseOf(store).exec(`
      CREATE TRIGGER IF NOT EXISTS ${audit} BEFORE INSERT ON ue_audit WHEN NEW.action = ${literal(auditAction)}
        BEGIN ${refusingTrigger(audit)}; END;
      CREATE TRIGGER IF NOT EXISTS ${event} BEFORE INSERT ON ue_outbox WHEN NEW.type = ${literal(eventType)}
        BEGIN ${refusingTrigger(event)}; END;
    `)
  },
}

export default factories
