import { ErrorCode } from '../../domain/errors.js'
import type { IdentifierKind, UserStatus } from '../../domain/records.js'
import type { ListedUser, ListUsersQuery, UserEngineStore } from '../../store/store.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectCode } from '../shared/expect.js'
import { allPages, putIdentifier } from '../shared/fixtures.js'

interface Spec {
  readonly id: string
  readonly status?: UserStatus
  /** [kind, stored value] pairs; identifier ids are `${id}-i${n}`, so their order is known. */
  readonly identifiers?: ReadonlyArray<readonly [IdentifierKind, string]>
}

/** Users with chosen ids and identifier values, one commit each (values as stored: already normalized). */
async function createUsers(store: UserEngineStore, tenantId: string, specs: readonly Spec[]): Promise<void> {
  for (const spec of specs) {
    await store.transaction(tenantId, async (tx: UnitOfWork) => {
      tx.putUser({ id: spec.id, status: spec.status ?? 'active' }, { mustNotExist: true })
      for (const [n, [kind, value]] of (spec.identifiers ?? []).entries()) {
        putIdentifier(tx, `${spec.id}-i${n}`, spec.id, kind, value)
      }
    })
  }
}

const ids = (users: readonly ListedUser[]) => users.map((u) => u.id)

async function listAll(store: UserEngineStore, tenantId: string, query: ListUsersQuery, limit = 2) {
  return (await allPages((cursor) => store.listUsers(tenantId, { ...query, limit, cursor }))).flat()
}

const email = (prefix: string): ListUsersQuery['identifierPrefix'] => ({ kind: 'email', prefix })

/**
 * Store rule 5's search and include: identifiers with the page (one query per page), prefix search in
 * code-point order, each user once, status filters, counts, and the refusals.
 */
export const userSearchSuite = suite(
  'user-search',
  'listUsers includes identifiers and searches by identifier prefix; countUsers agrees',
  [
    {
      name: 'includeIdentifiers gives every listed user all of its identifiers, in id order; without it, none',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        await createUsers(store, tenantId, [
          {
            id: 'u-1',
            identifiers: [
              ['email', 'one@example.com'],
              ['username', 'one'],
            ],
          },
          { id: 'u-2' },
          { id: 'u-3', status: 'disabled', identifiers: [['username', 'three']] },
        ])
        const plain = await listAll(store, tenantId, {})
        assert.deepEqual(ids(plain), ['u-1', 'u-2', 'u-3'])
        assert.ok(
          plain.every((u) => !('identifiers' in u)),
          'a user listed without includeIdentifiers has an identifiers key',
        )
        const listed = await listAll(store, tenantId, { includeIdentifiers: true })
        assert.deepEqual(
          listed.map((u) => [u.id, u.identifiers]),
          [
            [
              'u-1',
              [
                { id: 'u-1-i0', kind: 'email', value: 'one@example.com', verified: false },
                { id: 'u-1-i1', kind: 'username', value: 'one', verified: false },
              ],
            ],
            ['u-2', []],
            ['u-3', [{ id: 'u-3-i0', kind: 'username', value: 'three', verified: false }]],
          ],
        )
        const disabled = await listAll(store, tenantId, { includeIdentifiers: true, status: 'disabled' })
        assert.deepEqual(
          disabled.map((u) => [u.id, u.identifiers?.length]),
          [['u-3', 1]],
        )
        const { identifiers: _, ...user } = listed[0]!
        assert.deepEqual(user, plain[0], 'a listed user with identifiers is the same user otherwise')
      },
    },
    {
      name: 'a prefix search lists the users whose identifier of that kind starts with it, in value order',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const other = await ctx.newTenant(store)
        await createUsers(store, tenantId, [
          { id: 'a', identifiers: [['email', 'carol@example.com']] },
          { id: 'b', identifiers: [['email', 'ann@example.com']] },
          {
            id: 'c',
            identifiers: [
              ['email', 'anna@example.com'],
              ['username', 'annie'],
            ],
          },
          { id: 'd', identifiers: [['username', 'ann']] },
          { id: 'e', identifiers: [['email', 'an@example.org']] },
          { id: 'f', identifiers: [['email', 'bob@example.com']] },
          { id: 'g', status: 'disabled', identifiers: [['email', 'anders@example.com']] },
        ])
        await createUsers(store, other, [{ id: 'x', identifiers: [['email', 'ann@example.net']] }])
        assert.deepEqual(ids(await listAll(store, tenantId, { identifierPrefix: email('an') })), [
          'e',
          'g',
          'b',
          'c',
        ])
        assert.deepEqual(ids(await listAll(store, tenantId, { identifierPrefix: email('ann') }, 1)), [
          'b',
          'c',
        ])
        assert.deepEqual(
          ids(await listAll(store, tenantId, { identifierPrefix: email('ann@example.com') })),
          ['b'],
        )
        assert.deepEqual(
          ids(await listAll(store, tenantId, { identifierPrefix: { kind: 'username', prefix: 'ann' } })),
          ['d', 'c'],
        )
        assert.deepEqual(ids(await listAll(store, tenantId, { identifierPrefix: email('zed') })), [])
        assert.deepEqual(
          ids(await listAll(store, tenantId, { identifierPrefix: email('an'), status: 'disabled' })),
          ['g'],
        )
        assert.deepEqual(
          ids(await listAll(store, tenantId, { identifierPrefix: email('an'), status: 'active' }, 1)),
          ['e', 'b', 'c'],
        )
        const found = await listAll(store, tenantId, {
          identifierPrefix: email('ann'),
          includeIdentifiers: true,
        })
        assert.deepEqual(
          found.map((u) => u.identifiers?.map((i) => i.value)),
          [['ann@example.com'], ['anna@example.com', 'annie']],
        )
        // Another tenant's identifiers are never found.
        assert.deepEqual(ids(await listAll(store, other, { identifierPrefix: email('an') })), ['x'])
      },
    },
    {
      name: 'the order is code-point order, and LIKE wildcards and backslashes in a prefix match literally',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        // UTF-16 order puts U+1F600 (a surrogate pair) before U+E000; code-point (and UTF-8 byte) order after.
        await createUsers(store, tenantId, [
          { id: 'astral', identifiers: [['username', 'x\u{1F600}']] },
          { id: 'bmp', identifiers: [['username', 'x\uE000']] },
          { id: 'latin', identifiers: [['username', 'xé']] },
          { id: 'ascii', identifiers: [['username', 'xz']] },
          { id: 'percent', identifiers: [['username', 'p%q']] },
          { id: 'underscore', identifiers: [['username', 'p_q']] },
          { id: 'plain', identifiers: [['username', 'paq']] },
          { id: 'backslash', identifiers: [['username', 'p\\q']] },
        ])
        const username = (prefix: string) => ({ identifierPrefix: { kind: 'username' as const, prefix } })
        assert.deepEqual(ids(await listAll(store, tenantId, username('x'))), [
          'ascii',
          'latin',
          'bmp',
          'astral',
        ])
        assert.deepEqual(ids(await listAll(store, tenantId, username('x\u{1F600}'))), ['astral'])
        assert.deepEqual(ids(await listAll(store, tenantId, username('p%'))), ['percent'])
        assert.deepEqual(ids(await listAll(store, tenantId, username('p_'))), ['underscore'])
        assert.deepEqual(ids(await listAll(store, tenantId, username('p\\'))), ['backslash'])
        assert.deepEqual(ids(await listAll(store, tenantId, username('p'), 1)), [
          'percent',
          'backslash',
          'underscore',
          'plain',
        ])
        // A prefix ending in the last code point: the range's upper end moves to the previous one.
        await createUsers(store, tenantId, [
          { id: 'top', identifiers: [['username', 'y\u{10FFFF}z']] },
          { id: 'next', identifiers: [['username', 'z']] },
        ])
        assert.deepEqual(ids(await listAll(store, tenantId, username('y\u{10FFFF}'))), ['top'])
        assert.equal(await store.countUsers(tenantId, username('y\u{10FFFF}')), 1)
        // Code points, not a collation: no accent or case folding (a MySQL _ai_ci LIKE would match 'xé' here).
        assert.deepEqual(ids(await listAll(store, tenantId, username('xe'))), [], "prefix 'xe' matched 'xé'")
        assert.equal(await store.countUsers(tenantId, username('xe')), 0, "prefix 'xe' counted 'xé'")
        assert.deepEqual(ids(await listAll(store, tenantId, username('xÉ'))), [], "prefix 'xÉ' matched 'xé'")
      },
    },
    {
      name: 'a user matching twice is listed once, at its least matching value, and counted once',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        await createUsers(store, tenantId, [
          {
            id: 'two',
            identifiers: [
              ['email', 'mm@example.com'],
              ['email', 'ma@example.com'],
            ],
          },
          { id: 'one', identifiers: [['email', 'mb@example.com']] },
          { id: 'other-kind', identifiers: [['username', 'ma']] },
        ])
        assert.deepEqual(ids(await listAll(store, tenantId, { identifierPrefix: email('m') }, 1)), [
          'two',
          'one',
        ])
        assert.equal(
          await store.countUsers(tenantId, { identifierPrefix: email('m') }),
          2,
          "countUsers with prefix 'm': 2 users match, one of them through two emails; a user is counted once however many of its identifiers match (count distinct users, not matching identifiers)",
        )
        assert.deepEqual(ids(await listAll(store, tenantId, { identifierPrefix: email('mm') })), ['two'])
      },
    },
    {
      name: 'users added or changed between search pages never make an unchanged user skipped or repeated',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const initial = Array.from({ length: 8 }, (_, i) => ({
          id: `k${i}`,
          identifiers: [['email', `k${String(i * 10 + 10).padStart(3, '0')}@example.com`]] as const,
        }))
        await createUsers(store, tenantId, initial)
        const seen: string[] = []
        let cursor: string | undefined
        for (let round = 0; round < 40; round++) {
          const page = await store.listUsers(tenantId, {
            identifierPrefix: email('k'),
            limit: 3,
            cursor,
            includeIdentifiers: true,
          })
          seen.push(...ids(page.items))
          if (page.nextCursor === null) break
          cursor = page.nextCursor
          const last = page.items.at(-1)!.identifiers![0]!.value
          // One value before the cursor's, one just after it, one after everything, one of another kind.
          await createUsers(store, tenantId, [
            { id: `n${round}a`, identifiers: [['email', `k000-${round}@example.com`]] },
            { id: `n${round}b`, identifiers: [['email', `${last}-${round}`]] },
            { id: `n${round}c`, identifiers: [['email', `kzz-${round}@example.com`]] },
            { id: `n${round}d`, identifiers: [['username', `k${round}`]] },
          ])
        }
        assert.equal(new Set(seen).size, seen.length, `a user was listed twice: ${seen.join(', ')}`)
        for (const { id } of initial)
          assert.ok(seen.includes(id), `user ${id}, present at the start, was skipped`)
        assert.ok(!seen.some((id) => id.endsWith('d')), 'a username matched an email search')
      },
    },
    {
      name: 'countUsers counts what listUsers lists: all, by status, by prefix, in an empty or unknown tenant',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const statuses: UserStatus[] = ['active', 'active', 'disabled', 'deleted', 'active']
        await createUsers(
          store,
          tenantId,
          statuses.map((status, i) => ({
            id: `c${i}`,
            status,
            identifiers: [['email', `${i % 2 === 0 ? 'even' : 'odd'}${i}@example.com`]],
          })),
        )
        const queries = [
          {},
          { status: 'active' as const },
          { status: 'deleted' as const },
          { identifierPrefix: email('even') },
          { identifierPrefix: email('even'), status: 'active' as const },
          { identifierPrefix: email('none') },
        ]
        for (const query of queries) {
          const listed = await listAll(store, tenantId, query)
          assert.equal(
            await store.countUsers(tenantId, query),
            listed.length,
            `countUsers ${JSON.stringify(query)}`,
          )
        }
        assert.equal(await store.countUsers(tenantId), 5, 'countUsers of a tenant holding 5 users')
        assert.equal(
          await store.countUsers(tenantId, { identifierPrefix: email('even'), status: 'active' }),
          2,
          "countUsers with prefix 'even' and status active: 2 of the 3 'even' users are active",
        )
        assert.equal(await store.countUsers(await ctx.newTenant(store)), 0, 'an empty tenant')
        assert.equal(await store.countUsers(ctx.unknownTenantId()), 0, 'a tenant that does not exist')
      },
    },
    {
      name: 'a malformed search, include flag or mismatched cursor fails with VALIDATION',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        await createUsers(store, tenantId, [
          { id: 'v1', identifiers: [['email', 'v1@example.com']] },
          { id: 'v2', identifiers: [['email', 'v2@example.com']] },
        ])
        const bad: unknown[] = [
          { identifierPrefix: { kind: 'email', prefix: '' } },
          { identifierPrefix: { kind: 'phone', prefix: 'v' } },
          { identifierPrefix: { kind: 'email' } },
          { identifierPrefix: { kind: 'email', prefix: 'v', extra: 1 } },
          { identifierPrefix: 'v' },
          { identifierPrefix: { kind: 'email', prefix: 'a\u0000' } },
          { identifierPrefix: { kind: 'email', prefix: 'x'.repeat(1017) } },
          { includeIdentifiers: 'yes' },
          { include: ['identifiers'] },
        ]
        for (const query of bad) {
          await expectCode(
            store.listUsers(tenantId, query as ListUsersQuery),
            ErrorCode.VALIDATION,
            `listUsers ${JSON.stringify(query)}`,
          )
          const { includeIdentifiers: _, include: __, ...countable } = query as Record<string, unknown>
          if (Object.keys(countable).length > 0) {
            await expectCode(
              store.countUsers(tenantId, countable as ListUsersQuery),
              ErrorCode.VALIDATION,
              `countUsers ${JSON.stringify(countable)}`,
            )
          }
        }
        await expectCode(
          store.countUsers(tenantId, { limit: 1 } as never),
          ErrorCode.VALIDATION,
          'count limit',
        )
        const byId = (await store.listUsers(tenantId, { limit: 1 })).nextCursor!
        const byValue = (await store.listUsers(tenantId, { limit: 1, identifierPrefix: email('v') }))
          .nextCursor!
        await expectCode(
          store.listUsers(tenantId, { cursor: byId, identifierPrefix: email('v') }),
          ErrorCode.VALIDATION,
          'an id cursor in a prefix search',
        )
        await expectCode(
          store.listUsers(tenantId, { cursor: byValue }),
          ErrorCode.VALIDATION,
          'a prefix search cursor in a plain listing',
        )
        for (const cursor of ['', 'not a cursor', '"}; DROP TABLE x; --']) {
          await expectCode(
            store.listUsers(tenantId, { cursor, identifierPrefix: email('v') }),
            ErrorCode.VALIDATION,
            `prefix search cursor ${JSON.stringify(cursor)}`,
          )
        }
        await expectCode(
          store.countUsers(freshId('bad tenant'), {}),
          ErrorCode.VALIDATION,
          'countUsers with a malformed tenant id',
        )
      },
    },
  ],
)
