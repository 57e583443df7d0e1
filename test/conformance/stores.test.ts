import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type ConformanceStores, conformanceStoresFor } from '../../src/cli/shared/conformance-stores.js'
import type { UserEngineStore } from '../../src/store/store.js'
import {
  CONFORMANCE_SUITES,
  type PlantedSchemaVersion,
  registerConformanceTests,
  type StoreFactoryContext,
} from '../../src/testing/index.js'
import { ADAPTERS } from '../support/adapters.js'

const CASES = CONFORMANCE_SUITES.reduce((n, s) => n + s.cases.length, 0)

// The whole conformance harness on every store the project ships (Drizzle-style: one suite, every driver).
for (const adapter of ADAPTERS) {
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
