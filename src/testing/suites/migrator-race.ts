import { LATEST_SCHEMA_VERSION, SCHEMA_VERSIONS } from '../../store/schema-versions.js'
import { suite } from '../shared/context.js'
import { assert } from '../shared/expect.js'

/** Store rule 2 across processes: concurrent migrators apply each migration exactly once. */
export const migratorRaceSuite = suite(
  'migrator-race',
  'concurrent migrate() calls apply each migration once',
  [
    {
      name: 'four stores migrating one empty database at once apply each migration exactly once',
      requires: ['concurrentInstances'],
      needsSharedStores: true,
      async run(ctx) {
        const stores = await ctx.sharedStores(4, { ownDatabase: true })
        const results = await Promise.all(stores.map((s) => s.migrate()))
        const applied = results.flatMap((r) => r.applied.map((a) => a.version)).sort((a, b) => a - b)
        assert.deepEqual(
          applied,
          SCHEMA_VERSIONS.map((m) => m.version),
          'migrations applied more than once, or not at all',
        )
        for (const r of results) assert.equal(r.toVersion, LATEST_SCHEMA_VERSION)
        for (const s of stores) {
          const readiness = await s.readiness()
          assert.deepEqual([readiness.ready, readiness.schemaVersion], [true, LATEST_SCHEMA_VERSION])
        }
        const again = await Promise.all(stores.map((s) => s.migrate()))
        assert.ok(
          again.every((r) => r.applied.length === 0),
          'a migrate() after the race applied migrations',
        )
        const tenantId = ctx.unknownTenantId()
        await stores[0]!.transaction(tenantId, async (tx) => {
          tx.putTenant({ id: tenantId, name: 'Race', status: 'active' }, { mustNotExist: true })
          tx.putUser({ id: 'u1', status: 'active' }, { mustNotExist: true })
        })
        assert.equal(
          (await stores[3]!.getUser(tenantId, 'u1'))?.version,
          1,
          'the stores do not share a database',
        )
      },
    },
  ],
)
