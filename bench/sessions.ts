import { PGlite, protocol } from '@electric-sql/pglite'
import { createKeyring, generateKey } from '../src/engine/keyring.js'
import { UserEngine } from '../src/engine/user-engine.js'
import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import { createPgliteDriver } from '../src/store/postgres/pglite.js'
import { PostgresUserEngineStore } from '../src/store/postgres/postgres-store.js'
import type { UserEngineStore } from '../src/store/store.js'
import { createTestDatabase } from '../test/support/services.js'
import { type BenchResult, benchPool, compare, endPool } from './measure.js'

/**
 * Session validation (the hot path: `validateSession`, one read) against a hand-written indexed select of the
 * same session row, on one database in one run, at a small table and again after the table grew. The target
 * is a ratio of at least 0.9, at every size.
 */

// The baseline: the row by primary key, as a service would read it by hand (a named prepared statement, as
// the node-postgres store sends its own).
const SELECT_SESSION = `SELECT record_id, user_id, version, payload, created_at, updated_at FROM user_engine_records
  WHERE tenant_id = $1 AND record_type = 'session' AND record_id = $2`

// Filler sessions spread over 100 other tenants: they grow the table and its indexes, never the answer.
const FILL = `INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
  SELECT 'ten_fill' || (g % 100), 'session', 'ses_' || md5(g::text), 'usr_fill' || (g % 5000), 1,
    jsonb_build_object('tokenHash', md5(g::text) || md5((g + 1)::text), 'methods', '["password"]'::jsonb,
      'lastSeenAt', '2030-01-01T00:00:00.000Z', 'expiresAt', '2030-02-01T00:00:00.000Z',
      'absoluteExpiresAt', '2030-02-01T00:00:00.000Z'),
    now(), now()
  FROM generate_series($1::bigint, $2::bigint) g`

interface Target {
  readonly label: string
  readonly store: UserEngineStore
  /** One read of a row by its key: the baseline. */
  select(tenantId: string, sessionId: string): Promise<unknown>
  /** PGlite: the same select as a named prepared statement, as the store now sends its own there. */
  selectPrepared?(tenantId: string, sessionId: string): Promise<unknown>
  exec(sql: string, params?: unknown[]): Promise<unknown>
}

export interface SessionBenchOptions {
  readonly target: 'postgres' | 'pglite'
  /** Table sizes (sessions in the table) to measure at, ascending. */
  readonly sizes: readonly number[]
  readonly durationMs: number
  readonly rounds: number
  readonly concurrencies: readonly number[]
  readonly log: (line: string) => void
}

async function measure(target: Target, options: SessionBenchOptions): Promise<BenchResult[]> {
  const engine = new UserEngine({
    store: target.store,
    keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
    passwordHashing: { memoryCost: 64, timeCost: 1, parallelism: 1 },
    // No refresh falls due during the run: the read path alone is measured.
    sessions: { idleTtlMs: 30 * 86_400_000, refreshIntervalMs: 29 * 86_400_000, maxPerUser: 1000 },
  })
  const tenant = await engine.createTenant('bench')
  const sessions: { id: string; token: string }[] = []
  for (let u = 0; u < 10; u++) {
    const user = await engine.registerUser(tenant.id, { email: `bench${u}@example.com` })
    for (let s = 0; s < 20; s++) {
      const created = await engine.createSession(tenant.id, user.id)
      sessions.push({ id: created.id, token: created.token.reveal() })
    }
  }
  const pick = (i: number) => sessions[(i * 7919) % sessions.length]!
  const results: BenchResult[] = []
  let filled = sessions.length
  for (const size of options.sizes) {
    if (size > filled) {
      options.log(`bench: ${target.label} sessions, filling the table to ${size} sessions`)
      for (let from = filled + 1; from <= size; from += 100_000) {
        await target.exec(FILL, [from, Math.min(size, from + 99_999)])
      }
      filled = size
      await target.exec('ANALYZE user_engine_records')
    }
    for (const c of options.concurrencies) {
      options.log(`bench: ${target.label} validate-session at ${size} sessions, ${c} caller(s)`)
      results.push(
        await compare(
          `${target.label} validate-session n=${size} c=${c}`,
          (i) => engine.validateSession(pick(i).token),
          (i) => target.select(tenant.id, pick(i).id),
          { concurrency: c, durationMs: options.durationMs, rounds: options.rounds },
        ),
      )
      const prepared = target.selectPrepared
      if (prepared) {
        results.push(
          await compare(
            `${target.label} validate-session vs prepared select n=${size} c=${c}`,
            (i) => engine.validateSession(pick(i).token),
            (i) => prepared(tenant.id, pick(i).id),
            { concurrency: c, durationMs: options.durationMs, rounds: options.rounds },
          ),
        )
      }
    }
  }
  return results
}

/** SELECT_SESSION prepared once on PGlite and run by Bind/Execute/Sync, as the PGlite driver's queryText does. */
function preparedSelect(db: PGlite): (tenantId: string, sessionId: string) => Promise<unknown> {
  const { serialize } = protocol
  let parsed = false
  return (t, s) =>
    db.runExclusive(async () => {
      const parts = [
        ...(parsed
          ? []
          : [serialize.parse({ name: 'bench_select_session', text: SELECT_SESSION, types: [] })]),
        serialize.bind({ statement: 'bench_select_session', values: [t, s] }),
        serialize.execute({}),
        serialize.sync(),
      ]
      const message = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
      let at = 0
      for (const part of parts) {
        message.set(part, at)
        at += part.length
      }
      const { messages } = await db.execProtocol(message)
      parsed = true
      return messages.filter((m) => m.name === 'dataRow')
    })
}

export async function runSessionBench(options: SessionBenchOptions): Promise<BenchResult[]> {
  if (options.target === 'pglite') {
    const db = new PGlite()
    const store = await PostgresUserEngineStore.open(await createPgliteDriver({ db }))
    try {
      await store.migrate()
      return await measure(
        {
          label: 'pglite',
          store,
          select: (t, s) => db.query(SELECT_SESSION, [t, s]),
          selectPrepared: preparedSelect(db),
          exec: (sql, params) => db.query(sql, params),
        },
        options,
      )
    } finally {
      await store.close()
      await db.close()
    }
  }
  const database = await createTestDatabase('ue_bench_sessions')
  const poolSize = Math.max(...options.concurrencies)
  const storePool = benchPool(database.url, poolSize)
  const baselinePool = benchPool(database.url, poolSize)
  let opened: UserEngineStore | undefined
  try {
    const store = await createNodePostgresStore({ pool: storePool })
    opened = store
    await store.migrate()
    return await measure(
      {
        label: 'postgres',
        store,
        select: (t, s) =>
          baselinePool.query({ name: 'bench_select_session', text: SELECT_SESSION, values: [t, s] }),
        exec: (sql, params) => baselinePool.query(sql, params),
      },
      options,
    )
  } finally {
    // The database goes only once no connection is left on it (see endPool).
    await opened?.close()
    await endPool(storePool)
    await endPool(baselinePool)
    await database.drop()
  }
}
