import { ErrorCode } from '../../domain/errors.js'
import type { AuditRecord } from '../../domain/records.js'
import type { UserEngineStore } from '../../store/store.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectCode } from '../shared/expect.js'
import { allPages, changeUser, seedUser } from '../shared/fixtures.js'

/** The fields of a record, as the contract defines them: no order number among them. */
const AUDIT_FIELDS = [
  'action',
  'actorId',
  'data',
  'id',
  'ip',
  'occurredAt',
  'requestId',
  'tenantId',
  'userAgent',
  'userId',
]

/** Every number inside a cursor's JSON: a cursor must not carry a counter shared by tenants. */
function numbersIn(cursor: string): number[] {
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    return [] // not JSON: opaque in a way this check cannot read, which is fine
  }
  const out: number[] = []
  const walk = (v: unknown): void => {
    if (typeof v === 'number') out.push(v)
    else if (typeof v === 'string' && /^\d+$/.test(v)) out.push(Number(v))
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x)
  }
  walk(doc)
  return out
}

/** Every page of a tenant's trail with its cursors, `limit` at a time. */
async function pagesWithCursors(store: UserEngineStore, tenantId: string, limit: number) {
  const out: Array<{ ids: string[]; nextCursor: string | null }> = []
  let cursor: string | undefined
  for (let i = 0; i < 100; i++) {
    const page = await store.listAudit(tenantId, { limit, cursor })
    out.push({ ids: page.items.map((a) => a.id), nextCursor: page.nextCursor })
    if (page.nextCursor === null) return out
    cursor = page.nextCursor
  }
  throw new Error('the audit listing did not end')
}

/**
 * Store rule 6: audit records in commit order, filterable by user, keyset-paginated by an opaque cursor; no
 * counter shared across tenants in records or cursors. The request context round-trips.
 */
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
      assert.deepEqual(
        [second.userId, second.actorId, second.requestId, second.ip, second.userAgent, second.data],
        [null, null, null, null, null, {}],
      )
      assert.ok(typeof first.id === 'string' && first.id.length > 0 && first.id !== second.id, 'audit ids')
      assert.ok(!Number.isNaN(Date.parse(first.occurredAt)), 'occurredAt is a timestamp')
      for (const record of [first, second]) {
        assert.deepEqual(Object.keys(record).sort(), AUDIT_FIELDS, 'an audit record has exactly its fields')
      }
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
      assert.deepEqual(
        all.map((r) => r.action),
        Array.from({ length: 7 }, (_, i) => [`u.${i}`, `t.${i}`]).flat(),
      )
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
      // The records of one commit share their time: a page boundary inside a commit loses none of them.
      const same = Array.from({ length: 5 }, (_, i) => `same.${i}`)
      await store.transaction(tenantId, async (tx) => {
        for (const action of same) tx.appendAudit({ action })
      })
      const paged = (await allPages((cursor) => store.listAudit(tenantId, { limit: 2, cursor }))).flat()
      assert.deepEqual(
        paged.map((r) => r.action),
        [...all.map((r) => r.action), 'late', ...same],
        'records of one commit lost or repeated across a page boundary',
      )
    },
  },
  {
    name: 'the request context round-trips: request id, client IP and user agent',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const { userId } = await seedUser(store, tenantId, { audits: 0 })
      const requestId = freshId('req')
      const userAgent = `Mozilla/5.0 (X11; Linux) Zoë ${'x'.repeat(400)}`
      await changeUser(store, tenantId, userId, (tx) => {
        tx.appendAudit({ action: 'v4', userId, requestId, ip: '203.0.113.9', userAgent })
        tx.appendAudit({ action: 'v6', userId, ip: '2001:db8::1' })
      })
      const [v4, v6] = (await store.listAudit(tenantId)).items
      assert.deepEqual(
        [v4?.requestId, v4?.ip, v4?.userAgent],
        [requestId, '203.0.113.9', userAgent],
        'request context of the first record',
      )
      assert.deepEqual([v6?.requestId, v6?.ip, v6?.userAgent], [null, '2001:db8::1', null])
      const bad: Array<[string, Record<string, unknown>]> = [
        ['requestId not an id', { requestId: 'not an id!' }],
        ['requestId too long', { requestId: 'r'.repeat(65) }],
        ['ip not an address', { ip: 'localhost' }],
        ['ip with a newline', { ip: '10.0.0.1\n' }],
        ['userAgent too long', { userAgent: 'u'.repeat(513) }],
        ['userAgent with a NUL', { userAgent: 'a\u0000b' }],
        ['userAgent not a string', { userAgent: 42 }],
      ]
      for (const [what, fields] of bad) {
        await expectCode(
          changeUser(store, tenantId, userId, (tx) =>
            tx.appendAudit({ action: 'bad', userId, ...(fields as object) }),
          ),
          ErrorCode.VALIDATION,
          what,
        )
      }
      assert.equal((await store.listAudit(tenantId)).items.length, 2, 'a refused record was written')
    },
  },
  {
    name: 'no counter shared across tenants: records carry no number, cursors none, other tenants change nothing',
    async run(ctx) {
      const store = await ctx.store()
      const [a, b] = [await ctx.newTenant(store), await ctx.newTenant(store)]
      const note = (tenantId: string, action: string) =>
        store.transaction(tenantId, async (tx) => tx.appendAudit({ action }))
      for (let i = 0; i < 4; i++) {
        await note(a, `a.${i}`)
        for (let j = 0; j < 3; j++) await note(b, `b.${i}.${j}`)
      }
      const before = await pagesWithCursors(store, a, 1)
      for (const page of before) {
        if (page.nextCursor !== null) {
          assert.deepEqual(numbersIn(page.nextCursor), [], 'a listAudit cursor carries a number')
        }
      }
      // Tenant b's activity, between and after: tenant a's pages and cursors stay exactly the same.
      for (let j = 0; j < 5; j++) await note(b, `b.late.${j}`)
      assert.deepEqual(
        await pagesWithCursors(store, a, 1),
        before,
        "another tenant's commits changed a listing",
      )
      const records = (await store.listAudit(a)).items
      for (const r of records) {
        const numbers = Object.entries(r).filter(([, v]) => typeof v === 'number')
        assert.deepEqual(numbers, [], 'an audit record carries a number')
      }
    },
  },
  {
    name: "a cursor resumes only in its own tenant: another tenant's cursor, or an unknown id, is VALIDATION",
    async run(ctx) {
      const store = await ctx.store()
      const [a, b] = [await ctx.newTenant(store), await ctx.newTenant(store)]
      for (let i = 0; i < 3; i++) {
        await store.transaction(a, async (tx) => tx.appendAudit({ action: `a.${i}` }))
        await store.transaction(b, async (tx) => tx.appendAudit({ action: `b.${i}` }))
      }
      const fromB = (await store.listAudit(b, { limit: 1 })).nextCursor
      assert.ok(fromB, 'a second page in tenant b')
      await expectCode(store.listAudit(a, { cursor: fromB }), ErrorCode.VALIDATION, "tenant b's cursor in a")
      const unknown = Buffer.from(JSON.stringify({ a: freshId('aud') })).toString('base64url')
      await expectCode(store.listAudit(a, { cursor: unknown }), ErrorCode.VALIDATION, 'an unknown audit id')
      // A known cursor with nothing after it (here: no later record of the filtered user) is an empty page.
      const first = await store.listAudit(a, { limit: 1 })
      const rest = await store.listAudit(a, { cursor: first.nextCursor!, userId: freshId('u') })
      assert.deepEqual([rest.items.length, rest.nextCursor], [0, null], 'no later record: an empty last page')
      const tail = await store.listAudit(a, { cursor: first.nextCursor! })
      assert.deepEqual(
        tail.items.map((r: AuditRecord) => r.action),
        ['a.1', 'a.2'],
      )
    },
  },
])
