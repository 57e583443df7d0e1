import type { UserEngineStore } from '../../store/store.js'
import { type CaseContext, suite } from '../shared/context.js'
import { assert, expectEmptyPage, expectNull } from '../shared/expect.js'
import { changeUser, putIdentifier, type SeededUser, seedUser } from '../shared/fixtures.js'

interface TwoTenants {
  readonly store: UserEngineStore
  /** Holds the data. */
  readonly a: string
  /** Exists (its tenant record and a user of its own) but must see nothing of `a`. */
  readonly b: string
  readonly user: SeededUser
  readonly bUser: string
}

async function twoTenants(ctx: CaseContext): Promise<TwoTenants> {
  const store = await ctx.store()
  const a = ctx.unknownTenantId()
  const b = await ctx.newTenant(store)
  await store.transaction(a, async (tx) => {
    tx.putTenant({ id: a, name: 'Tenant A', status: 'active' }, { mustNotExist: true })
    tx.appendAudit({ action: 'tenant.created' })
    tx.enqueue({ type: 'tenant.created' })
  })
  const user = await seedUser(store, a, {
    email: 'isolated@example.com',
    username: 'isolated',
    attributes: { name: 'A' },
    factor: { secret: { hash: 'h' } },
    audits: 2,
    events: 2,
  })
  const bUser = (await seedUser(store, b)).userId
  return { store, a, b, user, bUser }
}

/** UnitOfWork rule 1 / store rule 4: another tenant's records read as absent, never as an error. */
export const tenantIsolationSuite = suite('tenant-isolation', "another tenant's records are invisible", [
  {
    name: "store reads of another tenant's records return null",
    async run(ctx) {
      const { store, a, b, user } = await twoTenants(ctx)
      expectNull(await store.getUser(b, user.userId), 'getUser across tenants')
      expectNull(
        await store.getTenant(ctx.unknownTenantId()),
        'getTenant of a tenant without a tenant record',
      )
      assert.deepEqual(
        [(await store.getTenant(a))?.name, (await store.getTenant(b))?.name],
        ['Tenant A', 'Conformance'],
      )
      expectNull(await store.getIdentifier(b, 'email', user.email!), 'getIdentifier across tenants')
      expectNull(await store.getIdentifier(b, 'username', user.username!), 'getIdentifier across tenants')
      expectNull(
        await store.findUserByIdentifier(b, 'email', user.email!),
        'findUserByIdentifier across tenants',
      )
      expectNull(await store.getUser(ctx.unknownTenantId(), user.userId), 'getUser in a tenant with no data')
    },
  },
  {
    name: "listings show nothing of another tenant's users or audit",
    async run(ctx) {
      const { store, a, b, user, bUser } = await twoTenants(ctx)
      const users = await store.listUsers(b)
      assert.deepEqual(
        users.items.map((u) => u.id),
        [bUser],
        'listUsers lists only the tenant’s own users',
      )
      assert.deepEqual(
        (await store.listUsers(b, { status: 'active', limit: 500 })).items.map((u) => u.id),
        [bUser],
      )
      expectEmptyPage(
        await store.listAudit(b, { userId: user.userId }),
        'listAudit filtered by a foreign user',
      )
      const audit = await store.listAudit(b)
      assert.ok(
        audit.items.every((r) => r.tenantId === b && r.userId !== user.userId),
        'listAudit shows records of another tenant',
      )
      expectEmptyPage(await store.listUsers(ctx.unknownTenantId()), 'listUsers of a tenant with no data')
      expectEmptyPage(await store.listAudit(ctx.unknownTenantId()), 'listAudit of a tenant with no data')
      assert.ok((await store.listAudit(a)).items.length >= 3, 'tenant A lost its own audit records')
    },
  },
  {
    name: "unit-of-work reads of another tenant's records return null or empty",
    async run(ctx) {
      const { store, b, user } = await twoTenants(ctx)
      await store.transaction(b, async (tx) => {
        assert.equal(
          (await tx.getTenant())?.name,
          'Conformance',
          "tx.getTenant shows another tenant's record",
        )
        expectNull(await tx.getUser(user.userId), 'tx.getUser')
        expectNull(await tx.findIdentifier('email', user.email!), 'tx.findIdentifier')
        expectNull(await tx.getProfile(user.userId), 'tx.getProfile')
        assert.deepEqual(await tx.listIdentifiers(user.userId), [], 'tx.listIdentifiers')
        assert.deepEqual(await tx.listFactors(user.userId), [], 'tx.listFactors')
      })
    },
  },
  {
    name: "writes are scoped: the same ids in another tenant are new records and leave the first tenant's alone",
    async run(ctx) {
      const { store, a, b, user } = await twoTenants(ctx)
      // Same record ids, mustNotExist: another tenant's rows must not make these conflict.
      await store.transaction(b, async (tx) => {
        tx.putUser({ id: user.userId, status: 'disabled' }, { mustNotExist: true })
        putIdentifier(tx, user.emailId!, user.userId, 'email', 'other@example.com')
        tx.putProfile({ userId: user.userId, attributes: { name: 'B' } }, { mustNotExist: true })
        tx.enqueue({ type: 'user.created', userId: user.userId })
      })
      await changeUser(store, b, user.userId, (tx) => {
        tx.putProfile({ userId: user.userId, attributes: { name: 'B2' } }, { expectedVersion: 1 })
      })
      const inA = await store.getUser(a, user.userId)
      assert.deepEqual([inA?.status, inA?.version], ['active', 1], "tenant A's user changed")
      assert.equal((await store.getUser(b, user.userId))?.version, 2)
      assert.equal((await store.getTenant(a))?.name, 'Tenant A')
      expectNull(await store.getIdentifier(a, 'email', 'other@example.com'), "B's identifier seen in A")
      assert.equal((await store.getIdentifier(a, 'email', user.email!))?.userId, user.userId)
      await store.transaction(a, async (tx) => {
        assert.deepEqual({ ...(await tx.getProfile(user.userId))?.attributes }, { name: 'A' })
      })
      const aEvents = await store.outbox.listForAggregate(a, user.userId)
      const bEvents = await store.outbox.listForAggregate(b, user.userId)
      assert.equal(aEvents.length, 2, "tenant A's events")
      assert.equal(bEvents.length, 1, "tenant B's events")
      assert.ok(bEvents.every((e) => e.tenantId === b && e.sequence === 1))
      assert.deepEqual(await store.outbox.listForAggregate(ctx.unknownTenantId(), user.userId), [])
    },
  },
])
