import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type ConformanceStores, conformanceStoresFor } from '../../src/cli/shared/conformance-stores.js'
import { createKeyring, generateKey, UserEngine } from '../../src/index.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { ADAPTERS } from '../support/adapters.js'

// NUL and unpaired surrogates: Postgres cannot store them, the memory store could. Every store must refuse
// them the same way, as VALIDATION before any write, never as a driver error.
const BAD = ['a\u0000b', 'x\ud800y', '\udc00']

for (const adapter of ADAPTERS) {
  const skip = await adapter.skip()
  describe(`unstorable text is a ValidationError on ${adapter.name}`, { skip }, () => {
    let stores: ConformanceStores
    let release: () => Promise<void>
    let store: UserEngineStore
    let engine: UserEngine
    before(async () => {
      const opened = await adapter.open()
      release = opened.release
      stores = await conformanceStoresFor(opened.location)
      store = await stores.createStore({ ownDatabase: true })
      await store.migrate()
      engine = new UserEngine({
        store,
        keyring: createKeyring({ currentKeyId: 'k', keys: { k: generateKey() } }),
      })
    })
    after(async () => {
      await (stores.destroyStore ? stores.destroyStore(store) : store.close())
      await stores.dispose()
      await release()
    })

    test('in profiles, emails, tenant names and lookups; nothing is written', async () => {
      const tenant = await engine.createTenant('T')
      const before = await store.diagnostics()
      for (const bad of BAD) {
        await assert.rejects(
          engine.registerUser(tenant.id, { email: 'ok@example.com', profile: { name: bad } }),
          {
            code: 'VALIDATION',
          },
        )
        await assert.rejects(engine.registerUser(tenant.id, { email: `a${bad}@example.com` }), {
          code: 'VALIDATION',
        })
        await assert.rejects(engine.createTenant(bad), { code: 'VALIDATION' })
        await assert.rejects(store.findUserByIdentifier(tenant.id, 'email', bad), { code: 'VALIDATION' })
        await assert.rejects(
          store.transaction(tenant.id, async (tx) => {
            tx.enqueue({ type: 'x', payload: { note: bad } })
          }),
          { code: 'VALIDATION' },
        )
      }
      assert.deepEqual((await store.diagnostics()).counts, before.counts)
    })
  })
}
