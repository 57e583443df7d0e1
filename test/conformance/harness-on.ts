import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type ConformanceStores, conformanceStoresFor } from '../../src/cli/shared/conformance-stores.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import type { UserEngineStore } from '../../src/store/store.js'
import {
  CONFORMANCE_SUITES,
  type PlantedSchemaVersion,
  type RowRefusal,
  registerConformanceTests,
  type StoreFactoryContext,
} from '../../src/testing/index.js'
import type { Adapter } from '../support/adapters.js'

const CASES = CONFORMANCE_SUITES.reduce((n, s) => n + s.cases.length, 0)

/**
 * The harness's `refuseRows` on the shipped stores: on Postgres two CHECK constraints (NOT VALID: existing
 * rows are not scanned), so the commit's own statement fails at its audit or outbox insert; on the memory
 * store its planted-constraint hook.
 */
async function refuseRows(store: UserEngineStore, refusal: RowRefusal): Promise<void> {
  if (store instanceof InMemoryUserEngineStore) return store.refuseRows(refusal)
  assert.ok(store instanceof PostgresUserEngineStore, `refuseRows on a ${store.kind} store`)
  const literal = (value: string) => {
    assert.match(value, /^[a-z0-9._]+$/, 'a harness-chosen name')
    return `'${value}'`
  }
  const tag = refusal.eventType.replace(/\W/g, '_')
  await store.driver.exec(`
    ALTER TABLE user_engine_audit ADD CONSTRAINT ${tag}_audit CHECK (action <> ${literal(refusal.auditAction)}) NOT VALID;
    ALTER TABLE user_engine_outbox ADD CONSTRAINT ${tag}_event CHECK (type <> ${literal(refusal.eventType)}) NOT VALID;
  `)
}

/**
 * The whole conformance harness on the stores the project ships (Drizzle-style: one suite, every driver). Each
 * adapter has a test file of its own (harness-on-*.test.ts), so the runner runs them side by side.
 */
export async function registerHarnessOn(adapters: readonly Adapter[]): Promise<void> {
  for (const adapter of adapters) {
    const skip = await adapter.skip()
    if (skip) {
      test(`conformance on ${adapter.name}`, { skip }, () => {})
      continue
    }
    describe(`conformance on ${adapter.name}`, () => {
      const registered: string[] = []
      let stores: ConformanceStores | undefined
      let release: (() => Promise<void>) | undefined
      const ready = () => {
        if (!stores) throw new Error('store factories are not set up')
        return stores
      }
      before(async () => {
        const opened = await adapter.open()
        release = opened.release
        stores = await conformanceStoresFor(opened.location)
      })
      after(async () => {
        await stores?.dispose()
        await release?.()
      })
      registerConformanceTests({
        createStore: (ctx) => ready().createStore(ctx),
        refuseRows,
        destroyStore: async (store: UserEngineStore) => {
          const s = ready()
          await (s.destroyStore ? s.destroyStore(store) : store.close())
        },
        ...(adapter.name === 'postgres'
          ? {
              createSharedStores: (count: number, ctx: StoreFactoryContext) =>
                ready().createSharedStores!(count, ctx),
            }
          : {}),
        ...(adapter.name === 'memory'
          ? {}
          : {
              plantSchemaVersion: (store: UserEngineStore, row: PlantedSchemaVersion) =>
                ready().plantSchemaVersion!(store, row),
              reopenStore: (store: UserEngineStore) => ready().reopenStore!(store),
            }),
        test: (name, fn) => {
          registered.push(name)
          return test(name, fn)
        },
        skipTest: (name, reason) => {
          registered.push(name)
          return test(name, { skip: reason }, () => {})
        },
      })
      test('every case of CONFORMANCE_SUITES was registered, once', () => {
        assert.equal(registered.length, CASES)
        assert.deepEqual(
          registered,
          CONFORMANCE_SUITES.flatMap((s) => s.cases.map((c) => `${s.name}: ${c}`)),
        )
      })
    })
  }
}
