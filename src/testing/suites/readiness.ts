import { ErrorCode } from '../../domain/errors.js'
import { LATEST_SCHEMA_VERSION } from '../../store/schema-versions.js'
import { suite } from '../shared/context.js'
import { assert, expectCode } from '../shared/expect.js'

/** Store rule 1: not ready until migrated; a transaction on an unmigrated store is refused. */
export const readinessSuite = suite(
  'readiness',
  'a store is not ready, and refuses transactions, until migrated',
  [
    {
      name: 'an unmigrated store reports not ready with SCHEMA_NOT_READY',
      async run(ctx) {
        const store = await ctx.emptyStore()
        const r = await store.readiness()
        assert.equal(r.ready, false, 'ready before migrate()')
        assert.equal(r.reason, ErrorCode.SCHEMA_NOT_READY)
        assert.equal(r.latestVersion, LATEST_SCHEMA_VERSION)
        assert.ok(
          r.schemaVersion < LATEST_SCHEMA_VERSION,
          `schemaVersion ${r.schemaVersion} before migrate()`,
        )
        // diagnostics() may refuse an unmigrated store; if it answers, it reports the same version.
        const d = await store.diagnostics().catch(() => null)
        if (d) {
          assert.equal(
            d.schemaVersion,
            r.schemaVersion,
            'diagnostics().schemaVersion differs from readiness().schemaVersion before migrate()',
          )
        }
      },
    },
    {
      name: 'a transaction on an unmigrated store fails with SCHEMA_NOT_READY and never runs its callback',
      async run(ctx) {
        const store = await ctx.emptyStore()
        let called = false
        await expectCode(
          store.transaction(ctx.unknownTenantId(), async (tx) => {
            called = true
            tx.putUser({ id: 'u1', status: 'active' }, { mustNotExist: true })
          }),
          ErrorCode.SCHEMA_NOT_READY,
          'transaction before migrate()',
        )
        assert.equal(called, false, 'the callback ran on an unmigrated store')
      },
    },
    {
      name: 'after migrate() the store is ready at LATEST_SCHEMA_VERSION and transactions work',
      async run(ctx) {
        const store = await ctx.emptyStore()
        await store.migrate()
        const r = await store.readiness()
        assert.deepEqual(
          {
            ready: r.ready,
            reason: r.reason,
            schemaVersion: r.schemaVersion,
            latestVersion: r.latestVersion,
          },
          {
            ready: true,
            reason: null,
            schemaVersion: LATEST_SCHEMA_VERSION,
            latestVersion: LATEST_SCHEMA_VERSION,
          },
          'readiness() after migrate()',
        )
        const tenantId = ctx.unknownTenantId()
        await store.transaction(tenantId, async (tx) => {
          tx.putTenant({ id: tenantId, name: 'Ready', status: 'active' }, { mustNotExist: true })
          tx.putUser({ id: 'u1', status: 'active' }, { mustNotExist: true })
        })
        assert.equal((await store.getUser(tenantId, 'u1'))?.version, 1)
        const d = await store.diagnostics()
        assert.deepEqual(
          { schemaVersion: d.schemaVersion, latestVersion: d.latestVersion },
          { schemaVersion: LATEST_SCHEMA_VERSION, latestVersion: LATEST_SCHEMA_VERSION },
          'diagnostics() after migrate() reports the version readiness() reports',
        )
      },
    },
  ],
)
