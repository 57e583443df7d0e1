// @ts-check
// What the harness cannot see: that the hot reads are served from an index range, so their cost follows the
// page and not the tenant (the contract's "a store MUST serve a prefix page without reading every identifier
// of the tenant"). Each case captures the statements a store call really runs and asks SQLite for their plans
// (EXPLAIN QUERY PLAN): no full scan of a table or index, and no sort of the whole result.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SqliteUserEngineStore } from './lib/index.js'

const store = await SqliteUserEngineStore.open()
await store.migrate()
const db = store.database

/**
 * The statements (with their parameters) `call` runs through the database helpers.
 * @param {() => Promise<unknown>} call
 */
async function statementsOf(call) {
  /** @type {Array<[string, import('./lib/database.js').SqlValue[]]>} */
  const seen = []
  const { all, run } = db
  db.all = (sql, params = []) => {
    seen.push([sql, params])
    return all.call(db, sql, params)
  }
  db.run = (sql, params = []) => {
    seen.push([sql, params])
    return run.call(db, sql, params)
  }
  try {
    await call()
  } finally {
    db.all = all
    db.run = run
  }
  return seen
}

/** Every plan line of every statement `call` runs; fails on a full scan or a sort of the whole result. */
async function assertIndexed(/** @type {string} */ what, /** @type {() => Promise<unknown>} */ call) {
  const statements = await statementsOf(call)
  assert.ok(statements.length > 0, `${what} ran no statement`)
  for (const [sql, params] of statements) {
    const plan = db.all(`EXPLAIN QUERY PLAN ${sql}`, params).map((r) => String(r.detail))
    const bad = plan.filter(
      (line) => /^SCAN /.test(line) || /TEMP B-TREE FOR (ORDER BY|GROUP BY|DISTINCT)/.test(line),
    )
    assert.deepEqual(bad, [], `${what}: ${sql.replace(/\s+/g, ' ').slice(0, 120)}...\n${plan.join('\n')}`)
  }
}

const tenantId = 'plans-tenant'
await store.transaction(tenantId, async (tx) => {
  tx.putTenant({ id: tenantId, name: 'Plans', status: 'active' }, { mustNotExist: true })
})

test('listUsers pages by id, by status, and by identifier prefix with identifiers, each from an index range', async () => {
  await assertIndexed('listUsers', () => store.listUsers(tenantId, { limit: 10 }))
  await assertIndexed('listUsers by status', () => store.listUsers(tenantId, { status: 'active', limit: 10 }))
  await assertIndexed('listUsers by prefix', () =>
    store.listUsers(tenantId, {
      identifierPrefix: { kind: 'email', prefix: 'ann' },
      includeIdentifiers: true,
      limit: 10,
    }),
  )
  await assertIndexed('countUsers by prefix', () =>
    store.countUsers(tenantId, { identifierPrefix: { kind: 'email', prefix: 'ann' }, status: 'active' }),
  )
})

test('lookups, audit pages, sessions, purge and sealed factors read by key or index range', async () => {
  await assertIndexed('getIdentifier', () => store.getIdentifier(tenantId, 'email', 'ann@example.com'))
  await assertIndexed('findUserByIdentifier', () => store.findUserByIdentifier(tenantId, 'username', 'ann'))
  await assertIndexed('listAudit', () => store.listAudit(tenantId, { limit: 10 }))
  await assertIndexed('findSession', () => store.findSession(tenantId, 'ses-1'))
  await assertIndexed('purgeExpired', () =>
    store.purgeExpired(tenantId, { before: new Date().toISOString(), limit: 10 }),
  )
  await assertIndexed('listSealedFactors', () =>
    store.listSealedFactors(tenantId, { excludeKeyId: 'k1', limit: 10 }),
  )
  await assertIndexed('listTenants', () => store.listTenants({ limit: 10 }))
})

test('the relay claim reads due heads in order from the claim index, and acknowledges by id', async () => {
  await assertIndexed('claim', () => store.outbox.claim({ owner: 'relay-1', limit: 10, leaseMs: 1000 }))
  await assertIndexed('acknowledge', () => store.outbox.acknowledge('relay-1', ['evt-1']))
  // Not checked: listForAggregate (for tests and operators) reads the tenant's events and sorts them, since
  // version 10 keeps only pending and dead events indexed by aggregate, as the Postgres schema does.
})

test('the plan check fails on a full scan', async () => {
  await assert.rejects(
    assertIndexed('a scan', async () =>
      db.all("SELECT * FROM ue_records WHERE json_extract(payload, '$.name') = ?", ['x']),
    ),
    /a scan/,
  )
})

test.after(() => store.close())
