import { Secret } from '../../domain/secret.js'
import { deferred } from '../shared/barrier.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectNull, within } from '../shared/expect.js'
import { putIdentifier, seedUser } from '../shared/fixtures.js'

/** UnitOfWork rules 2 and 6: a unit sees its own buffered writes; nobody else does before commit. */
export const readYourWritesSuite = suite(
  'read-your-writes',
  'reads inside a unit see its buffered writes; others see them only after commit',
  [
    {
      name: 'reads see buffered inserts',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = ctx.unknownTenantId()
        const userId = freshId('u')
        const identifierId = freshId('idn')
        const factorId = freshId('fac')
        await store.transaction(tenantId, async (tx) => {
          tx.putTenant({ id: tenantId, name: 'T', status: 'active' }, { mustNotExist: true })
          assert.equal((await tx.getTenant())?.name, 'T', 'buffered tenant')
          tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
          const user = await tx.getUser(userId)
          assert.deepEqual([user?.id, user?.status, user?.version], [userId, 'active', 1], 'buffered user')
          putIdentifier(tx, identifierId, userId, 'email', 'ryw@example.com')
          assert.equal((await tx.findIdentifier('email', 'ryw@example.com'))?.id, identifierId)
          assert.deepEqual(
            (await tx.listIdentifiers(userId)).map((i) => i.id),
            [identifierId],
          )
          tx.putProfile({ userId, attributes: { a: 1 } }, { mustNotExist: true })
          assert.deepEqual({ ...(await tx.getProfile(userId))?.attributes }, { a: 1 })
          tx.putFactor(
            { id: factorId, userId, kind: 'password', secret: new Secret({ hash: 'h' }), state: {} },
            { mustNotExist: true },
          )
          const factors = await tx.listFactors(userId)
          assert.deepEqual(
            factors.map((f) => f.id),
            [factorId],
          )
          assert.deepEqual(factors[0]?.secret.reveal(), { hash: 'h' })
        })
      },
    },
    {
      name: 'reads see buffered updates and deletes',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const seeded = await seedUser(store, tenantId, {
          email: 'ryw2@example.com',
          attributes: { a: 1 },
          factor: { secret: { hash: 'h' } },
        })
        const { userId } = seeded
        await store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: userId, status: 'disabled' }, { expectedVersion: 1 })
          const user = await tx.getUser(userId)
          assert.deepEqual([user?.status, user?.version], ['disabled', 2], 'buffered user update')
          tx.putProfile({ userId, attributes: { a: 2 } }, { expectedVersion: 1 })
          const profile = await tx.getProfile(userId)
          assert.deepEqual([profile?.attributes.a, profile?.version], [2, 2], 'buffered profile update')
          tx.deleteIdentifier({ id: seeded.emailId!, userId }, { expectedVersion: 1 })
          expectNull(await tx.findIdentifier('email', seeded.email!), 'buffered identifier delete')
          assert.deepEqual(
            await tx.listIdentifiers(userId),
            [],
            'buffered identifier delete in listIdentifiers',
          )
          tx.deleteFactor({ id: seeded.factorId!, userId }, { expectedVersion: 1 })
          assert.deepEqual(await tx.listFactors(userId), [], 'buffered factor delete')
          tx.deleteProfile(userId, { expectedVersion: 2 })
          expectNull(await tx.getProfile(userId), 'buffered profile delete')
        })
        expectNull(await store.getIdentifier(tenantId, 'email', seeded.email!), 'identifier after commit')
        assert.equal((await store.getUser(tenantId, userId))?.status, 'disabled')
      },
    },
    {
      name: 'buffered writes are invisible outside the unit until it commits',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const userId = freshId('u')
        const written = deferred()
        const checked = deferred()
        const writer = store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
          putIdentifier(tx, freshId('idn'), userId, 'username', 'invisible_until_commit')
          written.resolve()
          await checked.promise
        })
        try {
          await within(written.promise, 5000, 'the writing unit never buffered its writes')
          expectNull(await store.getUser(tenantId, userId), 'store.getUser before commit')
          expectNull(
            await store.getIdentifier(tenantId, 'username', 'invisible_until_commit'),
            'store.getIdentifier before commit',
          )
          assert.deepEqual((await store.listUsers(tenantId)).items, [], 'listUsers before commit')
          await within(
            store.transaction(tenantId, async (other) => {
              expectNull(await other.getUser(userId), "another unit's getUser before commit")
            }),
            5000,
            'a unit of work waited for another open unit (UnitOfWork rule 6)',
          )
        } finally {
          checked.resolve()
          await writer
        }
        assert.equal((await store.getUser(tenantId, userId))?.version, 1, 'getUser after commit')
      },
    },
  ],
)
