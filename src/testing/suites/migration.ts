import { LATEST_SCHEMA_VERSION, SCHEMA_VERSIONS } from '../../store/schema-versions.js'
import { suite } from '../shared/context.js'
import { assert } from '../shared/expect.js'
import { seedUser } from '../shared/fixtures.js'

/** Store rule 2: migrate() applies the manifest in order, once; a second run applies nothing. */
export const migrationSuite = suite(
  'migration',
  'migrate() applies the manifest in order and is idempotent',
  [
    {
      name: 'the first migrate() applies every manifest version in order',
      async run(ctx) {
        const store = await ctx.emptyStore()
        const result = await store.migrate()
        assert.equal(result.fromVersion, 0, 'migrate().fromVersion on a new database')
        assert.equal(result.toVersion, LATEST_SCHEMA_VERSION, 'migrate().toVersion: LATEST_SCHEMA_VERSION')
        assert.deepEqual(
          result.applied.map((a) => ({ version: a.version, name: a.name })),
          SCHEMA_VERSIONS.map((m) => ({ version: m.version, name: m.name })),
          'migrate().applied: every SCHEMA_VERSIONS entry, in order, with its name',
        )
        for (const a of result.applied) {
          assert.ok(Number.isFinite(a.executionMs) && a.executionMs >= 0, `executionMs of ${a.version}`)
        }
        assert.ok(Number.isFinite(result.lockWaitMs) && result.lockWaitMs >= 0, 'lockWaitMs')
      },
    },
    {
      name: 'a second migrate() applies nothing',
      async run(ctx) {
        const store = await ctx.emptyStore()
        await store.migrate()
        const again = await store.migrate()
        assert.deepEqual(again.applied, [], 'the second migrate() applied migrations')
        assert.equal(again.fromVersion, LATEST_SCHEMA_VERSION, 'the second migrate().fromVersion')
        assert.equal(again.toVersion, LATEST_SCHEMA_VERSION, 'the second migrate().toVersion')
        assert.equal(
          (await store.readiness()).schemaVersion,
          LATEST_SCHEMA_VERSION,
          'readiness().schemaVersion after two migrate() calls',
        )
      },
    },
    {
      name: 'migrate() on an already migrated (shared) database applies nothing and keeps the data',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        const again = await store.migrate()
        assert.deepEqual(again.applied, [], 'migrate().applied on a migrated database')
        assert.equal(again.toVersion, LATEST_SCHEMA_VERSION, 'migrate().toVersion on a migrated database')
        assert.equal((await store.getUser(tenantId, userId))?.version, 1, 'the user is gone after migrate()')
        assert.equal((await store.readiness()).ready, true, 'readiness().ready after migrate()')
      },
    },
  ],
)
