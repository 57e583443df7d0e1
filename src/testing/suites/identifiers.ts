import { ErrorCode } from '../../domain/errors.js'
import { normalizeIdentifier } from '../../domain/validation.js'
import type { UserEngineStore } from '../../store/store.js'
import { barrier } from '../shared/barrier.js'
import { freshId, suite } from '../shared/context.js'
import { assert, errorCode, expectCode, expectNull, expectOk } from '../shared/expect.js'
import { changeUser, putIdentifier, seedUser } from '../shared/fixtures.js'

async function createWithEmail(store: UserEngineStore, tenantId: string, raw: string) {
  const userId = freshId('u')
  await store.transaction(tenantId, async (tx) => {
    tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
    putIdentifier(tx, freshId('idn'), userId, 'email', normalizeIdentifier('email', raw))
    tx.appendAudit({ action: 'user.created', userId })
    tx.enqueue({ type: 'user.created', userId })
  })
  return userId
}

/** UnitOfWork rule 4: an identifier value is unique per tenant and kind, on its normalized form. */
export const identifiersSuite = suite('identifiers', 'identifier values are unique per tenant and kind', [
  {
    name: 'a taken normalized value is refused with DUPLICATE_IDENTIFIER and nothing is written',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const first = await createWithEmail(store, tenantId, 'Ann.Conformance@Example.COM')
      const secondId = freshId('u')
      await expectCode(
        store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: secondId, status: 'active' }, { mustNotExist: true })
          putIdentifier(
            tx,
            freshId('idn'),
            secondId,
            'email',
            normalizeIdentifier('email', ' ann.conformance@EXAMPLE.com'),
          )
          tx.appendAudit({ action: 'user.created', userId: secondId })
          tx.enqueue({ type: 'user.created', userId: secondId })
        }),
        ErrorCode.DUPLICATE_IDENTIFIER,
        'a second user with the same normalized email',
      )
      expectNull(await store.getUser(tenantId, secondId), 'the refused user')
      assert.deepEqual(
        (await store.listAudit(tenantId, { userId: secondId })).items,
        [],
        'audit of the refused user',
      )
      assert.deepEqual(
        await store.outbox.listForAggregate(tenantId, secondId),
        [],
        'events of the refused user',
      )
      const owner = await store.findUserByIdentifier(tenantId, 'email', 'ann.conformance@example.com')
      assert.equal(owner?.id, first)
    },
  },
  {
    name: 'the same value in another tenant, or as another kind of the same user, is accepted',
    async run(ctx) {
      const store = await ctx.store()
      const a = await ctx.newTenant(store)
      const b = await ctx.newTenant(store)
      const inA = await expectOk(
        createWithEmail(store, a, 'shared@example.com'),
        'a user with the email shared@example.com in tenant A',
      )
      const inB = await expectOk(
        createWithEmail(store, b, 'SHARED@example.com'),
        'a user with the same email in tenant B (uniqueness is per tenant)',
      )
      assert.equal(
        (await store.findUserByIdentifier(a, 'email', 'shared@example.com'))?.id,
        inA,
        'found in A',
      )
      assert.equal(
        (await store.findUserByIdentifier(b, 'email', 'shared@example.com'))?.id,
        inB,
        'found in B',
      )
      // A username and an email of one user live side by side.
      await expectOk(
        changeUser(store, a, inA, (tx) => putIdentifier(tx, freshId('idn'), inA, 'username', 'shared')),
        "the username 'shared' for the user holding shared@example.com (uniqueness is per kind)",
      )
      assert.equal((await store.findUserByIdentifier(a, 'username', 'shared'))?.id, inA, 'username in A')
    },
  },
  {
    name: 'uniqueness is per kind: an email and a username with the same value belong to two users',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      // Stores compare normalized values as given; the engine never makes such a username, a store must
      // still key its unique index by (tenant, kind, value), not (tenant, value).
      const value = 'same.value@example.com'
      const byEmail = await createWithEmail(store, tenantId, value)
      const { userId: byUsername } = await seedUser(store, tenantId)
      await expectOk(
        changeUser(store, tenantId, byUsername, (tx) =>
          putIdentifier(tx, freshId('idn'), byUsername, 'username', value),
        ),
        "another user's username equal to the first user's email (uniqueness is per kind)",
      )
      assert.equal((await store.findUserByIdentifier(tenantId, 'email', value))?.id, byEmail)
      assert.equal((await store.findUserByIdentifier(tenantId, 'username', value))?.id, byUsername)
    },
  },
  {
    name: 'values normalization keeps apart stay apart: no accent-, width- or case-insensitive collation',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      // Each pair is two distinct normalized identifiers; a collation such as MySQL's utf8mb4_general_ci
      // or a citext column would call each pair one value.
      const pairs = [
        ['resume@example.com', 'résumé@example.com', 'accents'],
        ['strasse@example.de', 'straße@example.de', 'ß and ss'],
        ['ann@example.com', 'ånn@example.com', 'accents'],
        ['ıgor@example.com', 'igor@example.com', 'case (dotless ı upper-cases to I, as i does)'],
      ] as const
      for (const [first, second, differing] of pairs) {
        const pair = [first, second]
        const ids = []
        for (const raw of pair) {
          const value = normalizeIdentifier('email', raw)
          assert.equal(value, raw, `${raw} is already normalized`)
          try {
            ids.push(await createWithEmail(store, tenantId, raw))
          } catch (error) {
            // The store's own "taken" error says nothing of why: name the rule it broke.
            const code = errorCode(error) ?? 'a non-library error'
            assert.fail(
              `identifiers differing only in ${differing} must both register (binary comparison): ${raw} after ${first} failed with ${code} (${error instanceof Error ? error.message : String(error)}); compare values byte for byte, never under a case- or accent-insensitive collation`,
            )
          }
        }
        for (const [i, raw] of pair.entries()) {
          assert.equal(
            (await store.findUserByIdentifier(tenantId, 'email', raw))?.id,
            ids[i],
            `lookup of the ${i === 0 ? 'first' : 'second'} of a pair finds its own user`,
          )
        }
      }
    },
  },
  {
    name: 'changing an identifier to a taken value is refused with DUPLICATE_IDENTIFIER',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      await seedUser(store, tenantId, { username: 'taken_name' })
      const other = await seedUser(store, tenantId, { username: 'free_name' })
      await expectCode(
        changeUser(store, tenantId, other.userId, async (tx) => {
          const mine = await tx.findIdentifier('username', 'free_name')
          assert.ok(mine)
          tx.putIdentifier({ ...mine, value: 'taken_name' }, { expectedVersion: mine.version })
        }),
        ErrorCode.DUPLICATE_IDENTIFIER,
        'renaming onto a taken username',
      )
      assert.equal(
        (await store.findUserByIdentifier(tenantId, 'username', 'free_name'))?.id,
        other.userId,
        'the refused rename changed the identifier: its old value no longer finds its user (a refused commit writes nothing)',
      )
      assert.equal(
        (await store.getUser(tenantId, other.userId))?.version,
        1,
        "the refused rename bumped the user's version: a commit refused with DUPLICATE_IDENTIFIER writes nothing",
      )
    },
  },
  {
    name: 'a value deleted and inserted again in one unit commits, and a changed value frees the old one',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const seeded = await seedUser(store, tenantId, { email: 'again@example.com' })
      const { userId } = seeded
      const again = freshId('idn')
      await expectOk(
        changeUser(store, tenantId, userId, (tx) => {
          tx.deleteIdentifier({ id: seeded.emailId!, userId }, { expectedVersion: 1 })
          putIdentifier(tx, again, userId, 'email', 'again@example.com')
        }),
        'one unit deleting an identifier and inserting a new one with the same value',
      )
      const back = await store.getIdentifier(tenantId, 'email', 'again@example.com')
      assert.deepEqual(
        [back?.id, back?.version],
        [again, 1],
        'the value is held by the new record, at version 1',
      )
      await expectOk(
        changeUser(store, tenantId, userId, (tx) => {
          tx.putIdentifier(
            { id: again, userId, kind: 'email', value: 'moved@example.com', verified: false },
            { expectedVersion: 1 },
          )
        }),
        "changing the identifier's value",
      )
      expectNull(
        await store.getIdentifier(tenantId, 'email', 'again@example.com'),
        'the old value after a change',
      )
      const other = await expectOk(
        seedUser(store, tenantId, { email: 'again@example.com' }),
        'another user taking the value the change freed',
      )
      assert.equal(
        (await store.findUserByIdentifier(tenantId, 'email', 'again@example.com'))?.id,
        other.userId,
      )
    },
  },
  {
    name: 'two racing transactions inserting one identifier: exactly one wins, the other gets DUPLICATE_IDENTIFIER',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const raws = ['Race.Winner@Example.com', 'race.winner@EXAMPLE.COM']
      const value = normalizeIdentifier('email', raws[0])
      const bothRead = barrier(raws.length)
      const userIds = raws.map(() => freshId('u'))
      const results = await Promise.allSettled(
        raws.map((raw, i) =>
          store.transaction(tenantId, async (tx) => {
            // Both check first, as a sign-up would, and both see the value free.
            expectNull(await tx.findIdentifier('email', value), 'identifier before the race')
            await bothRead()
            const userId = userIds[i]!
            tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
            putIdentifier(tx, freshId('idn'), userId, 'email', normalizeIdentifier('email', raw))
            tx.enqueue({ type: 'user.created', userId })
          }),
        ),
      )
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [userIds[i]!] : []))
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []))
      assert.equal(won.length, 1, `${won.length} transactions committed the same identifier`)
      assert.deepEqual(
        lost.map((e) => errorCode(e) ?? String(e)),
        [ErrorCode.DUPLICATE_IDENTIFIER],
      )
      assert.equal((await store.findUserByIdentifier(tenantId, 'email', value))?.id, won[0])
      const loser = userIds.find((id) => id !== won[0])!
      expectNull(await store.getUser(tenantId, loser), 'the losing user')
      assert.deepEqual(await store.outbox.listForAggregate(tenantId, loser), [], "the losing user's events")
    },
  },
])
