import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { isUserEngineError } from '../../src/domain/errors.js'
import { createMigrator } from '../../src/store/postgres/schema/runner.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { SQL_ADAPTERS, type TestDb } from '../support/adapters.js'

// A CREATE INDEX CONCURRENTLY interrupted by a crash leaves an INVALID index, and IF NOT EXISTS then skips
// it. The runner must not record the version over it.
for (const adapter of SQL_ADAPTERS) {
  describe(`invalid index after a non-transactional migration on ${adapter.name}`, {
    skip: await adapter.skip(),
  }, () => {
    const dbs: TestDb[] = []
    after(async () => {
      await Promise.all(dbs.map((db) => db.drop()))
    })

    test('is refused with MIGRATION_FAILED and the version is not recorded; after a drop, migrate succeeds', async () => {
      const db = await adapter.database(5)
      dbs.push(db)
      const driver = await db.driver()
      // Simulate the interrupted build of 0005's index: present, marked invalid, history row gone.
      await driver.exec(`UPDATE pg_index SET indisvalid = false
        WHERE indexrelid = 'user_engine_outbox_claim_order_idx'::regclass;
        DELETE FROM user_engine_schema_versions WHERE version = 5`)
      await assert.rejects(createMigrator(driver).migrate(), (e) => {
        assert.ok(isUserEngineError(e, 'MIGRATION_FAILED'))
        assert.match((e as Error).message, /user_engine_outbox_claim_order_idx/)
        return true
      })
      assert.equal((await createMigrator(driver).status()).currentVersion, 4)

      await driver.exec('DROP INDEX user_engine_outbox_claim_order_idx')
      const result = await createMigrator(driver).migrate()
      assert.deepEqual(
        result.applied.map((a) => a.version),
        Array.from({ length: LATEST_SCHEMA_VERSION - 4 }, (_, i) => 5 + i),
      )
      await driver.close()
    })
  })
}
