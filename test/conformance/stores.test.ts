import { after, before, describe, test } from 'node:test'
import { type ConformanceStores, conformanceStoresFor } from '../../src/cli/shared/conformance-stores.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { registerConformanceTests, type StoreFactoryContext } from '../../src/testing/index.js'
import { ADAPTERS } from '../support/adapters.js'

// The whole conformance harness on every store the project ships (Drizzle-style: one suite, every driver).
for (const adapter of ADAPTERS) {
  const skip = await adapter.skip()
  if (skip) {
    test(`conformance on ${adapter.name}`, { skip }, () => {})
    continue
  }
  describe(`conformance on ${adapter.name}`, () => {
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
      test,
      skipTest: (name, reason) => test(name, { skip: reason }, () => {}),
    })
  })
}
