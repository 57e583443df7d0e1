// Migration 0012's set-based group commit against applying the same units one by one: every batch leaves the
// same records, audit order and outbox rows, and the same failures per unit, whether the set-based path took
// it or refused it (and the batch went unit by unit).
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import type { SqlDriver } from '../../src/store/postgres/driver/driver.js'
import { sqlState } from '../../src/store/postgres/driver/errors.js'
import { SQL } from '../../src/store/postgres/sql.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { SQL_ADAPTERS, type TestDb } from '../support/adapters.js'

interface Write {
  op: string
  type: string
  id: string
  userId: string | null
  payload?: Record<string, unknown>
  expectedVersion?: number
}

interface Unit {
  tenantId: string
  now: string
  writes: Write[]
  audit: Array<Record<string, unknown>>
  events: Array<Record<string, unknown>>
}

let clock = Date.parse('2026-11-30T10:00:00.000Z')
function tick(): string {
  clock += 1000
  return new Date(clock).toISOString()
}
let sequence = 0

function unit(tenantId: string, mark: string, writes: Write[], events = 1): Unit {
  const userId = writes.find((w) => w.userId !== null)?.userId ?? null
  return {
    tenantId,
    now: tick(),
    writes,
    audit: [
      {
        id: newId('aud'),
        action: 'test.set',
        userId,
        actorId: null,
        requestId: `req-${mark}`,
        ip: null,
        userAgent: null,
        data: { mark },
      },
      {
        id: newId('aud'),
        action: 'test.set.second',
        userId,
        actorId: null,
        requestId: null,
        ip: null,
        userAgent: null,
        data: { mark },
      },
    ],
    events: Array.from({ length: events }, (_, position) => ({
      id: newId('evt'),
      aggregateType: 'user',
      aggregateId: userId ?? tenantId,
      sequence: position === 0 ? ++sequence : sequence,
      position,
      type: `test.set.${mark}`,
      payload: { mark },
    })),
  }
}

const insert = (
  type: string,
  id: string,
  userId: string | null,
  payload: Record<string, unknown>,
): Write => ({
  op: 'insert',
  type,
  id,
  userId,
  payload,
})
const update = (
  type: string,
  id: string,
  userId: string | null,
  expectedVersion: number,
  payload: Record<string, unknown>,
): Write => ({ op: 'update', type, id, userId, expectedVersion, payload })
const remove = (type: string, id: string, userId: string | null, expectedVersion: number): Write => ({
  op: 'delete',
  type,
  id,
  userId,
  expectedVersion,
})
const email = (id: string, userId: string, value: string, verified = false) =>
  insert('identifier', id, userId, { kind: 'email', value, verified })

/** A registration: user, email and profile, as registerUser writes them. */
function registration(tenantId: string, mark: string, value = `${mark}-${newId('x')}@example.com`): Unit {
  const userId = newId('usr')
  return unit(tenantId, mark, [
    insert('user', userId, userId, { status: 'active' }),
    email(newId('idn'), userId, value),
    insert('profile', userId, userId, { attributes: {} }),
  ])
}

/** Everything the commit writes, in a form both databases can be compared by (the outbox in insertion order). */
async function dump(driver: SqlDriver) {
  const records = await driver.query(
    `SELECT tenant_id, record_type, record_id, user_id, version, payload, created_at::text, updated_at::text
     FROM user_engine_records ORDER BY tenant_id, record_type, record_id`,
  )
  const audit = await driver.query(
    `SELECT tenant_id, id, occurred_at::text, action, user_id, actor_id, request_id, client_ip, user_agent, data
     FROM user_engine_audit ORDER BY seq`,
  )
  const outbox = await driver.query(
    `SELECT tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at::text, status
     FROM user_engine_outbox ORDER BY ctid`,
  )
  return { records: records.rows, audit: audit.rows, outbox: outbox.rows }
}

type Failure = [unit: number, sqlState: string | null, detail: string | null]

/** The batch function's failures as (unit, SQLSTATE, DETAIL). */
async function batch(driver: SqlDriver, units: Unit[]) {
  const { rows } = await driver.query<{ unit_index: number; sql_state: string; error_detail: string | null }>(
    SQL.commitBatch,
    [JSON.stringify(units)],
  )
  return rows.map((r): Failure => [Number(r.unit_index), r.sql_state, r.error_detail || null])
}

/** The same units one by one, each a commit of its own: the reference. */
async function oneByOne(driver: SqlDriver, units: Unit[]) {
  const failures: Failure[] = []
  for (const [i, u] of units.entries()) {
    try {
      await driver.query(SQL.commit, [
        u.tenantId,
        JSON.stringify(u.writes),
        JSON.stringify(u.audit),
        JSON.stringify(u.events),
        u.now,
      ])
    } catch (error) {
      const detail = (error as { detail?: string }).detail
      failures.push([i, sqlState(error), detail || null])
    }
  }
  return failures
}

/** Whether user_engine_commit_set takes the batch as it stands (tried and rolled back). */
async function setPathTakes(driver: SqlDriver, units: Unit[]): Promise<string | true> {
  return driver.session(async (s) => {
    await s.query('BEGIN')
    try {
      await s.query('SELECT user_engine_commit_set($1::jsonb)', [JSON.stringify(units)])
      return true
    } catch (error) {
      return sqlState(error) ?? 'unknown'
    } finally {
      await s.query('ROLLBACK')
    }
  })
}

for (const adapter of SQL_ADAPTERS) {
  describe(`set-based group commit (0012) on ${adapter.name}`, { skip: await adapter.skip() }, () => {
    let setDb: TestDb
    let refDb: TestDb
    let setDriver: SqlDriver
    let refDriver: SqlDriver
    let tenantA: string
    let tenantB: string
    before(async () => {
      setDb = await adapter.database(LATEST_SCHEMA_VERSION)
      refDb = await adapter.database(LATEST_SCHEMA_VERSION)
      setDriver = await setDb.driver()
      refDriver = await refDb.driver()
      tenantA = newId('tnt')
      tenantB = newId('tnt')
      await seed([tenantUnit(tenantA), tenantUnit(tenantB)])
    })
    after(async () => {
      await setDb.drop()
      await refDb.drop()
    })

    /** Applies `units` as one batch on one database and one by one on the other; both must agree. */
    async function compare(units: Unit[], expected: { path: string; failures: Array<[number, string]> }) {
      // Tried first (and rolled back), checked last: a wrong outcome is reported as such.
      const path = await setPathTakes(setDriver, units)
      const grouped = await batch(setDriver, units)
      const alone = await oneByOne(refDriver, units)
      assert.deepEqual(grouped, alone, 'the same failures (unit, SQLSTATE, DETAIL), unit by unit')
      assert.deepEqual(await dump(setDriver), await dump(refDriver), 'the same rows')
      assert.deepEqual(
        grouped.map(([i, state]) => [i, state]),
        expected.failures,
      )
      assert.equal(path, expected.path === 'set' ? true : expected.path, 'what the set-based path made of it')
    }

    /** The same seed in both databases, one by one. */
    async function seed(units: Unit[]) {
      assert.deepEqual(await oneByOne(setDriver, units), [])
      assert.deepEqual(await oneByOne(refDriver, units), [])
    }

    const tenantUnit = (tenantId: string) =>
      unit(tenantId, 't', [insert('tenant', tenantId, null, { name: 'T', status: 'active' })], 0)

    test('registrations in two tenants: set-based, with audit and outbox rows in unit order', async () => {
      const units = Array.from({ length: 12 }, (_, i) =>
        registration(i % 3 === 0 ? tenantB : tenantA, `r${i}`),
      )
      units[4] = unit(tenantA, 'r4', units[4]!.writes, 3)
      await compare(units, { path: 'set', failures: [] })
    })

    test('updates, deletes and identifier changes that free no value another record claims: set-based', async () => {
      const base = [registration(tenantA, 's0'), registration(tenantA, 's1'), registration(tenantA, 's2')]
      await seed(base)
      const [u0, u1, u2] = base.map((u) => u.writes[0]!.id) as [string, string, string]
      const idn1 = base[1]!.writes[1]!
      const idn2 = base[2]!.writes[1]!
      const units = [
        unit(tenantA, 'm0', [update('user', u0, u0, 1, { status: 'disabled' })]),
        registration(tenantA, 'm1'),
        // The same value, now verified: the record frees and claims its own value.
        unit(tenantA, 'm2', [update('identifier', idn1.id, u1, 1, { ...idn1.payload, verified: true })]),
        unit(tenantA, 'm3', [
          remove('identifier', idn2.id, u2, 1),
          email(newId('idn'), u2, `new-${newId('x')}@example.com`),
        ]),
        unit(tenantA, 'm4', [remove('profile', u0, u0, 1)]),
      ]
      await compare(units, { path: 'set', failures: [] })
    })

    test('one unit fails (duplicate value, record exists, stale version, no tenant, unknown op): it alone is rolled back, with its error', async () => {
      const taken = registration(tenantA, 'f0')
      await seed([taken])
      const takenValue = String(taken.writes[1]!.payload!.value)
      const userId = taken.writes[0]!.id
      // [unit, its error one by one, what stops the set-based path]: a record that exists is a primary-key
      // violation set-based, UE001 (with the write's index) one by one.
      const failing: Array<[Unit, string, string]> = [
        [registration(tenantA, 'f1', takenValue), '23505', '23505'],
        [unit(tenantA, 'f2', [insert('profile', userId, userId, { attributes: {} })]), 'UE001', '23505'],
        [
          unit(tenantA, 'f3', [
            insert('factor', newId('fac'), userId, {}),
            update('user', userId, userId, 9, { status: 'active' }),
          ]),
          'UE002',
          'UE002',
        ],
        [registration(newId('tnt'), 'f4'), 'UE004', 'UE004'],
        [
          unit(tenantA, 'f5', [{ op: 'upsert', type: 'user', id: newId('usr'), userId: null, payload: {} }]),
          '22023',
          'UE009',
        ],
      ]
      for (const [bad, state, path] of failing) {
        const units = [
          registration(tenantA, 'n0'),
          bad,
          registration(tenantB, 'n2'),
          registration(tenantA, 'n3'),
        ]
        await compare(units, { path, failures: [[1, state]] })
      }
    })

    test('two units on one record apply in order (the set-based path refuses the batch)', async () => {
      const base = registration(tenantA, 'o0')
      await seed([base])
      const userId = base.writes[0]!.id
      const units = [
        unit(tenantA, 'o1', [update('user', userId, userId, 1, { status: 'disabled' })]),
        registration(tenantA, 'o2'),
        unit(tenantA, 'o3', [update('user', userId, userId, 2, { status: 'active' })]),
        // Stale after o1 and o3: fails one by one, so here too.
        unit(tenantA, 'o4', [update('user', userId, userId, 2, { status: 'locked' })]),
      ]
      await compare(units, { path: 'UE009', failures: [[3, 'UE002']] })
    })

    test('a value claimed before another unit frees it fails as one by one (the set-based path refuses the batch)', async () => {
      const [holder, other] = [registration(tenantA, 'v0'), registration(tenantA, 'v1')]
      await seed([holder, other])
      const held = holder.writes[1]!
      const value = String(held.payload!.value)
      // Set-based, the delete would free the value before the insert claims it; one by one the claim fails.
      const claimant = registration(tenantA, 'v2', value)
      const freer = unit(tenantA, 'v3', [remove('identifier', held.id, held.userId, 1)])
      await compare([claimant, freer], { path: 'UE009', failures: [[0, '23505']] })
      // Freed first, then claimed: both commit, one by one and in the batch (which also goes unit by unit).
      const [x, y] = [registration(tenantA, 'v4'), registration(tenantA, 'v5')]
      await seed([x])
      const xIdn = x.writes[1]!
      const yIdn = y.writes[1]!
      const claimsX = {
        ...y,
        writes: [
          y.writes[0]!,
          { ...yIdn, payload: { ...yIdn.payload, value: xIdn.payload!.value } },
          y.writes[2]!,
        ],
      }
      await compare([unit(tenantA, 'v6', [remove('identifier', xIdn.id, xIdn.userId, 1)]), claimsX], {
        path: 'UE009',
        failures: [],
      })
      // An identifier moving to the value another identifier leaves later in the batch: fails one by one.
      const otherIdn = other.writes[1]!
      await compare(
        [
          unit(tenantA, 'v7', [
            update('identifier', claimsX.writes[1]!.id, yIdn.userId, 1, {
              ...yIdn.payload,
              value: otherIdn.payload!.value,
            }),
          ]),
          unit(tenantA, 'v8', [
            update('identifier', otherIdn.id, otherIdn.userId, 1, {
              ...otherIdn.payload,
              value: `moved-${newId('x')}@example.com`,
            }),
          ]),
        ],
        { path: 'UE009', failures: [[0, '23505']] },
      )
    })

    test('a tenant created in the batch and written into by a later unit (the set-based path refuses the batch)', async () => {
      const tenantC = newId('tnt')
      await compare([registration(tenantC, 'c0'), tenantUnit(tenantC), registration(tenantC, 'c2')], {
        path: 'UE009',
        failures: [[0, 'UE004']],
      })
    })
  })
}
