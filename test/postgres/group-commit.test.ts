import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { isUserEngineError } from '../../src/domain/errors.js'
import { newId } from '../../src/domain/ids.js'
import type { CommitPlan } from '../../src/store/commit-plan.js'
import type { SqlDriver } from '../../src/store/postgres/driver/driver.js'
import { GroupCommitter, lockKeysOf, MAX_GROUP_COMMIT_BATCH } from '../../src/store/postgres/group-commit.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { createPgliteStore } from '../../src/store/postgres/pglite.js'
import {
  COMMIT_BATCH_UNLESS_SUSPENDED,
  COMMIT_UNLESS_SUSPENDED,
  SERVER_STATEMENTS_IN_FLIGHT,
} from '../../src/store/postgres/postgres-commits.js'
import type { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { SQL } from '../../src/store/postgres/sql.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import type { UnitOfWork } from '../../src/store/unit-of-work.js'
import { SQL_ADAPTERS, type TestDb } from '../support/adapters.js'

/** What the store sent: each group commit statement as the marks of its units, and each single commit's mark. */
interface Sent {
  batches: string[][]
  singles: string[]
}

/** While set, a blocker's commit statement waits for it before it reaches the database (`together`). */
let blockersHeld: Promise<void> | undefined

/** Records every commit statement; a unit's mark is its first audit record's data.mark. */
function recording(sent: Sent) {
  return (inner: SqlDriver): SqlDriver => ({
    kind: inner.kind,
    async query(sql, params) {
      if (sql === SQL.commitBatch || sql === COMMIT_BATCH_UNLESS_SUSPENDED) {
        const units = JSON.parse(String(params?.[0])) as Array<{ audit: Array<{ data: { mark?: string } }> }>
        const marks = units.map((u) => String(u.audit[0]?.data.mark))
        sent.batches.push(marks)
        if (marks.some((m) => m.startsWith('blocker-'))) await blockersHeld
      } else if (sql === SQL.commit || sql === COMMIT_UNLESS_SUSPENDED) {
        const audit = JSON.parse(String(params?.[2])) as Array<{ data: { mark?: string } }>
        const mark = String(audit[0]?.data.mark)
        sent.singles.push(mark)
        if (mark.startsWith('blocker-')) await blockersHeld
      }
      return inner.query(sql, params)
    },
    exec: (sql) => inner.exec(sql),
    session: (fn) => inner.session(fn),
    close: () => inner.close(),
  })
}

/** A unit that writes a new user with an audit record and an event, marked; `more` adds writes. */
const newUser =
  (mark: string, userId = newId('usr'), more?: (tx: UnitOfWork, userId: string) => void) =>
  async (tx: UnitOfWork) => {
    tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
    more?.(tx, userId)
    tx.appendAudit({ action: 'test.group', userId, data: { mark } })
    tx.enqueue({ type: 'test.group', userId, payload: { mark } })
  }

/** A unit that moves an existing user from `version`, marked. */
const bumpUser = (mark: string, userId: string, version: number) => async (tx: UnitOfWork) => {
  tx.putUser({ id: userId, status: 'active' }, { expectedVersion: version })
  tx.appendAudit({ action: 'test.group', userId, data: { mark } })
  tx.enqueue({ type: `test.step.${mark}`, userId, payload: { mark } })
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

/**
 * Blockers, which touch nothing the units touch, take every statement slot (SERVER_STATEMENTS_IN_FLIGHT on a
 * server, one on PGlite) and are held there (`blockersHeld`) while the units start in one turn; the units'
 * commits therefore queue together, and go as one statement when the blockers are let go. `tenantOf` gives
 * each unit's tenant (default `tenantId`).
 */
async function together(
  store: PostgresUserEngineStore,
  tenantId: string,
  units: ReadonlyArray<(tx: UnitOfWork) => Promise<void>>,
  tenantOf: (i: number) => string = () => tenantId,
) {
  let letGo = () => {}
  blockersHeld = new Promise<void>((resolve) => {
    letGo = resolve
  })
  try {
    const blockers = Array.from({ length: SERVER_STATEMENTS_IN_FLIGHT }, (_, i) =>
      store.transaction(tenantId, newUser(`blocker-${i}`)),
    )
    await turn()
    const running = units.map((fn, i) => store.transaction(tenantOf(i), fn))
    const settled = Promise.allSettled([...blockers, ...running])
    await turn()
    letGo()
    return (await settled).slice(blockers.length)
  } finally {
    letGo()
    blockersHeld = undefined
  }
}

const reasonOf = (r: PromiseSettledResult<unknown>) => {
  assert.equal(r.status, 'rejected', 'the unit should have failed')
  return (r as PromiseRejectedResult).reason
}

async function newTenant(store: PostgresUserEngineStore): Promise<string> {
  const tenantId = newId('tnt')
  await store.transaction(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name: 'T', status: 'active' }, { mustNotExist: true })
  })
  return tenantId
}

const emailOf = (tx: UnitOfWork, userId: string, value: string, id = newId('idn')) =>
  tx.putIdentifier({ id, userId, kind: 'email', value, verified: false }, { mustNotExist: true })

for (const adapter of SQL_ADAPTERS) {
  describe(`group commit on ${adapter.name}`, { skip: await adapter.skip() }, () => {
    let db: TestDb
    let store: PostgresUserEngineStore
    let solo: PostgresUserEngineStore
    const sent: Sent = { batches: [], singles: [] }
    before(async () => {
      db = await adapter.database(LATEST_SCHEMA_VERSION)
      store = await db.store({ groupCommit: true, wrap: recording(sent) })
      solo = await db.store({ groupCommit: false })
    })
    after(() => db.drop())

    const batchWith = (mark: string) => sent.batches.find((b) => b.includes(mark))

    test('a failing unit in a batch writes nothing, gets the error it gets alone, and its neighbours commit', async () => {
      const tenantId = await newTenant(store)
      const taken = `taken-${newId('x')}@example.com`
      await store.transaction(
        tenantId,
        newUser('seed', undefined, (tx, id) => emailOf(tx, id, taken)),
      )
      const stale = newId('usr')
      await store.transaction(tenantId, newUser('seed-2', stale))
      // The failing units' ids, reused below for the same units committed alone.
      const dupUser = newId('usr')
      const dupIdentifier = newId('idn')
      const [a, b, c, d] = await together(store, tenantId, [
        newUser('a', undefined, (tx, id) => emailOf(tx, id, `a-${newId('x')}@example.com`)),
        newUser('b', dupUser, (tx, id) => emailOf(tx, id, taken, dupIdentifier)),
        bumpUser('c', stale, 7),
        newUser('d'),
      ])
      assert.deepEqual(
        ['a', 'b', 'c', 'd'].map((m) => batchWith('a')?.includes(m)),
        [true, true, true, true],
        `one statement: ${JSON.stringify(sent.batches)}`,
      )
      assert.equal(a?.status, 'fulfilled')
      assert.equal(d?.status, 'fulfilled')
      const duplicate = reasonOf(b!)
      const conflict = reasonOf(c!)
      assert.ok(isUserEngineError(duplicate, 'DUPLICATE_IDENTIFIER'), String(duplicate))
      assert.ok(isUserEngineError(conflict, 'VERSION_CONFLICT'), String(conflict))

      // Nothing of b or c was written: no user, identifier, audit record or event, no version bump.
      assert.equal(await store.getUser(tenantId, dupUser), null)
      assert.equal((await store.getUser(tenantId, stale))?.version, 1)
      const marks = (await store.listAudit(tenantId, { limit: 100 })).items.map((r) => r.data.mark)
      assert.deepEqual(
        marks.filter((m) => m === 'b' || m === 'c'),
        [],
      )
      assert.deepEqual(
        ['a', 'd'].map((m) => marks.includes(m)),
        [true, true],
      )
      const events = await store.outbox.listForAggregate(tenantId, dupUser)
      assert.equal(events.length, 0)
      assert.equal((await store.outbox.listForAggregate(tenantId, stale)).length, 1)

      // The same units committed alone fail with the same code, message and details.
      const alone = await Promise.allSettled([
        solo.transaction(
          tenantId,
          newUser('b', dupUser, (tx, id) => emailOf(tx, id, taken, dupIdentifier)),
        ),
        solo.transaction(tenantId, bumpUser('c', stale, 7)),
      ])
      for (const [grouped, single] of [
        [duplicate, reasonOf(alone[0])],
        [conflict, reasonOf(alone[1])],
      ] as const) {
        const g = grouped as { code: string; message: string; details: unknown }
        const s = single as { code: string; message: string; details: unknown }
        assert.deepEqual([g.code, g.message, g.details], [s.code, s.message, s.details])
      }
    })

    test('a unit refusing a suspended tenant is TENANT_SUSPENDED in a batch as alone, writes nothing, and its neighbours commit', async () => {
      const active = await newTenant(store)
      const suspended = await newTenant(store)
      await store.transaction(suspended, async (tx) => {
        const t = (await tx.getTenant())!
        tx.putTenant({ id: suspended, name: t.name, status: 'suspended' }, { expectedVersion: t.version })
      })
      const taken = `taken-${newId('x')}@example.com`
      await store.transaction(
        active,
        newUser('seed', undefined, (tx, id) => emailOf(tx, id, taken)),
      )
      const refusing =
        (unit: (tx: UnitOfWork) => Promise<void>) =>
        async (tx: UnitOfWork): Promise<void> => {
          assert.equal(tx.refuseSuspendedTenant?.(), true)
          await unit(tx)
        }
      const refused = newId('usr')
      const units: Array<[string, (tx: UnitOfWork) => Promise<void>]> = [
        [active, refusing(newUser('sa'))],
        [suspended, refusing(newUser('sb', refused))],
        [active, refusing(newUser('sc', undefined, (tx, id) => emailOf(tx, id, taken)))],
        [suspended, newUser('sd')],
        [active, refusing(newUser('se'))],
      ]
      const results = await together(
        store,
        active,
        units.map(([, fn]) => fn),
        (i) => units[i]![0],
      )
      assert.ok(
        ['sa', 'sb', 'sc', 'sd', 'se'].every((m) => batchWith('sa')?.includes(m)),
        `one statement: ${JSON.stringify(sent.batches)}`,
      )
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled'],
      )
      const inBatch = reasonOf(results[1]!) as { code: string; message: string; details: unknown }
      assert.ok(isUserEngineError(inBatch, 'TENANT_SUSPENDED'), String(inBatch))
      assert.ok(isUserEngineError(reasonOf(results[2]!), 'DUPLICATE_IDENTIFIER'))
      // Nothing of the refused unit was written; a unit that did not ask still commits (the base contract).
      assert.equal(await store.getUser(suspended, refused), null)
      const marks = (await store.listAudit(suspended, { limit: 100 })).items.map((r) => r.data.mark)
      assert.deepEqual(marks, ['sd'])
      assert.equal((await store.outbox.listForAggregate(suspended, refused)).length, 0)
      // Alone, with group commit off: the same code, message and details.
      const alone = reasonOf(
        (await Promise.allSettled([solo.transaction(suspended, refusing(newUser('sb', refused)))]))[0]!,
      ) as { code: string; message: string; details: unknown }
      assert.deepEqual(
        [inBatch.code, inBatch.message, inBatch.details],
        [alone.code, alone.message, alone.details],
      )
      assert.equal(await solo.getUser(suspended, refused), null)
    })

    test('a suspension earlier in a batch refuses the registrations after it, as one commit after another would', async () => {
      const tenantId = await newTenant(store)
      const refused = newId('usr')
      // No read first, so that its commit queues before the units after it (newTenant wrote version 1).
      const suspend = async (tx: UnitOfWork) => {
        tx.putTenant({ id: tenantId, name: 'T', status: 'suspended' }, { expectedVersion: 1 })
        tx.appendAudit({ action: 'test.group', data: { mark: 'suspend' } })
      }
      // Not async itself, so that its commit queues in the same turn as its neighbours'.
      const refusing = (tx: UnitOfWork) => {
        assert.equal(tx.refuseSuspendedTenant?.(), true)
        return newUser('after', refused)(tx)
      }
      const results = await together(store, tenantId, [suspend, refusing, newUser('unasked')])
      assert.deepEqual(
        batchWith('suspend'),
        ['suspend', 'after', 'unasked'],
        `one statement, in that order: ${JSON.stringify(sent.batches)}`,
      )
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      )
      assert.ok(isUserEngineError(reasonOf(results[1]!), 'TENANT_SUSPENDED'), String(reasonOf(results[1]!)))
      assert.equal(await store.getUser(tenantId, refused), null)
      const marks = (await store.listAudit(tenantId, { limit: 100 })).items.map((r) => r.data.mark)
      assert.deepEqual(
        marks.filter((m) => m !== undefined && !String(m).startsWith('blocker-')),
        ['suspend', 'unasked'],
      )
    })

    test('on schema 12, which predates the batch refusing itself, a refusing unit of a suspended tenant is still TENANT_SUSPENDED', async () => {
      const old = await adapter.database(12)
      try {
        const oldSent: Sent = { batches: [], singles: [] }
        const statements: string[] = []
        const oldStore = await old.store({
          groupCommit: true,
          requireLatestSchema: false,
          wrap: (inner) => {
            const recorded = recording(oldSent)(inner)
            return {
              ...recorded,
              query: (sql, params) => {
                statements.push(sql)
                return recorded.query(sql, params)
              },
            }
          },
        })
        const active = await newTenant(oldStore)
        const suspended = await newTenant(oldStore)
        await oldStore.transaction(suspended, async (tx) => {
          const t = (await tx.getTenant())!
          tx.putTenant({ id: suspended, name: t.name, status: 'suspended' }, { expectedVersion: t.version })
        })
        const refused = newId('usr')
        const refusing = (mark: string, userId?: string) => async (tx: UnitOfWork) => {
          assert.equal(tx.refuseSuspendedTenant?.(), true)
          await newUser(mark, userId)(tx)
        }
        const results = await together(oldStore, active, [refusing('o1'), refusing('o2', refused)], (i) =>
          i === 0 ? active : suspended,
        )
        assert.ok(
          oldSent.batches.some((b) => b.includes('o1') && b.includes('o2')),
          `one statement: ${JSON.stringify(oldSent.batches)}`,
        )
        assert.ok(
          statements.includes(COMMIT_BATCH_UNLESS_SUSPENDED),
          'the batch went through the tenant read',
        )
        assert.equal(results[0]?.status, 'fulfilled')
        assert.ok(isUserEngineError(reasonOf(results[1]!), 'TENANT_SUSPENDED'))
        assert.equal(await oldStore.getUser(suspended, refused), null)
      } finally {
        await old.drop()
      }
    })

    test('units of one user in one batch apply in order, and their events keep that order', async () => {
      const tenantId = await newTenant(store)
      const userId = newId('usr')
      await store.transaction(tenantId, newUser('seed', userId))
      const results = await together(store, tenantId, [
        bumpUser('s1', userId, 1),
        bumpUser('s2', userId, 2),
        bumpUser('s3', userId, 3),
      ])
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'fulfilled', 'fulfilled'],
      )
      assert.ok(
        ['s1', 's2', 's3'].every((m) => batchWith('s1')?.includes(m)),
        `one statement: ${JSON.stringify(sent.batches)}`,
      )
      assert.equal((await store.getUser(tenantId, userId))?.version, 4)
      const events = await store.outbox.listForAggregate(tenantId, userId)
      assert.deepEqual(
        events.map((e) => [e.type, e.sequence]),
        [
          ['test.group', 1],
          ['test.step.s1', 2],
          ['test.step.s2', 3],
          ['test.step.s3', 4],
        ],
      )
      // A relay claims them in that order.
      const claimed = await store.outbox.claim({
        owner: 'gc-test',
        limit: 500,
        leaseMs: 60_000,
        perAggregate: 10,
      })
      assert.deepEqual(
        claimed.filter((e) => e.aggregateId === userId).map((e) => e.type),
        ['test.group', 'test.step.s1', 'test.step.s2', 'test.step.s3'],
      )
    })

    test('a lone commit is one single statement; more than the bound go as several batches', async () => {
      const tenantId = await newTenant(store)
      const singles = sent.singles.length
      const batches = sent.batches.length
      await store.transaction(tenantId, newUser('lone'))
      assert.deepEqual(sent.singles.slice(singles), ['lone'])
      assert.equal(sent.batches.length, batches)

      const many = Array.from({ length: MAX_GROUP_COMMIT_BATCH + 10 }, (_, i) => newUser(`bound-${i}`))
      const results = await together(store, tenantId, many)
      assert.ok(results.every((r) => r.status === 'fulfilled'))
      const mine = sent.batches.filter((b) => b.some((m) => m.startsWith('bound-')))
      assert.ok(mine.length >= 2, JSON.stringify(mine.map((b) => b.length)))
      assert.ok(mine.every((b) => b.length <= MAX_GROUP_COMMIT_BATCH))
      // Arrival order is kept across batches.
      assert.deepEqual(
        mine.flat().filter((m) => m.startsWith('bound-')),
        many.map((_, i) => `bound-${i}`),
      )
    })

    test('groupCommit: false sends every commit on its own', async () => {
      const off: Sent = { batches: [], singles: [] }
      const s = await db.store({ groupCommit: false, wrap: recording(off) })
      const tenantId = await newTenant(s)
      const results = await together(s, tenantId, [newUser('x1'), newUser('x2'), newUser('x3')])
      assert.ok(results.every((r) => r.status === 'fulfilled'))
      assert.deepEqual(off.batches, [])
      // The tenant, the blockers and the three units.
      assert.equal(off.singles.length, 1 + SERVER_STATEMENTS_IN_FLIGHT + 3)
      assert.deepEqual(
        off.singles.filter((m) => m.startsWith('x')),
        ['x1', 'x2', 'x3'],
      )
    })

    test('a unit the batch reports as a deadlock victim (rolled back alone) is sent again alone, once', async () => {
      // The driver plays the deadlock: it leaves the unit marked d2 out of the batch it sends and reports it
      // with SQLSTATE 40P01, as user_engine_commit_batch does for a unit Postgres chose as the victim.
      const seen: Sent = { batches: [], singles: [] }
      const victim = (inner: SqlDriver): SqlDriver => {
        const recorded = recording(seen)(inner)
        return {
          ...recorded,
          async query(sql, params) {
            if (sql !== SQL.commitBatch) return recorded.query(sql, params)
            const units = JSON.parse(String(params?.[0])) as Array<{
              audit: Array<{ data: { mark?: string } }>
            }>
            const at = units.findIndex((u) => u.audit[0]?.data.mark === 'd2')
            if (at < 0) return recorded.query(sql, params)
            seen.batches.push(units.map((u) => String(u.audit[0]?.data.mark)))
            const result = await inner.query(sql, [JSON.stringify(units.filter((_, i) => i !== at))])
            assert.equal(result.rows.length, 0)
            const row = { unit_index: at, sql_state: '40P01', error_detail: '', constraint_name: '' }
            return { rows: [{ ...row, table_name: '', column_name: '' }] as never[], rowCount: 1 }
          },
        }
      }
      const s = await db.store({ groupCommit: true, wrap: victim })
      const tenantId = await newTenant(s)
      const ids = [newId('usr'), newId('usr'), newId('usr')]
      const singles = seen.singles.length
      const results = await together(s, tenantId, [
        newUser('d1', ids[0]),
        newUser('d2', ids[1]),
        newUser('d3', ids[2]),
      ])
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'fulfilled', 'fulfilled'],
      )
      assert.ok(
        seen.batches.some((b) => b.includes('d2')),
        JSON.stringify(seen.batches),
      )
      // d2 alone, once; its neighbours only in the batch.
      assert.deepEqual(
        seen.singles.slice(singles).filter((m) => m.startsWith('d')),
        ['d2'],
      )
      for (const id of ids) assert.ok(await s.getUser(tenantId, id))
      const marks = (await s.listAudit(tenantId, { limit: 100 })).items.map((r) => r.data.mark)
      assert.deepEqual(
        ['d1', 'd2', 'd3'].map((m) => marks.filter((x) => x === m).length),
        [1, 1, 1],
      )
    })

    test('USER_ENGINE_GROUP_COMMIT decides when the option is unset: off, on, anything else VALIDATION', async () => {
      const before = process.env.USER_ENGINE_GROUP_COMMIT
      try {
        process.env.USER_ENGINE_GROUP_COMMIT = 'off'
        const off: Sent = { batches: [], singles: [] }
        const s = await db.store({ wrap: recording(off) })
        const tenantId = await newTenant(s)
        await together(s, tenantId, [newUser('e1'), newUser('e2'), newUser('e3')])
        assert.deepEqual(off.batches, [])
        // The option wins over the variable.
        const on: Sent = { batches: [], singles: [] }
        const forced = await db.store({ groupCommit: true, wrap: recording(on) })
        await together(forced, tenantId, [newUser('e4'), newUser('e5'), newUser('e6')])
        assert.deepEqual(
          on.batches.filter((b) => b.some((m) => m.startsWith('e'))),
          [['e4', 'e5', 'e6']],
        )
        process.env.USER_ENGINE_GROUP_COMMIT = 'sometimes'
        await assert.rejects(db.store(), (e) => isUserEngineError(e, 'VALIDATION'))
      } finally {
        if (before === undefined) delete process.env.USER_ENGINE_GROUP_COMMIT
        else process.env.USER_ENGINE_GROUP_COMMIT = before
      }
    })

    test('close() sends the commits already queued before it closes', async () => {
      const s = await db.store({ groupCommit: true })
      const tenantId = await newTenant(s)
      const ids = Array.from({ length: 6 }, () => newId('usr'))
      const pending = ids.map((id, i) => s.transaction(tenantId, newUser(`close-${i}`, id)))
      // Every commit is queued after a few microtasks; close() comes after them.
      await new Promise((r) => setImmediate(r))
      await s.close()
      const results = await Promise.allSettled(pending)
      assert.deepEqual(
        results.map((r) => r.status),
        ids.map(() => 'fulfilled'),
      )
      for (const id of ids) assert.ok(await store.getUser(tenantId, id))
    })

    if (adapter.name === 'postgres') {
      /** Holds a row lock on a user, and finds the backend it blocks (the batch's, by its lock). */
      async function lockUser(tenantId: string, userId: string) {
        const holder = new pg.Client({ connectionString: db.url! })
        await holder.connect()
        await holder.query('BEGIN')
        await holder.query(
          `SELECT 1 FROM user_engine_records WHERE tenant_id = $1 AND record_type = 'user' AND record_id = $2 FOR UPDATE`,
          [tenantId, userId],
        )
        return {
          holder,
          // pg_stat_activity's query text may still name the connection's previous statement while a prepared
          // one runs, so the waiting backend is found by its lock.
          async blocked(): Promise<number> {
            for (let i = 0; i < 500; i++) {
              const { rows } = await holder.query<{ pid: number }>(
                'SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))',
              )
              if (rows[0]) return rows[0].pid
              await new Promise((r) => setTimeout(r, 20))
            }
            throw new Error('nothing waited on the row lock')
          },
        }
      }

      test('a batch canceled as a whole applied nothing: each unit is sent again alone, once', async () => {
        const tenantId = await newTenant(store)
        const locked = newId('usr')
        await store.transaction(tenantId, newUser('locked-c', locked))
        const { holder, blocked } = await lockUser(tenantId, locked)
        try {
          const ids = [newId('usr'), newId('usr')]
          const singles = sent.singles.length
          const running = together(store, tenantId, [
            bumpUser('c1', locked, 1),
            newUser('c2', ids[0]),
            newUser('c3', ids[1]),
          ])
          const pid = await blocked()
          // A cancel is not caught per unit: the statement fails as a whole and the server rolls it back.
          await holder.query('SELECT pg_cancel_backend($1)', [pid])
          // c1, sent again alone, waits for the lock again: release it.
          await blocked()
          await holder.query('ROLLBACK')
          const results = await running
          assert.deepEqual(
            results.map((r) => r.status),
            ['fulfilled', 'fulfilled', 'fulfilled'],
          )
          assert.deepEqual(batchWith('c1'), ['c1', 'c2', 'c3'])
          assert.equal(sent.batches.filter((b) => b.includes('c1')).length, 1)
          assert.deepEqual(
            sent.singles.slice(singles).filter((m) => m.startsWith('c')),
            ['c1', 'c2', 'c3'],
            'each unit once alone, in order',
          )
          assert.equal((await store.getUser(tenantId, locked))?.version, 2)
          const marks = (await store.listAudit(tenantId, { limit: 100 })).items.map((r) => r.data.mark)
          assert.deepEqual(
            ['c1', 'c2', 'c3'].map((m) => marks.filter((x) => x === m).length),
            [1, 1, 1],
          )
        } finally {
          await holder.end()
        }
      })

      test('a connection killed mid-batch: every caller in it gets STORE_UNAVAILABLE, outcome unknown', async () => {
        const tenantId = await newTenant(store)
        const locked = newId('usr')
        await store.transaction(tenantId, newUser('locked', locked))
        // The batch's first unit writes this user: the row lock holds the batch before it commits.
        const { holder, blocked } = await lockUser(tenantId, locked)
        try {
          const ids = ['k2', 'k3', 'k4'].map(() => newId('usr'))
          const running = together(store, tenantId, [
            bumpUser('k1', locked, 1),
            ...ids.map((id, i) => newUser(`k${i + 2}`, id)),
          ])
          const batchPid = await blocked()
          await holder.query('SELECT pg_terminate_backend($1)', [batchPid])
          const results = await running
          for (const r of results) {
            const error = reasonOf(r) as Error
            assert.ok(isUserEngineError(error, 'STORE_UNAVAILABLE'), String(error))
            assert.match(error.message, /may or may not have been applied/)
            // Where the connection went, when the driver knows it (the server: host and port; PGlite: none).
            const {
              host: _host,
              port: _port,
              ...rest
            } = (error as { details?: Record<string, unknown> }).details!
            assert.deepEqual(rest, { outcome: 'unknown' })
          }
          assert.deepEqual(batchWith('k1'), ['k1', 'k2', 'k3', 'k4'])
          await holder.query('ROLLBACK')
          // Killed before its commit: in fact nothing was applied, and nothing was sent again.
          assert.equal((await store.getUser(tenantId, locked))?.version, 1)
          for (const id of ids) assert.equal(await store.getUser(tenantId, id), null)
          assert.equal(sent.batches.filter((b) => b.includes('k1')).length, 1)
          // The store goes on committing.
          await store.transaction(tenantId, newUser('after-kill'))
        } finally {
          await holder.end()
        }
      })
    }
  })
}

test('groupCommit must be a boolean on both factories, checked before anything connects', async () => {
  await assert.rejects(
    createNodePostgresStore({
      connectionString: 'postgres://nobody@127.0.0.1:1/none',
      groupCommit: 'yes' as never,
    }),
    (e) => isUserEngineError(e, 'VALIDATION') && /groupCommit/.test(e.message),
  )
  await assert.rejects(
    createPgliteStore({ groupCommit: 1 as never }),
    (e) => isUserEngineError(e, 'VALIDATION') && /groupCommit/.test(e.message),
  )
})

describe('GroupCommitter (no database)', () => {
  const plan = (tenantId: string, id: string): CommitPlan => ({
    tenantId,
    now: new Date(0).toISOString(),
    writes: [{ op: 'insert', type: 'user', id, userId: id, payload: {} }],
    audit: [],
    events: [],
  })

  /** A sender whose statements finish when the test says; records what each carried. */
  function manualSender() {
    const statements: Array<{ ids: string[]; finish: () => void }> = []
    const start = (ids: string[]) =>
      new Promise<void>((resolve) => {
        statements.push({ ids, finish: resolve })
      })
    return {
      statements,
      sender: {
        one: (p: CommitPlan) => start([p.writes[0]!.id]),
        many: async (ps: readonly CommitPlan[]) => {
          await start(ps.map((p) => p.writes[0]!.id))
          return ps.map(() => null)
        },
      },
    }
  }
  const tick = () => new Promise((r) => setImmediate(r))

  test('a plan sharing a row with a statement in flight waits for it, and keeps its order', async () => {
    const { statements, sender } = manualSender()
    const committer = new GroupCommitter(sender, { maxInFlight: 2 })
    const done = [committer.commit(plan('t', 'x'))]
    await tick()
    done.push(committer.commit(plan('t', 'y')))
    await tick()
    done.push(
      committer.commit(plan('t', 'x')),
      committer.commit(plan('t', 'z')),
      committer.commit(plan('t', 'y')),
    )
    await tick()
    assert.deepEqual(
      statements.map((s) => s.ids),
      [['x'], ['y']],
    )
    statements[0]!.finish()
    await tick()
    // x is free now, y is still in flight: the second x and z go, the second y waits.
    assert.deepEqual(statements[2]?.ids, ['x', 'z'])
    statements[1]!.finish()
    await tick()
    assert.deepEqual(statements[3]?.ids, ['y'])
    for (const s of statements.slice(2)) s.finish()
    await Promise.all(done)
  })

  test('callers resumed by one answer commit again as one statement, not the first alone', async () => {
    const { statements, sender } = manualSender()
    const committer = new GroupCommitter(sender, { maxInFlight: 1 })
    const caller = async (name: string) => {
      await committer.commit(plan('t', `${name}1`))
      await committer.commit(plan('t', `${name}2`))
    }
    const done = Promise.all(['a', 'b', 'c'].map(caller))
    await tick()
    assert.deepEqual(
      statements.map((s) => s.ids),
      [['a1', 'b1', 'c1']],
    )
    statements[0]!.finish()
    await tick()
    assert.deepEqual(statements[1]?.ids, ['a2', 'b2', 'c2'])
    statements[1]!.finish()
    await done
    // A lone commit still goes without waiting for a timer: within one turn of the event loop.
    const lone = committer.commit(plan('t', 'lone'))
    await tick()
    assert.deepEqual(statements[2]?.ids, ['lone'])
    statements[2]!.finish()
    await lone
  })

  test('commits gathered in one turn are shared among the free slots, one key never in two at once', async () => {
    const { statements, sender } = manualSender()
    const committer = new GroupCommitter(sender, { maxInFlight: 2 })
    const done = ['a', 'b', 'c', 'd', 'e'].map((id) => committer.commit(plan('t', id)))
    await tick()
    assert.deepEqual(
      statements.map((s) => s.ids),
      [
        ['a', 'b', 'c'],
        ['d', 'e'],
      ],
    )
    for (const s of statements) s.finish()
    await Promise.all(done)
    // x twice: the second x may not go beside the first, so it waits for the first's answer.
    const again = ['x', 'y', 'x'].map((id) => committer.commit(plan('t', id)))
    await tick()
    assert.deepEqual(
      statements.slice(2).map((s) => s.ids),
      [['x', 'y']],
    )
    statements[2]!.finish()
    await tick()
    assert.deepEqual(statements[3]?.ids, ['x'])
    statements[3]!.finish()
    await Promise.all(again)
  })

  test('drain waits for a commit whose send is still scheduled', async () => {
    const { statements, sender } = manualSender()
    const committer = new GroupCommitter(sender, { maxInFlight: 1 })
    const committed = committer.commit(plan('t', 'q'))
    let drained = false
    const draining = committer.drain().then(() => {
      drained = true
    })
    await tick()
    assert.equal(drained, false)
    statements[0]!.finish()
    await Promise.all([committed, draining])
    assert.equal(drained, true)
  })

  test('the keys name records and claimed identifier values, per tenant', () => {
    const p: CommitPlan = {
      tenantId: 't1',
      now: new Date(0).toISOString(),
      writes: [
        { op: 'insert', type: 'identifier', id: 'i1', userId: 'u', payload: { kind: 'email', value: 'a@b' } },
        { op: 'delete', type: 'identifier', id: 'i2', userId: 'u', expectedVersion: 1 },
      ],
      audit: [],
      events: [],
    }
    assert.deepEqual(lockKeysOf(p), [
      'r\u0000t1\u0000identifier\u0000i1',
      'i\u0000t1\u0000email\u0000a@b',
      'r\u0000t1\u0000identifier\u0000i2',
    ])
  })
})
