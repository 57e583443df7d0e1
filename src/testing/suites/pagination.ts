import { ErrorCode } from '../../domain/errors.js'
import type { UserStatus } from '../../domain/records.js'
import type { UserEngineStore } from '../../store/store.js'
import { suite } from '../shared/context.js'
import { assert, expectCode, expectEmptyPage } from '../shared/expect.js'
import { allPages } from '../shared/fixtures.js'

/** Users with chosen ids, in one commit each, so their order is known. */
async function createUsers(
  store: UserEngineStore,
  tenantId: string,
  ids: readonly string[],
  status: (i: number) => UserStatus = () => 'active',
) {
  for (const [i, id] of ids.entries()) {
    await store.transaction(tenantId, async (tx) => {
      tx.putUser({ id, status: status(i) }, { mustNotExist: true })
    })
  }
}

const sorted = (ids: readonly string[]) => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))

const MALFORMED_CURSORS = ['', 'not a cursor', '%%%%', '../../etc/passwd', '"}; DROP TABLE x; --']

/** Store rule 5: keyset pagination over users in ascending id order. */
export const paginationSuite = suite('pagination', 'listUsers pages by keyset in ascending id order', [
  {
    name: 'pages hold at most `limit` users, in ascending id order, and end with a null cursor',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      // Inserted out of order: the listing must sort by id, not by insertion.
      const ids = ['p-05', 'p-01', 'p-07', 'p-03', 'p-02', 'p-06', 'p-04']
      await createUsers(store, tenantId, ids)
      const pages = await allPages((cursor) => store.listUsers(tenantId, { limit: 3, cursor }))
      assert.deepEqual(
        pages.map((p) => p.length),
        [3, 3, 1],
      )
      assert.deepEqual(
        pages.flat().map((u) => u.id),
        sorted(ids),
      )
      const exact = await allPages((cursor) => store.listUsers(tenantId, { limit: 7, cursor }))
      assert.equal(exact.flat().length, 7, 'a page exactly as long as the listing')
      assert.ok(
        exact.length <= 2 && (exact[1]?.length ?? 0) === 0,
        'a full last page may only be followed by an empty one',
      )
      const all = await store.listUsers(tenantId)
      assert.equal(all.items.length, 7, 'the default limit')
      assert.equal(all.nextCursor, null)
    },
  },
  {
    name: 'a status filter lists only users with that status, across pages',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const ids = Array.from({ length: 9 }, (_, i) => `s-${i}`)
      const statusOf = (i: number): UserStatus => (['active', 'disabled', 'deleted'] as const)[i % 3]!
      await createUsers(store, tenantId, ids, statusOf)
      for (const status of ['active', 'disabled', 'deleted'] as const) {
        const pages = await allPages((cursor) => store.listUsers(tenantId, { limit: 2, cursor, status }))
        const listed = pages.flat()
        assert.ok(
          listed.every((u) => u.status === status),
          `status filter ${status} let another status through`,
        )
        assert.deepEqual(
          listed.map((u) => u.id),
          ids.filter((_, i) => statusOf(i) === status),
          `users with status ${status}`,
        )
      }
    },
  },
  {
    name: 'users inserted between pages never make a user present at the start skipped or repeated',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const initial = Array.from({ length: 10 }, (_, i) => `k-${String(i * 10 + 10).padStart(3, '0')}`)
      await createUsers(store, tenantId, initial)
      const seen: string[] = []
      let cursor: string | undefined
      for (let round = 0; round < 50; round++) {
        const page = await store.listUsers(tenantId, { limit: 3, cursor })
        seen.push(...page.items.map((u) => u.id))
        if (page.nextCursor === null) break
        cursor = page.nextCursor
        const last = page.items.at(-1)?.id ?? ''
        // One user sorting before the cursor (already passed), one just after it, one after everything.
        await createUsers(store, tenantId, [`a-${round}`, `${last}-${round}`, `z-${round}`])
      }
      const twice = seen.find((id, i) => seen.indexOf(id) !== i)
      assert.equal(twice, undefined, `user ${twice} was listed twice (${seen.length} ids listed)`)
      const outOfOrder = seen.findIndex((id, i) => i > 0 && id < seen[i - 1]!)
      assert.equal(
        outOfOrder,
        -1,
        `the listing left ascending id order: ${seen[outOfOrder]} came after ${seen[outOfOrder - 1]}`,
      )
      for (const id of initial) assert.ok(seen.includes(id), `user ${id}, present at the start, was skipped`)
    },
  },
  {
    name: 'a malformed cursor or limit fails with VALIDATION',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      await createUsers(store, tenantId, ['m-1', 'm-2'])
      for (const cursor of MALFORMED_CURSORS) {
        await expectCode(
          store.listUsers(tenantId, { cursor }),
          ErrorCode.VALIDATION,
          `listUsers cursor ${JSON.stringify(cursor)}`,
        )
        await expectCode(
          store.listAudit(tenantId, { cursor }),
          ErrorCode.VALIDATION,
          `listAudit cursor ${JSON.stringify(cursor)}`,
        )
      }
      for (const limit of [0, -1, 1.5, 501, Number.NaN]) {
        await expectCode(
          store.listUsers(tenantId, { limit }),
          ErrorCode.VALIDATION,
          `listUsers limit ${limit}`,
        )
        await expectCode(
          store.listAudit(tenantId, { limit }),
          ErrorCode.VALIDATION,
          `listAudit limit ${limit}`,
        )
      }
    },
  },
  {
    name: 'a tenant without users lists an empty last page',
    async run(ctx) {
      const store = await ctx.store()
      expectEmptyPage(
        await store.listUsers(ctx.unknownTenantId(), { limit: 1 }),
        'listUsers of an empty tenant',
      )
      expectEmptyPage(
        await store.listUsers(ctx.unknownTenantId(), { limit: 1, status: 'deleted' }),
        'listUsers of an empty tenant, filtered',
      )
    },
  },
])
