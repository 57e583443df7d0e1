import { randomBytes } from 'node:crypto'
import { ErrorCode } from '../../domain/errors.js'
import { Secret } from '../../domain/secret.js'
import type { UserEngineStore } from '../../store/store.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectCode, expectEmptyPage, expectNull } from '../shared/expect.js'
import { putIdentifier, seedUser } from '../shared/fixtures.js'
import type { RowRefusal } from '../shared/types.js'

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

/** Awaits a commit the database must refuse; fails when it committed (the refusal hook did nothing). */
async function expectRefused(commit: Promise<unknown>, what: string): Promise<void> {
  let committed = false
  try {
    await commit
    committed = true
  } catch {
    // Any error: a planted constraint is not a deliberate refusal, so no code is required.
  }
  assert.ok(!committed, `${what} committed: refuseRows did not make the database refuse it`)
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
    name: "a commit whose audit record or event the database refuses writes none of the unit's records, audit or events",
    needsRowRefusal: true,
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const tag = randomBytes(6).toString('hex')
      const refusal: RowRefusal = {
        auditAction: `conformance.refused.${tag}`,
        eventType: `conformance.refused.${tag}`,
      }
      await ctx.options.refuseRows!(store, refusal)
      // Whatever order a store writes records, audit and events in, one of these refusals comes after the
      // records: a store that commits the parts separately keeps what it wrote first.
      const refused: Array<[string, (tx: UnitOfWork, userId: string) => void]> = [
        ['an audit record', (tx, userId) => tx.appendAudit({ action: refusal.auditAction, userId })],
        ['an event', (tx, userId) => tx.enqueue({ type: refusal.eventType, userId })],
      ]
      for (const [what, last] of refused) {
        const userId = freshId('u')
        const username = `refused_${userId.slice(-8)}`
        await expectRefused(
          store.transaction(tenantId, async (tx) => {
            writeEverything(tx, userId, username)
            last(tx, userId)
          }),
          `a new user's unit with a refused ${what}`,
        )
        await assertNoTrace(store, tenantId, userId, username)
      }
      // An update of an existing user: the stored records keep their versions and values.
      const existing = await seedUser(store, tenantId, {
        username: 'kept_as_is',
        attributes: { plan: 'free' },
      })
      for (const [what, last] of refused) {
        await expectRefused(
          store.transaction(tenantId, async (tx) => {
            tx.putUser({ id: existing.userId, status: 'disabled' }, { expectedVersion: 1 })
            tx.putProfile({ userId: existing.userId, attributes: { plan: 'pro' } }, { expectedVersion: 1 })
            tx.appendAudit({ action: 'user.disabled', userId: existing.userId })
            tx.enqueue({ type: 'user.disabled', userId: existing.userId })
            last(tx, existing.userId)
          }),
          `an update's unit with a refused ${what}`,
        )
      }
      const user = await store.getUser(tenantId, existing.userId)
      assert.deepEqual([user?.version, user?.status], [1, 'active'], 'the user of a refused update changed')
      await store.transaction(tenantId, async (tx) => {
        const profile = await tx.getProfile(existing.userId)
        assert.deepEqual([profile?.version, profile?.attributes], [1, { plan: 'free' }], 'profile changed')
      })
      const audit = await store.listAudit(tenantId, { userId: existing.userId })
      assert.equal(audit.items.length, 1, 'audit records of refused updates survived')
      const events = await store.outbox.listForAggregate(tenantId, existing.userId)
      assert.equal(events.length, 1, 'events of refused updates survived')
      // The refusal is narrow: the same unit with other actions and types commits.
      await store.transaction(tenantId, async (tx) => {
        tx.putUser({ id: existing.userId, status: 'disabled' }, { expectedVersion: 1 })
        tx.appendAudit({ action: 'user.disabled', userId: existing.userId })
        tx.enqueue({ type: 'user.disabled', userId: existing.userId })
      })
      assert.equal((await store.getUser(tenantId, existing.userId))?.version, 2)
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
