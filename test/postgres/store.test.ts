import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { inspect } from 'node:util'
import { type ErrorCode, isUserEngineError, type UserEngineError } from '../../src/domain/errors.js'
import { newId } from '../../src/domain/ids.js'
import { SanitizedDatabaseError } from '../../src/store/postgres/driver/errors.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import type { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { DIAGNOSTIC_COUNT_KEYS, LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import type { UnitOfWork } from '../../src/store/unit-of-work.js'
import { expectCode, sleep } from '../../src/testing/shared/expect.js'
import { seedUser as seedHarnessUser } from '../../src/testing/shared/fixtures.js'
import { type CountingDriver, countingDriver, SQL_ADAPTERS, type TestDb } from '../support/adapters.js'

let seq = 0
const uniq = (p: string) => `${p}_${process.pid}_${++seq}`

/** A user with an email identifier (the harness's seedUser), in a tenant created first when missing. */
async function seedUser(
  store: PostgresUserEngineStore,
  tenantId: string,
  email = `${uniq('u')}@example.com`,
) {
  if (!(await store.getTenant(tenantId))) {
    await store.transaction(tenantId, async (tx) => {
      tx.putTenant({ id: tenantId, name: 'T', status: 'active' }, { mustNotExist: true })
    })
  }
  const seeded = await seedHarnessUser(store, tenantId, { userId: newId('usr'), email })
  return { userId: seeded.userId, identifierId: seeded.emailId!, email: seeded.email! }
}

/** A unit of work whose commit must fail with `code`; returns the error (the harness's expectCode). */
async function conflict(
  store: PostgresUserEngineStore,
  tenantId: string,
  code: ErrorCode,
  fn: (tx: UnitOfWork) => void,
): Promise<UserEngineError> {
  const error = await expectCode(
    store.transaction(tenantId, async (tx) => {
      fn(tx)
    }),
    code,
    `commit in ${tenantId}`,
  )
  assert.ok(isUserEngineError(error), String(error))
  return error
}

test('an unreachable server is STORE_UNAVAILABLE, with a sanitized cause', async () => {
  const error = await createNodePostgresStore({
    connectionString: 'postgres://nobody@127.0.0.1:1/none',
  }).catch((e: unknown) => e)
  assert.ok(isUserEngineError(error, 'STORE_UNAVAILABLE'), String(error))
  assert.ok(error.cause instanceof SanitizedDatabaseError)
})

for (const adapter of SQL_ADAPTERS) {
  describe(`postgres store on ${adapter.name}`, { skip: await adapter.skip() }, () => {
    let db: TestDb
    let store: PostgresUserEngineStore
    let counter: CountingDriver

    before(async () => {
      db = await adapter.database(LATEST_SCHEMA_VERSION)
      store = await db.store({
        wrap: (d) => {
          counter = countingDriver(d)
          return counter
        },
      })
      assert.equal(store.kind, adapter.name)
      await store.migrate()
    })
    after(async () => {
      await store?.close()
      await db?.drop()
    })

    test('a commit is exactly one query; reads are one query each', async () => {
      const tenantId = uniq('t_rt')
      counter.reset()
      await store.transaction(tenantId, async (tx) => {
        tx.putTenant({ id: tenantId, name: 'T', status: 'active' }, { mustNotExist: true })
        tx.putUser({ id: 'u1', status: 'active' }, { mustNotExist: true })
        tx.putIdentifier(
          { id: 'i1', userId: 'u1', kind: 'email', value: 'rt@example.com', verified: false },
          {
            mustNotExist: true,
          },
        )
        tx.putProfile({ userId: 'u1', attributes: { a: 1 } }, { mustNotExist: true })
        tx.appendAudit({ action: 'user.created', userId: 'u1' })
        tx.enqueue({ type: 'user.created', userId: 'u1' })
      })
      assert.equal(counter.count, 1, 'queries per commit')
      counter.reset()
      await store.transaction(tenantId, async (tx) => {
        const user = await tx.getUser('u1')
        const profile = await tx.getProfile('u1')
        tx.putProfile({ userId: 'u1', attributes: { a: 2 } }, { expectedVersion: profile!.version })
        tx.putUser({ id: 'u1', status: 'active' }, { expectedVersion: user!.version })
      })
      assert.equal(counter.count, 3, '2 reads + 1 commit')
      counter.reset()
      await store.transaction(tenantId, async (tx) => {
        await tx.getUser('u1')
      })
      assert.equal(counter.count, 1, 'a read-only unit sends no commit')
    })

    test('commit conflicts map to typed errors and write nothing', async () => {
      const tenantId = uniq('t_cf')
      const a = await seedUser(store, tenantId)
      const b = await seedUser(store, tenantId)
      const before = await store.diagnostics()

      const exists = await conflict(store, tenantId, 'ALREADY_EXISTS', (tx) => {
        tx.appendAudit({ action: 'should.not.exist' })
        tx.putTenant({ id: tenantId, name: 'again', status: 'active' }, { expectedVersion: 1 })
        tx.putUser({ id: a.userId, status: 'active' }, { mustNotExist: true })
      })
      assert.equal(exists.details.recordId, a.userId)
      assert.match(exists.message, new RegExp(`user ${a.userId}`))

      const stale = await conflict(store, tenantId, 'VERSION_CONFLICT', (tx) => {
        tx.putUser({ id: a.userId, status: 'disabled' }, { expectedVersion: 7 })
      })
      assert.equal(stale.details.expectedVersion, 7)

      const staleDelete = await conflict(store, tenantId, 'VERSION_CONFLICT', (tx) => {
        tx.putUser({ id: a.userId, status: 'active' }, { expectedVersion: 1 })
        tx.deleteIdentifier({ id: a.identifierId, userId: a.userId }, { expectedVersion: 3 })
      })
      assert.equal(staleDelete.details.recordId, a.identifierId)

      const taken = await conflict(store, tenantId, 'DUPLICATE_IDENTIFIER', (tx) => {
        tx.putUser({ id: b.userId, status: 'active' }, { expectedVersion: 1 })
        tx.putIdentifier(
          { id: uniq('idf'), userId: b.userId, kind: 'email', value: a.email, verified: false },
          {
            mustNotExist: true,
          },
        )
      })

      const takenByUpdate = await conflict(store, tenantId, 'DUPLICATE_IDENTIFIER', (tx) => {
        tx.putUser({ id: b.userId, status: 'active' }, { expectedVersion: 1 })
        tx.putIdentifier(
          { id: b.identifierId, userId: b.userId, kind: 'email', value: a.email, verified: true },
          {
            expectedVersion: 1,
          },
        )
      })
      assert.equal(takenByUpdate.details.recordId, b.identifierId)

      // Same order of checks as the reference store: the record exists before its value is taken.
      const sameId = await conflict(store, tenantId, 'ALREADY_EXISTS', (tx) => {
        tx.putUser({ id: a.userId, status: 'active' }, { expectedVersion: 1 })
        tx.putIdentifier(
          { id: a.identifierId, userId: a.userId, kind: 'email', value: a.email, verified: false },
          {
            mustNotExist: true,
          },
        )
      })
      const staleAndTaken = await conflict(store, tenantId, 'VERSION_CONFLICT', (tx) => {
        tx.putUser({ id: b.userId, status: 'active' }, { expectedVersion: 1 })
        tx.putIdentifier(
          { id: b.identifierId, userId: b.userId, kind: 'email', value: a.email, verified: true },
          {
            expectedVersion: 5,
          },
        )
      })

      const noTenant = await conflict(store, uniq('t_missing'), 'NOT_FOUND', (tx) => {
        tx.putUser({ id: 'u1', status: 'active' }, { mustNotExist: true })
        tx.appendAudit({ action: 'should.not.exist' })
      })

      for (const e of [exists, stale, staleDelete, taken, takenByUpdate, sameId, staleAndTaken, noTenant]) {
        assert.ok(e.cause instanceof SanitizedDatabaseError)
        const shown = `${e.message} ${JSON.stringify(e)} ${inspect(e, { depth: 5 })}`
        assert.doesNotMatch(shown, new RegExp(a.email.replace('.', '\\.')))
        assert.doesNotMatch(shown, /user_engine_commit|jsonb/)
      }
      // Nothing of any failed commit was written.
      assert.deepEqual((await store.diagnostics()).counts, before.counts)
      assert.equal((await store.getUser(tenantId, a.userId))?.version, 1)
    })

    test('a callback that throws writes nothing and its error is rethrown unchanged', async () => {
      const tenantId = uniq('t_throw')
      const boom = new Error('boom')
      counter.reset()
      await assert.rejects(
        store.transaction(tenantId, async (tx) => {
          tx.putTenant({ id: tenantId, name: 'T', status: 'active' }, { mustNotExist: true })
          throw boom
        }),
        (e) => e === boom,
      )
      assert.equal(counter.count, 0)
      assert.equal(await store.getTenant(tenantId), null)
    })

    test('every read is scoped to its tenant', async () => {
      const t1 = uniq('t_a')
      const t2 = uniq('t_b')
      const a = await seedUser(store, t1, 'shared@example.com')
      // The same value in another tenant is a different identifier.
      const b = await seedUser(store, t2, 'shared@example.com')
      assert.equal(await store.getUser(t2, a.userId), null)
      assert.equal((await store.findUserByIdentifier(t2, 'email', 'shared@example.com'))?.id, b.userId)
      assert.equal((await store.getIdentifier(t1, 'email', 'shared@example.com'))?.id, a.identifierId)
      assert.deepEqual(
        (await store.listUsers(t2)).items.map((u) => u.id),
        [b.userId],
      )
      assert.deepEqual(
        (await store.listAudit(t2)).items.map((x) => x.userId),
        [b.userId],
      )
      await store.transaction(t2, async (tx) => {
        assert.equal(await tx.getUser(a.userId), null)
        assert.deepEqual(await tx.listIdentifiers(a.userId), [])
      })
      // Writing another tenant's user from t2 cannot reach it: it does not exist there.
      await conflict(store, t2, 'VERSION_CONFLICT', (tx) =>
        tx.putUser({ id: a.userId, status: 'disabled' }, { expectedVersion: 1 }),
      )
      assert.equal((await store.getUser(t1, a.userId))?.status, 'active')
    })

    test('listUsers and listAudit are keyset pages in code-point order', async () => {
      const tenantId = uniq('t_list')
      const ids = ['B_user', 'a-user', 'a_user', 'Zed', 'zed', '0user', 'a']
      await store.transaction(tenantId, async (tx) => {
        tx.putTenant({ id: tenantId, name: 'T', status: 'active' }, { mustNotExist: true })
        for (const id of ids) {
          tx.putUser({ id, status: id === 'zed' ? 'disabled' : 'active' }, { mustNotExist: true })
          tx.appendAudit({ action: 'user.created', userId: id })
        }
      })
      const seen: string[] = []
      let cursor: string | undefined
      do {
        const page = await store.listUsers(
          tenantId,
          cursor === undefined ? { limit: 2 } : { limit: 2, cursor },
        )
        assert.ok(page.items.length <= 2)
        seen.push(...page.items.map((u) => u.id))
        cursor = page.nextCursor ?? undefined
      } while (cursor)
      assert.deepEqual(seen, [...ids].sort())
      assert.deepEqual(
        (await store.listUsers(tenantId, { status: 'disabled' })).items.map((u) => u.id),
        ['zed'],
      )
      const first = await store.listAudit(tenantId, { limit: 3 })
      const rest = await store.listAudit(tenantId, { cursor: first.nextCursor! })
      const all = [...first.items, ...rest.items]
      assert.deepEqual(
        all.map((x) => x.userId),
        ids,
      )
      assert.deepEqual(
        (await store.listAudit(tenantId, { userId: 'Zed' })).items.map((x) => x.userId),
        ['Zed'],
      )
      await assert.rejects(store.listUsers(tenantId, { cursor: 'not a cursor' }), (e) =>
        isUserEngineError(e, 'VALIDATION'),
      )
    })

    test('diagnostics carry counts only, with the fixed keys', async () => {
      const d = await store.diagnostics()
      assert.equal(d.store, adapter.name)
      assert.deepEqual(Object.keys(d.counts).sort(), [...DIAGNOSTIC_COUNT_KEYS].sort())
      assert.ok(Object.values(d.counts).every((n) => Number.isInteger(n) && n >= 0))
      assert.ok(d.counts.users! > 0)
    })

    describe('outbox', () => {
      // Each case drains what earlier cases left, so it sees only its own events.
      const drain = async () => {
        for (;;) {
          const c = await store.outbox.claim({ owner: 'drainer', limit: 1000, leaseMs: 60_000 })
          if (c.length === 0) return
          await store.outbox.acknowledge(
            'drainer',
            c.map((e) => e.id),
          )
        }
      }

      test('claim takes only the head of each aggregate; acknowledge needs the lease', async () => {
        await drain()
        const tenantId = uniq('t_ob')
        const { userId } = await seedUser(store, tenantId)
        await store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: userId, status: 'disabled' }, { expectedVersion: 1 })
          tx.enqueue({ type: 'user.disabled', userId })
          tx.enqueue({ type: 'user.noted', userId })
        })
        const first = await store.outbox.claim({ owner: 'relay-a', limit: 10, leaseMs: 60_000 })
        assert.deepEqual(
          first.map((e) => [e.type, e.sequence, e.position, e.leaseOwner]),
          [['user.created', 1, 0, 'relay-a']],
        )
        assert.equal(typeof first[0]!.leaseUntil, 'string')
        // Leased, and the others are blocked behind it.
        assert.deepEqual(await store.outbox.claim({ owner: 'relay-b', limit: 10, leaseMs: 60_000 }), [])
        assert.deepEqual(await store.outbox.acknowledge('relay-b', [first[0]!.id]), [])
        assert.deepEqual(await store.outbox.acknowledge('relay-a', [first[0]!.id]), [first[0]!.id])
        const published = await store.outbox.get(first[0]!.id)
        assert.equal(published?.status, 'published')
        assert.equal(published?.leaseOwner, null)
        assert.ok(published?.publishedAt)
        const second = await store.outbox.claim({ owner: 'relay-b', limit: 10, leaseMs: 60_000 })
        assert.deepEqual(
          second.map((e) => [e.type, e.sequence, e.position]),
          [['user.disabled', 2, 0]],
        )
        assert.equal(await store.outbox.release('relay-b', [second[0]!.id]), 1)
        const again = await store.outbox.claim({ owner: 'relay-c', limit: 10, leaseMs: 60_000 })
        assert.deepEqual(
          again.map((e) => e.id),
          [second[0]!.id],
        )
        await store.outbox.acknowledge('relay-c', [again[0]!.id])
        const third = await store.outbox.claim({ owner: 'relay-c', limit: 10, leaseMs: 60_000 })
        assert.deepEqual(
          third.map((e) => [e.type, e.position]),
          [['user.noted', 1]],
        )
        await store.outbox.acknowledge('relay-c', [third[0]!.id])
        assert.deepEqual(
          (await store.outbox.listForAggregate(tenantId, userId)).map((e) => [
            e.sequence,
            e.position,
            e.status,
          ]),
          [
            [1, 0, 'published'],
            [2, 0, 'published'],
            [2, 1, 'published'],
          ],
        )
      })

      test('an expired lease can be claimed by another relay; the late owner changes nothing', async () => {
        await drain()
        const tenantId = uniq('t_lease')
        await seedUser(store, tenantId)
        const [event] = await store.outbox.claim({ owner: 'slow', limit: 10, leaseMs: 50 })
        assert.ok(event)
        await sleep(120)
        const [taken] = await store.outbox.claim({ owner: 'fast', limit: 10, leaseMs: 60_000 })
        assert.equal(taken?.id, event.id)
        assert.deepEqual(await store.outbox.acknowledge('slow', [event.id]), [])
        assert.equal(
          await store.outbox.fail({
            owner: 'slow',
            eventId: event.id,
            error: 'late',
            maxAttempts: 3,
            backoffMs: 0,
          }),
          null,
        )
        assert.deepEqual(await store.outbox.acknowledge('fast', [event.id]), [event.id])
      })

      test('fail backs off, goes dead at maxAttempts and blocks the aggregate until retried or discarded', async () => {
        await drain()
        const tenantId = uniq('t_dead')
        const { userId } = await seedUser(store, tenantId)
        await store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
          tx.enqueue({ type: 'user.next', userId })
        })
        const claim = () => store.outbox.claim({ owner: 'r', limit: 10, leaseMs: 60_000 })
        const [e1] = await claim()
        assert.ok(e1)
        assert.equal(
          await store.outbox.fail({
            owner: 'r',
            eventId: e1.id,
            error: 'x'.repeat(600),
            maxAttempts: 2,
            backoffMs: 150,
          }),
          'pending',
        )
        const failed = await store.outbox.get(e1.id)
        assert.equal(failed?.attempts, 1)
        assert.equal(failed?.lastError?.length, 500)
        assert.ok(Date.parse(failed!.availableAt) > Date.now() + 50)
        assert.deepEqual(await claim(), [], 'backing off, and the next event is blocked')
        await sleep(200)
        const [retry] = await claim()
        assert.equal(retry?.id, e1.id)
        assert.equal(
          await store.outbox.fail({
            owner: 'r',
            eventId: e1.id,
            error: 'again',
            maxAttempts: 2,
            backoffMs: 0,
          }),
          'dead',
        )
        assert.deepEqual(await claim(), [], 'a dead event blocks its aggregate')
        assert.deepEqual(await store.outbox.lag().then((l) => [l.dead >= 1, l.pending >= 1]), [true, true])
        assert.equal(await store.outbox.retryDead(e1.id), true)
        assert.equal(await store.outbox.retryDead(e1.id), false)
        const [revived] = await claim()
        assert.equal(revived?.attempts, 0)
        assert.equal(
          await store.outbox.fail({ owner: 'r', eventId: e1.id, error: 'x', maxAttempts: 1, backoffMs: 0 }),
          'dead',
        )
        assert.equal(await store.outbox.discardDead(e1.id), true)
        assert.equal((await store.outbox.get(e1.id))?.status, 'discarded')
        const [next] = await claim()
        assert.equal(next?.type, 'user.next')
        await store.outbox.acknowledge('r', [next!.id])
        await sleep(20)
        assert.ok((await store.outbox.purgePublished(0, 100_000)) >= 1)
        assert.equal(await store.outbox.get(next!.id), null)
        const lag = await store.outbox.lag()
        assert.equal(lag.pending, 0)
        assert.equal(lag.oldestPendingAgeMs, 0)
      })

      test('concurrent claims never return the same event', async () => {
        await drain()
        const tenantId = uniq('t_cc')
        for (let i = 0; i < 20; i++) await seedUser(store, tenantId)
        const claims = await Promise.all(
          ['r1', 'r2', 'r3', 'r4'].map((owner) => store.outbox.claim({ owner, limit: 8, leaseMs: 60_000 })),
        )
        const ids = claims.flat().map((e) => e.id)
        assert.equal(new Set(ids).size, ids.length)
        assert.equal(ids.length, 20)
      })
    })

    test('a closed store refuses work with STORE_CLOSED', async () => {
      const other = await db.store()
      await other.close()
      await assert.rejects(other.readiness(), (e) => isUserEngineError(e, 'STORE_CLOSED'))
      await assert.rejects(other.getUser('t', 'u'), (e) => isUserEngineError(e, 'STORE_CLOSED'))
    })
  })
}
