import type { AuditRecord } from '../../domain/records.js'
import { freshId, suite } from '../shared/context.js'
import { assert } from '../shared/expect.js'
import { allPages, changeUser, seedUser } from '../shared/fixtures.js'

function assertIncreasingSeq(records: readonly AuditRecord[], what: string): void {
  for (let i = 1; i < records.length; i++) {
    assert.ok(records[i]!.seq > records[i - 1]!.seq, `${what}: seq not increasing at ${i}`)
  }
}

/** Store rule 6: audit records in commit order (ascending seq), filterable by user, keyset-paginated. */
export const auditSuite = suite('audit', 'the audit trail lists in commit order, by user, in pages', [
  {
    name: 'records list in commit order, and in append order within a commit',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const { userId } = await seedUser(store, tenantId, { audits: 0 })
      const expected: string[] = []
      for (let commit = 0; commit < 4; commit++) {
        await changeUser(store, tenantId, userId, (tx) => {
          for (let i = 0; i < 3; i++) {
            tx.appendAudit({ action: `step.${commit}.${i}`, userId })
            expected.push(`step.${commit}.${i}`)
          }
        })
      }
      const { items, nextCursor } = await store.listAudit(tenantId)
      assert.equal(nextCursor, null)
      assert.deepEqual(
        items.map((a) => a.action),
        expected,
      )
      assertIncreasingSeq(items, 'listAudit')
    },
  },
  {
    name: 'fields round-trip',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const actorId = freshId('adm')
      const { userId } = await seedUser(store, tenantId, { audits: 0 })
      await changeUser(store, tenantId, userId, (tx) => {
        tx.appendAudit({
          action: 'user.disabled',
          userId,
          actorId,
          data: { reason: 'CODE_1', n: 2, ok: true, none: null },
        })
        tx.appendAudit({ action: 'tenant.note' })
      })
      const [first, second] = (await store.listAudit(tenantId)).items
      assert.ok(first && second, 'two audit records')
      assert.deepEqual(
        {
          tenantId: first.tenantId,
          action: first.action,
          userId: first.userId,
          actorId: first.actorId,
          data: first.data,
        },
        {
          tenantId,
          action: 'user.disabled',
          userId,
          actorId,
          data: { reason: 'CODE_1', n: 2, ok: true, none: null },
        },
      )
      assert.deepEqual([second.userId, second.actorId, second.data], [null, null, {}])
      assert.ok(typeof first.id === 'string' && first.id.length > 0 && first.id !== second.id, 'audit ids')
      assert.ok(Number.isSafeInteger(first.seq), 'seq is an integer')
      assert.ok(!Number.isNaN(Date.parse(first.occurredAt)), 'occurredAt is a timestamp')
    },
  },
  {
    name: 'a user filter lists only that user’s records, in order',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const a = await seedUser(store, tenantId)
      const b = await seedUser(store, tenantId)
      for (let i = 0; i < 3; i++) {
        await changeUser(store, tenantId, a.userId, (tx) =>
          tx.appendAudit({ action: `a.${i}`, userId: a.userId }),
        )
        await changeUser(store, tenantId, b.userId, (tx) =>
          tx.appendAudit({ action: `b.${i}`, userId: b.userId }),
        )
        await store.transaction(tenantId, async (tx) => tx.appendAudit({ action: `tenant.${i}` }))
      }
      const onlyA = (await store.listAudit(tenantId, { userId: a.userId })).items
      assert.deepEqual(
        onlyA.map((r) => r.action),
        ['user.created', 'a.0', 'a.1', 'a.2'],
      )
      assert.ok(onlyA.every((r) => r.userId === a.userId))
      assertIncreasingSeq(onlyA, 'filtered listAudit')
      assert.equal((await store.listAudit(tenantId)).items.length, 11)
    },
  },
  {
    name: 'pages follow the cursor without gaps or repeats, filtered or not',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const { userId } = await seedUser(store, tenantId, { audits: 0 })
      for (let i = 0; i < 7; i++) {
        await changeUser(store, tenantId, userId, (tx) => tx.appendAudit({ action: `u.${i}`, userId }))
        await store.transaction(tenantId, async (tx) => tx.appendAudit({ action: `t.${i}` }))
      }
      const pages = await allPages((cursor) => store.listAudit(tenantId, { limit: 3, cursor }))
      assert.ok(
        pages.every((p) => p.length <= 3),
        'a page longer than its limit',
      )
      const all = pages.flat()
      assert.equal(all.length, 14)
      assert.equal(new Set(all.map((r) => r.id)).size, 14, 'an audit record was listed twice')
      assertIncreasingSeq(all, 'paged listAudit')
      const filtered = (
        await allPages((cursor) => store.listAudit(tenantId, { limit: 2, cursor, userId }))
      ).flat()
      assert.deepEqual(
        filtered.map((r) => r.action),
        Array.from({ length: 7 }, (_, i) => `u.${i}`),
      )
      // A record committed while a reader is between pages appears, last, on a later page.
      const head = await store.listAudit(tenantId, { limit: 5 })
      await store.transaction(tenantId, async (tx) => tx.appendAudit({ action: 'late' }))
      const tail = (
        await allPages((cursor) =>
          store.listAudit(tenantId, { limit: 4, cursor: cursor ?? head.nextCursor! }),
        )
      ).flat()
      assert.deepEqual(
        [...head.items, ...tail].map((r) => r.action),
        [...all.map((r) => r.action), 'late'],
      )
    },
  },
])
