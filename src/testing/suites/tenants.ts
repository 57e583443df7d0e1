import { ErrorCode } from '../../domain/errors.js'
import type { UserEngineStore } from '../../store/store.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectCode } from '../shared/expect.js'
import { allPages } from '../shared/fixtures.js'

async function createTenant(store: UserEngineStore, id: string, name = 'Listed') {
  await store.transaction(id, async (tx) => {
    tx.putTenant({ id, name, status: 'active' }, { mustNotExist: true })
  })
}

const codePointOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** Store rule 9: listTenants, the one read across tenants, in code-point id order by keyset. */
export const tenantsSuite = suite('tenants', 'listTenants lists every tenant by keyset in id order', [
  {
    name: 'every tenant appears once, in code-point id order, across pages',
    async run(ctx) {
      const store = await ctx.isolatedStore()
      // '-' < '_' < lower case in code points; a locale collation would order these differently.
      const base = freshId('lt')
      const ids = [`${base}_b`, `${base}-a`, `${base}_A`, `${base}a`, `${base}-Z`, `${base}_0`]
      for (const id of ids) await createTenant(store, id)
      const listed = (await allPages((cursor) => store.listTenants({ limit: 2, cursor }))).flat()
      const mine = listed.filter((t) => t.id.startsWith(base))
      assert.deepEqual(
        mine.map((t) => t.id),
        [...ids].sort(codePointOrder),
      )
      const all = listed.map((t) => t.id)
      assert.deepEqual(all, [...all].sort(codePointOrder), 'the whole listing is in code-point order')
      assert.equal(new Set(all).size, all.length, 'no tenant listed twice')
      const whole = await store.listTenants({ limit: all.length })
      assert.equal(whole.items.length, all.length, 'a page as large as the listing holds every tenant')
      assert.equal(
        whole.nextCursor,
        null,
        'a page ending at the last tenant has a next cursor: it must be null',
      )
      assert.deepEqual(
        { name: mine[0]?.name, status: mine[0]?.status, version: mine[0]?.version },
        { name: 'Listed', status: 'active', version: 1 },
      )
    },
  },
  {
    name: "a tenant's committed change shows in the listing; a rolled-back one does not",
    async run(ctx) {
      const store = await ctx.isolatedStore()
      const id = freshId('lt')
      await createTenant(store, id)
      await store.transaction(id, async (tx) => {
        const t = await tx.getTenant()
        assert.ok(t)
        tx.putTenant({ ...t, name: 'Renamed', status: 'suspended' }, { expectedVersion: t.version })
      })
      await store
        .transaction(id, async (tx) => {
          const t = await tx.getTenant()
          assert.ok(t)
          tx.putTenant({ ...t, name: 'Never' }, { expectedVersion: t.version })
          throw new Error('roll back')
        })
        .catch(() => undefined)
      const found = (await allPages((cursor) => store.listTenants({ limit: 50, cursor }))).flat()
      const t = found.find((x) => x.id === id)
      assert.deepEqual(
        { name: t?.name, status: t?.status, version: t?.version },
        { name: 'Renamed', status: 'suspended', version: 2 },
        "listTenants shows the committed rename and suspension (version 2), not the rolled-back rename to 'Never'",
      )
    },
  },
  {
    name: 'bad limits and cursors are VALIDATION',
    async run(ctx) {
      const store = await ctx.store()
      for (const query of [{ limit: 0 }, { limit: 1.5 }, { cursor: 'not a cursor' }, { other: 1 }, 'x']) {
        await expectCode(
          store.listTenants(query as Parameters<UserEngineStore['listTenants']>[0]),
          ErrorCode.VALIDATION,
          `listTenants(${JSON.stringify(query)})`,
        )
      }
    },
  },
])
