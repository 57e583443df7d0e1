import { ErrorCode } from '../../domain/errors.js'
import { Secret } from '../../domain/secret.js'
import type { UserEngineStore } from '../../store/store.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectCode, expectEmptyPage, expectNull } from '../shared/expect.js'
import { putIdentifier, seedUser } from '../shared/fixtures.js'

/** Buffers a new user with every kind of write, audit and event. */
function writeEverything(tx: UnitOfWork, userId: string, username: string): void {
  tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
  putIdentifier(tx, freshId('idn'), userId, 'username', username)
  tx.putProfile({ userId, attributes: { a: 1 } }, { mustNotExist: true })
  tx.putFactor(
    { id: freshId('fac'), userId, kind: 'password', secret: new Secret({ hash: 'h' }), state: {} },
    { mustNotExist: true },
  )
  tx.appendAudit({ action: 'user.created', userId })
  tx.enqueue({ type: 'user.created', userId })
  tx.enqueue({ type: 'user.profile_updated', userId })
}

async function assertNoTrace(store: UserEngineStore, tenantId: string, userId: string, username: string) {
  expectNull(await store.getUser(tenantId, userId), 'user of the rolled-back unit')
  expectNull(await store.getIdentifier(tenantId, 'username', username), 'identifier of the rolled-back unit')
  expectEmptyPage(await store.listAudit(tenantId, { userId }), 'audit of the rolled-back unit')
  assert.deepEqual(
    await store.outbox.listForAggregate(tenantId, userId),
    [],
    'events of the rolled-back unit',
  )
  await store.transaction(tenantId, async (tx) => {
    expectNull(await tx.getProfile(userId), 'profile of the rolled-back unit')
    assert.deepEqual(await tx.listFactors(userId), [], 'factors of the rolled-back unit')
  })
}

/** Store rule 3, UnitOfWork rule 3: all or nothing. */
export const rollbackSuite = suite('rollback', 'a failed unit of work leaves no record, audit or event', [
  {
    name: 'a throwing callback writes nothing and its error is rethrown unchanged',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const userId = freshId('u')
      class CallerError extends Error {}
      const thrown = new CallerError('from the callback')
      let caught: unknown
      try {
        await store.transaction(tenantId, async (tx) => {
          writeEverything(tx, userId, 'rolled_back')
          throw thrown
        })
      } catch (error) {
        caught = error
      }
      assert.equal(caught, thrown, 'the callback error was not rethrown as the same object')
      await assertNoTrace(store, tenantId, userId, 'rolled_back')
    },
  },
  {
    name: 'a thrown non-Error value is rethrown unchanged and writes nothing',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const userId = freshId('u')
      const thrown = { reason: 'not an Error' }
      let caught: unknown
      try {
        await store.transaction(tenantId, async (tx) => {
          writeEverything(tx, userId, 'plain_throw')
          await Promise.resolve()
          throw thrown
        })
      } catch (error) {
        caught = error
      }
      assert.equal(caught, thrown, 'a thrown plain object was not rethrown as the same object')
      await assertNoTrace(store, tenantId, userId, 'plain_throw')
    },
  },
  {
    name: 'a failed precondition on the last write discards the earlier writes, audit and events',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const existing = await seedUser(store, tenantId, { username: 'already_taken' })
      const cases: Array<[string, string, (tx: UnitOfWork) => void]> = [
        [
          ErrorCode.VERSION_CONFLICT,
          'a stale user version last',
          (tx) => tx.putUser({ id: existing.userId, status: 'disabled' }, { expectedVersion: 9 }),
        ],
        [
          ErrorCode.ALREADY_EXISTS,
          'an existing user inserted last',
          (tx) => tx.putUser({ id: existing.userId, status: 'disabled' }, { mustNotExist: true }),
        ],
        [
          ErrorCode.DUPLICATE_IDENTIFIER,
          'a taken identifier last',
          (tx) => {
            tx.putUser({ id: existing.userId, status: 'active' }, { expectedVersion: 1 })
            putIdentifier(tx, freshId('idn'), existing.userId, 'username', 'already_taken')
          },
        ],
      ]
      for (const [code, what, last] of cases) {
        const userId = freshId('u')
        const username = `fresh_${userId.slice(-8)}`
        await expectCode(
          store.transaction(tenantId, async (tx) => {
            writeEverything(tx, userId, username)
            last(tx)
          }),
          code,
          what,
        )
        await assertNoTrace(store, tenantId, userId, username)
      }
      assert.equal((await store.getUser(tenantId, existing.userId))?.version, 1, 'the existing user changed')
      assert.equal(
        (await store.listAudit(tenantId)).items.length,
        1,
        'audit records of refused commits survived',
      )
    },
  },
  {
    name: 'a unit of work leaked out of its callback cannot write afterwards',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      let leaked: UnitOfWork | undefined
      await store
        .transaction(tenantId, async (tx) => {
          leaked = tx
          throw new Error('leave')
        })
        .catch(() => {})
      let committed: UnitOfWork | undefined
      await store.transaction(tenantId, async (tx) => {
        committed = tx
      })
      const late = [freshId('u'), freshId('u')]
      for (const [i, tx] of [leaked, committed].entries()) {
        try {
          tx?.putUser({ id: late[i]!, status: 'active' }, { mustNotExist: true })
          tx?.appendAudit({ action: 'late.write', userId: late[i]! })
        } catch {
          // Refusing at once is the better behaviour; the rule is only that nothing is written.
        }
      }
      // Give a store that commits lazily the chance to (wrongly) flush the late writes.
      await store.transaction(tenantId, async () => {})
      for (const id of late) expectNull(await store.getUser(tenantId, id), 'a write through a finished unit')
      expectEmptyPage(await store.listAudit(tenantId), 'audit through a finished unit')
    },
  },
])
