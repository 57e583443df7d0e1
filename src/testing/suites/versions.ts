import { ConflictError, ErrorCode } from '../../domain/errors.js'
import { Secret } from '../../domain/secret.js'
import { failedAtCommit } from '../../store/commit-phase.js'
import type { UserEngineStore } from '../../store/store.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectCode, expectNull } from '../shared/expect.js'
import { changeUser, putIdentifier, type SeededUser, seedUser } from '../shared/fixtures.js'

/** What a refused commit must not have changed: the user's version, audit and events. */
async function snapshot(store: UserEngineStore, tenantId: string, userId: string) {
  const user = await store.getUser(tenantId, userId)
  const audit = (await store.listAudit(tenantId, { limit: 500 })).items.map((a) => a.id)
  const events = (await store.outbox.listForAggregate(tenantId, userId)).map((e) => e.id)
  const inside = await store.transaction(tenantId, async (tx) => ({
    profile: (await tx.getProfile(userId))?.version ?? null,
    identifiers: (await tx.listIdentifiers(userId)).map((i) => `${i.id}@${i.version}`),
    factors: (await tx.listFactors(userId)).map((f) => `${f.id}@${f.version}`),
  }))
  return { version: user?.version ?? null, status: user?.status ?? null, audit, events, ...inside }
}

/** Runs a unit that must be refused with `code`, then asserts it left no trace. */
async function refused(
  store: UserEngineStore,
  tenantId: string,
  seeded: SeededUser,
  code: string,
  what: string,
  fn: (tx: UnitOfWork) => void | Promise<void>,
) {
  const before = await snapshot(store, tenantId, seeded.userId)
  await expectCode(
    store.transaction(tenantId, async (tx) => {
      tx.appendAudit({ action: 'conformance.refused', userId: seeded.userId })
      tx.enqueue({ type: 'conformance.refused', userId: seeded.userId })
      await fn(tx)
    }),
    code,
    what,
  )
  assert.deepEqual(
    await snapshot(store, tenantId, seeded.userId),
    before,
    `${what}: the refused commit wrote`,
  )
}

function fullUser(store: UserEngineStore, tenantId: string) {
  return seedUser(store, tenantId, {
    username: `v${freshId('n').slice(2, 14)}`,
    attributes: { a: 1 },
    factor: { secret: { hash: 'h' } },
  })
}

/** UnitOfWork rules 4 and 5: preconditions fail the whole commit with a typed error; nothing is written. */
export const versionsSuite = suite('versions', 'write preconditions are enforced at commit, atomically', [
  {
    name: 'an expectedVersion that does not match fails with VERSION_CONFLICT and writes nothing',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const seeded = await fullUser(store, tenantId)
      const { userId } = seeded
      for (const wrong of [2, 7]) {
        await refused(store, tenantId, seeded, ErrorCode.VERSION_CONFLICT, `user at version ${wrong}`, (tx) =>
          tx.putUser({ id: userId, status: 'disabled' }, { expectedVersion: wrong }),
        )
      }
      await changeUser(store, tenantId, userId)
      // Version 1 is now stale: the lost update a precondition exists to stop.
      await refused(store, tenantId, seeded, ErrorCode.VERSION_CONFLICT, 'a stale profile write', (tx) => {
        tx.putProfile({ userId, attributes: { a: 2 } }, { expectedVersion: 1 })
        tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
      })
      await refused(store, tenantId, seeded, ErrorCode.VERSION_CONFLICT, 'a stale factor write', (tx) => {
        tx.putFactor(
          { id: seeded.factorId!, userId, kind: 'password', secret: new Secret({ hash: 'x' }), state: {} },
          { expectedVersion: 2 },
        )
        tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 2 })
      })
      await refused(
        store,
        tenantId,
        seeded,
        ErrorCode.VERSION_CONFLICT,
        'a stale identifier delete',
        (tx) => {
          tx.deleteIdentifier({ id: seeded.usernameId!, userId }, { expectedVersion: 2 })
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 2 })
        },
      )
    },
  },
  {
    name: 'an update or delete of a missing record fails with VERSION_CONFLICT',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const seeded = await seedUser(store, tenantId)
      const { userId } = seeded
      await refused(
        store,
        tenantId,
        seeded,
        ErrorCode.VERSION_CONFLICT,
        'updating a missing profile',
        (tx) => {
          tx.putProfile({ userId, attributes: {} }, { expectedVersion: 1 })
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        },
      )
      await refused(
        store,
        tenantId,
        seeded,
        ErrorCode.VERSION_CONFLICT,
        'deleting a missing factor',
        (tx) => {
          tx.deleteFactor({ id: freshId('fac'), userId }, { expectedVersion: 1 })
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        },
      )
      const ghost = freshId('u')
      await expectCode(
        store.transaction(tenantId, async (tx) =>
          tx.putUser({ id: ghost, status: 'active' }, { expectedVersion: 1 }),
        ),
        ErrorCode.VERSION_CONFLICT,
        'updating a missing user',
      )
      expectNull(await store.getUser(tenantId, ghost), 'the missing user after a refused update')
    },
  },
  {
    name: 'mustNotExist on an existing record fails with ALREADY_EXISTS and writes nothing',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const seeded = await fullUser(store, tenantId)
      const { userId } = seeded
      await refused(store, tenantId, seeded, ErrorCode.ALREADY_EXISTS, 'inserting an existing user', (tx) =>
        tx.putUser({ id: userId, status: 'disabled' }, { mustNotExist: true }),
      )
      await refused(
        store,
        tenantId,
        seeded,
        ErrorCode.ALREADY_EXISTS,
        'inserting an existing profile',
        (tx) => {
          tx.putProfile({ userId, attributes: { b: 2 } }, { mustNotExist: true })
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        },
      )
      await refused(
        store,
        tenantId,
        seeded,
        ErrorCode.ALREADY_EXISTS,
        'inserting an existing factor',
        (tx) => {
          tx.putFactor(
            { id: seeded.factorId!, userId, kind: 'totp', secret: new Secret({ seed: 's' }), state: {} },
            { mustNotExist: true },
          )
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        },
      )
      await refused(
        store,
        tenantId,
        seeded,
        ErrorCode.ALREADY_EXISTS,
        'inserting an existing identifier id',
        (tx) => {
          putIdentifier(tx, seeded.usernameId!, userId, 'username', 'another_name')
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        },
      )
      await expectCode(
        store.transaction(tenantId, async (tx) =>
          tx.putTenant({ id: tenantId, name: 'T2', status: 'active' }, { mustNotExist: true }),
        ),
        ErrorCode.ALREADY_EXISTS,
        'inserting an existing tenant',
      )
      assert.equal((await store.getTenant(tenantId))?.name, 'Conformance')
    },
  },
  {
    name: "writing a user's records without writing the user fails with INVALID_UNIT_OF_WORK",
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const seeded = await fullUser(store, tenantId)
      const { userId } = seeded
      const code = ErrorCode.INVALID_UNIT_OF_WORK
      await refused(store, tenantId, seeded, code, 'a profile write without the user', (tx) =>
        tx.putProfile({ userId, attributes: { a: 2 } }, { expectedVersion: 1 }),
      )
      await refused(store, tenantId, seeded, code, 'an identifier insert without the user', (tx) =>
        putIdentifier(tx, freshId('idn'), userId, 'email', 'no.user.write@example.com'),
      )
      // `refused` enqueues an event about the user; on its own that must fail the same way.
      await refused(store, tenantId, seeded, code, 'an event about the user without the user', () => {})
      await expectCode(
        store.transaction(tenantId, async (tx) => tx.enqueue({ type: 'tenant.changed' })),
        code,
        'a tenant event without a tenant write',
      )
    },
  },
  {
    name: 'a commit into a tenant without a tenant record fails with NOT_FOUND and writes nothing',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = ctx.unknownTenantId()
      const userId = freshId('u')
      await expectCode(
        store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
          putIdentifier(tx, freshId('idn'), userId, 'username', 'no_tenant')
          tx.appendAudit({ action: 'user.created', userId })
          tx.enqueue({ type: 'user.created', userId })
        }),
        ErrorCode.NOT_FOUND,
        'a commit into an unknown tenant',
      )
      expectNull(await store.getUser(tenantId, userId), 'user written into an unknown tenant')
      expectNull(
        await store.getIdentifier(tenantId, 'username', 'no_tenant'),
        'identifier in an unknown tenant',
      )
      assert.deepEqual((await store.listAudit(tenantId)).items, [], 'audit in an unknown tenant')
      assert.deepEqual(
        await store.outbox.listForAggregate(tenantId, userId),
        [],
        'events in an unknown tenant',
      )
      expectNull(await store.getTenant(tenantId), 'the unknown tenant')
      // The commit that creates the tenant may write into it at once.
      await store.transaction(tenantId, async (tx) => {
        tx.putTenant({ id: tenantId, name: 'Created', status: 'active' }, { mustNotExist: true })
        tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
      })
      assert.equal((await store.getUser(tenantId, userId))?.version, 1)
    },
  },
  {
    name: 'each commit bumps a record by exactly one, however often the unit wrote it',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const { userId } = await seedUser(store, tenantId, { attributes: { n: 0 } })
      await store.transaction(tenantId, async (tx) => {
        tx.putUser({ id: userId, status: 'disabled' }, { expectedVersion: 1 })
        tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 2 })
        tx.putProfile({ userId, attributes: { n: 1 } }, { expectedVersion: 1 })
        tx.putProfile({ userId, attributes: { n: 2 } }, { expectedVersion: 2 })
      })
      const user = await store.getUser(tenantId, userId)
      assert.deepEqual([user?.status, user?.version], ['active', 2])
      for (let i = 0; i < 3; i++) await changeUser(store, tenantId, userId)
      assert.equal((await store.getUser(tenantId, userId))?.version, 5)
      await store.transaction(tenantId, async (tx) => {
        const p = await tx.getProfile(userId)
        assert.deepEqual([p?.attributes.n, p?.version], [2, 2])
      })
    },
  },
  {
    name: 'a record deleted and inserted again (mustNotExist) starts over at version 1',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const seeded = await fullUser(store, tenantId)
      const { userId } = seeded
      const [identifierId, factorId] = [seeded.usernameId!, seeded.factorId!]
      const read = () =>
        store.transaction(tenantId, async (tx) => ({
          profile: await tx.getProfile(userId),
          identifier: (await tx.listIdentifiers(userId)).find((i) => i.id === identifierId) ?? null,
          factor: (await tx.listFactors(userId)).find((f) => f.id === factorId) ?? null,
        }))
      // Two updates each: version 3 when deleted.
      for (const expectedVersion of [1, 2]) {
        await changeUser(store, tenantId, userId, async (tx) => {
          const now = await read()
          tx.putProfile({ userId, attributes: { a: expectedVersion + 1 } }, { expectedVersion })
          tx.putIdentifier({ ...now.identifier!, verified: expectedVersion === 2 }, { expectedVersion })
          tx.putFactor({ ...now.factor!, state: { n: expectedVersion } }, { expectedVersion })
        })
      }
      const held = await read()
      assert.deepEqual(
        [held.profile?.version, held.identifier?.version, held.factor?.version],
        [3, 3, 3],
        'profile, identifier and factor after an insert and two updates',
      )
      await changeUser(store, tenantId, userId, (tx) => {
        tx.deleteProfile(userId, { expectedVersion: 3 })
        tx.deleteIdentifier({ id: identifierId, userId }, { expectedVersion: 3 })
        tx.deleteFactor({ id: factorId, userId }, { expectedVersion: 3 })
      })
      await changeUser(store, tenantId, userId, (tx) => {
        tx.putProfile({ userId, attributes: { a: 'again' } }, { mustNotExist: true })
        tx.putIdentifier({ ...held.identifier!, verified: false }, { mustNotExist: true })
        tx.putFactor({ ...held.factor!, state: {} }, { mustNotExist: true })
      })
      const again = await read()
      const rule =
        'an insert ({ mustNotExist: true }) stores version 1 (UnitOfWork rule 4), also where a deleted record of that id was: the deleted record’s version must not carry over'
      assert.deepEqual(
        {
          profile: again.profile?.version,
          identifier: again.identifier?.version,
          factor: again.factor?.version,
        },
        { profile: 1, identifier: 1, factor: 1 },
        `versions of the records inserted again after their delete at version 3: ${rule}`,
      )
      // The new record's version is what its next update must name.
      await changeUser(store, tenantId, userId, (tx) =>
        tx.putProfile({ userId, attributes: { a: 'next' } }, { expectedVersion: 1 }),
      )
    },
  },
  {
    name: 'a conflict raised by the commit is marked as such (markCommitPhase); one the callback throws is not',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const { userId } = await seedUser(store, tenantId)
      await changeUser(store, tenantId, userId)
      // The engine retries a use case on fresh reads only for a VERSION_CONFLICT its commit raised.
      const atCommit = await expectCode(
        store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        }),
        ErrorCode.VERSION_CONFLICT,
        'a stale user write',
      )
      assert.ok(
        failedAtCommit(atCommit),
        'a conflict raised by the commit is not marked with markCommitPhase',
      )
      const thrown = new ConflictError(ErrorCode.VERSION_CONFLICT, 'raised by the callback')
      const rethrown = await expectCode(
        store.transaction(tenantId, async () => {
          throw thrown
        }),
        ErrorCode.VERSION_CONFLICT,
        'a conflict the callback throws',
      )
      assert.equal(rethrown, thrown, "the callback's error was not rethrown unchanged")
      assert.ok(!failedAtCommit(rethrown), "the callback's error is marked as raised by the commit")
    },
  },
])
