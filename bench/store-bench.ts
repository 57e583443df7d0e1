import { PGlite } from '@electric-sql/pglite'
import type pg from 'pg'
import { newId } from '../src/domain/ids.js'
import { createKeyring, generateKey } from '../src/engine/keyring.js'
import { UserEngine } from '../src/engine/user-engine.js'
import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import { createPgliteDriver } from '../src/store/postgres/pglite.js'
import { PostgresUserEngineStore } from '../src/store/postgres/postgres-store.js'
import type { UserEngineStore } from '../src/store/store.js'
import { createTestDatabase } from '../test/support/services.js'
import { type BenchResult, benchPool, compare, endPool } from './measure.js'

/** The baseline's only need: one parameterized statement, and a connection held for BEGIN..COMMIT. */
interface BaselineDb {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>
  transaction(fn: (q: (sql: string, params?: unknown[]) => Promise<unknown>) => Promise<void>): Promise<void>
}

const INSERT_RECORD = `INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
  VALUES ($1, $2, $3, $4, 1, $5, now(), now())`
const INSERT_AUDIT = `INSERT INTO user_engine_audit (tenant_id, id, occurred_at, action, user_id, data) VALUES ($1, $2, now(), $3, $4, $5)`
const INSERT_EVENT = `INSERT INTO user_engine_outbox (tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at, available_at)
  VALUES ($1, $2, 'user', $3, 1, 0, 'user.registered', $4, now(), now())`
const SELECT_USER = `SELECT record_id, version, payload, created_at, updated_at FROM user_engine_records
  WHERE tenant_id = $1 AND record_type = 'user' AND record_id = $2`
const SELECT_USER_BY_EMAIL = `SELECT u.record_id, u.version, u.payload, u.created_at, u.updated_at
  FROM user_engine_records i JOIN user_engine_records u
    ON u.tenant_id = i.tenant_id AND u.record_type = 'user' AND u.record_id = i.user_id
  WHERE i.tenant_id = $1 AND i.record_type = 'identifier' AND i.payload->>'kind' = 'email' AND i.payload->>'value' = $2`

/** Hand-written registration the ordinary way: BEGIN, one INSERT per row the engine writes, COMMIT. */
async function baselineRegister(db: BaselineDb, tenantId: string, email: string): Promise<void> {
  const userId = newId('usr')
  await db.transaction(async (q) => {
    await q(INSERT_RECORD, [tenantId, 'user', userId, userId, JSON.stringify({ status: 'active' })])
    await q(INSERT_RECORD, [
      tenantId,
      'identifier',
      newId('idn'),
      userId,
      JSON.stringify({ kind: 'email', value: email, verified: false }),
    ])
    await q(INSERT_RECORD, [tenantId, 'profile', userId, userId, JSON.stringify({ attributes: {} })])
    await q(INSERT_AUDIT, [
      tenantId,
      newId('aud'),
      'user.registered',
      userId,
      JSON.stringify({ hasPassword: false }),
    ])
    await q(INSERT_EVENT, [tenantId, newId('evt'), userId, JSON.stringify({ userId })])
  })
}

function nodePostgresBaseline(pool: pg.Pool): BaselineDb {
  return {
    query: (sql, params) => pool.query(sql, params),
    async transaction(fn) {
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        await fn((sql, params) => client.query(sql, params))
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw error
      } finally {
        client.release()
      }
    },
  }
}

function pgliteBaseline(db: PGlite): BaselineDb {
  return {
    query: (sql, params) => db.query(sql, params),
    transaction: (fn) => db.transaction((tx) => fn((sql, params) => tx.query(sql, params))),
  }
}

export interface StoreBenchOptions {
  /**
   * postgres-async: the server with synchronous_commit=off on both sides, so a commit does not wait for
   * its WAL flush: what is left is round trips and work, the part the one-statement commit saves.
   */
  readonly target: 'postgres' | 'postgres-async' | 'postgres-unprepared' | 'pglite'
  readonly durationMs: number
  readonly rounds: number
  readonly concurrencies: readonly number[]
  readonly log: (line: string) => void
}

async function runCases(
  label: string,
  store: UserEngineStore,
  baseline: BaselineDb,
  options: StoreBenchOptions,
  registerOnly = false,
): Promise<BenchResult[]> {
  const engine = new UserEngine({
    store,
    keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
  })
  const tenant = await engine.createTenant('bench')
  const results: BenchResult[] = []
  let n = 0
  const email = () => `bench-${process.pid}-${n++}@example.com`
  for (const c of options.concurrencies) {
    options.log(`bench: ${label} register-user, ${c} caller(s)`)
    results.push(
      await compare(
        `${label} register-user c=${c}`,
        () => engine.registerUser(tenant.id, { email: email() }),
        () => baselineRegister(baseline, tenant.id, email()),
        { concurrency: c, durationMs: options.durationMs, rounds: options.rounds },
      ),
    )
  }
  if (registerOnly) return results
  // Point reads over a fixed set of users.
  const users = await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const e = `reader-${process.pid}-${i}@example.com`
      return { id: (await engine.registerUser(tenant.id, { email: e })).id, email: e }
    }),
  )
  // The register rounds grew the tables from empty faster than autovacuum analyzes them; without fresh
  // statistics the planner picks a partial index scan for both sides. Production tables have statistics.
  await baseline.query('ANALYZE')
  const pick = (i: number) => users[i % users.length]!
  for (const c of options.concurrencies) {
    options.log(`bench: ${label} reads, ${c} caller(s)`)
    results.push(
      await compare(
        `${label} user-by-id c=${c}`,
        (i) => engine.getUser(tenant.id, pick(i).id),
        (i) => baseline.query(SELECT_USER, [tenant.id, pick(i).id]),
        { concurrency: c, durationMs: options.durationMs, rounds: options.rounds },
      ),
    )
    results.push(
      await compare(
        `${label} user-by-email c=${c}`,
        (i) => engine.findUserByEmail(tenant.id, pick(i).email),
        (i) => baseline.query(SELECT_USER_BY_EMAIL, [tenant.id, pick(i).email]),
        { concurrency: c, durationMs: options.durationMs, rounds: options.rounds },
      ),
    )
  }
  return results
}

/** Engine over the store vs hand-written SQL, on the same database in the same run. */
export async function runStoreBench(options: StoreBenchOptions): Promise<BenchResult[]> {
  if (options.target === 'pglite') {
    const db = new PGlite()
    const store = await PostgresUserEngineStore.open(await createPgliteDriver({ db }))
    try {
      await store.migrate()
      return await runCases('pglite', store, pgliteBaseline(db), options)
    } finally {
      await store.close()
      await db.close()
    }
  }
  const database = await createTestDatabase('ue_bench')
  const poolSize = Math.max(...options.concurrencies)
  const async = options.target === 'postgres-async'
  const settings = async ? { options: '-c synchronous_commit=off' } : {}
  const storePool = benchPool(database.url, poolSize, settings)
  const baselinePool = benchPool(database.url, poolSize, settings)
  let store: UserEngineStore | undefined
  try {
    const unprepared = options.target === 'postgres-unprepared'
    store = await createNodePostgresStore({ pool: storePool, preparedStatements: !unprepared })
    await store.migrate()
    const label = async ? 'postgres synchronous_commit=off' : unprepared ? 'postgres unprepared' : 'postgres'
    return await runCases(label, store, nodePostgresBaseline(baselinePool), options, async)
  } finally {
    // The store's last NOTIFY goes before its pool ends; the database goes only once no connection is left
    // on it (see endPool).
    await store?.close()
    await endPool(storePool)
    await endPool(baselinePool)
    await database.drop()
  }
}
