import { ErrorCode, isUserEngineError } from '../../domain/errors.js'
import { LATEST_SCHEMA_VERSION, schemaVersion } from '../../store/schema-versions.js'
import type { UserEngineStore } from '../../store/store.js'
import { type CaseContext, SCHEMA_PLANTING_SKIP, suite } from '../shared/context.js'
import { assert, errorCode } from '../shared/expect.js'
import { ConformanceSkip, type PlantedSchemaVersion } from '../shared/types.js'

/**
 * Plants `row` into a migrated database of its own, reopens a store over it, and checks that the store
 * refuses it with `code`: either opening fails with that code, or the store reports not ready for that
 * reason and refuses transactions with it. Either way no unit of work runs.
 */
async function expectRefusedAfterPlant(ctx: CaseContext, row: PlantedSchemaVersion, code: ErrorCode) {
  const { plantSchemaVersion, reopenStore } = ctx.options
  if (!plantSchemaVersion || !reopenStore) throw new ConformanceSkip(SCHEMA_PLANTING_SKIP)
  const store = await ctx.emptyStore()
  await store.migrate()
  await plantSchemaVersion(store, row)
  let reopened: UserEngineStore
  try {
    reopened = ctx.track(await reopenStore(store))
  } catch (error) {
    assert.equal(errorCode(error), code, `opening over the planted history failed with ${String(error)}`)
    assert.ok(isUserEngineError(error), 'the refusal is a UserEngineError')
    return
  }
  const readiness = await reopened.readiness()
  assert.deepEqual([readiness.ready, readiness.reason], [false, code], 'readiness over the planted history')
  let ran = false
  const refused = await reopened
    .transaction(await ctx.unknownTenantId(), async () => {
      ran = true
    })
    .then(
      () => null,
      (error: unknown) => error,
    )
  assert.equal(ran, false, 'a unit of work ran over the planted history')
  assert.equal(errorCode(refused), code, `transaction over the planted history: ${String(refused)}`)
}

/** Store rule 1, the other half: a store never works over a database newer than the code or a drifted one. */
export const schemaHistorySuite = suite(
  'schema-history',
  'a store refuses a database newer than the code and a drifted history',
  [
    {
      name: 'a database migrated by a newer release is refused with SCHEMA_NEWER_THAN_CODE',
      needsSchemaPlanting: true,
      async run(ctx) {
        await expectRefusedAfterPlant(
          ctx,
          { version: LATEST_SCHEMA_VERSION + 1, name: 'from_a_newer_release', checksum: '0'.repeat(64) },
          ErrorCode.SCHEMA_NEWER_THAN_CODE,
        )
      },
    },
    {
      name: 'a history whose recorded version differs from the code (drift) is refused with SCHEMA_DRIFT',
      needsSchemaPlanting: true,
      async run(ctx) {
        await expectRefusedAfterPlant(
          ctx,
          { version: LATEST_SCHEMA_VERSION, name: 'edited_by_hand', checksum: 'f'.repeat(64) },
          ErrorCode.SCHEMA_DRIFT,
        )
      },
    },
    {
      name: "a history row with the code's version and name but another checksum (a file edited after it was applied) is refused with SCHEMA_DRIFT",
      needsSchemaPlanting: true,
      async run(ctx) {
        // The name is right: a store that compares names only passes the case above and misses this one.
        await expectRefusedAfterPlant(
          ctx,
          {
            version: LATEST_SCHEMA_VERSION,
            name: schemaVersion(LATEST_SCHEMA_VERSION).name,
            checksum: 'f'.repeat(64),
          },
          ErrorCode.SCHEMA_DRIFT,
        )
      },
    },
  ],
)
