import type pg from 'pg'
import { encodeCursor } from '../src/domain/cursor.js'
import { prefixUpperBound } from '../src/domain/user-queries.js'
import { createKeyring, generateKey } from '../src/engine/keyring.js'
import { UserEngine } from '../src/engine/user-engine.js'
import { createNodePostgresStore, type PostgresUserEngineStore } from '../src/store/postgres/node-postgres.js'
import { listUsersStatement } from '../src/store/postgres/sql.js'
import { createTestDatabase } from '../test/support/services.js'
import { type BenchResult, benchPool, compare, endPool } from './measure.js'

export interface ReadsBenchOptions {
  readonly durationMs: number
  readonly rounds: number
  readonly concurrencies: readonly number[]
  /** Users in the large tenant of the prefix-search comparison. Default 1 000 000. */
  readonly largeUsers?: number
  /** Users in the small tenant (and in the page tenant). Default 10 000. */
  readonly smallUsers?: number
  readonly log: (line: string) => void
}

const RECORD_COLUMNS = 'tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at'

/**
 * `users` users with an email (md5 of the index: uniformly spread first characters, so a two-character prefix
 * matches users / 256 of them) and a username, written by SQL in batches: the engine would take hours here.
 * A user's three records go in together, as a registration's one commit writes them, so they share a heap page
 * as they do in a table the engine filled. (Written as three sweeps, all users then all emails then all
 * usernames, one user's rows lay a third of the table apart: three cold pages per listed user in the large
 * tenant, a layout no engine-written table has.)
 */
async function seedTenant(db: pg.Pool, tenantId: string, users: number, log: (l: string) => void) {
  await db.query(
    `INSERT INTO user_engine_records (${RECORD_COLUMNS})
     VALUES ($1, 'tenant', $1, NULL, 1, '{"name":"bench","status":"active"}', now(), now())`,
    [tenantId],
  )
  const batch = 100_000
  for (let from = 1; from <= users; from += batch) {
    const to = Math.min(users, from + batch - 1)
    const id = (kind: string) => `'${kind}_' || $1 || '_' || lpad(i::text, 8, '0')`
    await db.query(
      `INSERT INTO user_engine_records (${RECORD_COLUMNS})
       SELECT $1, r.record_type, r.record_id, ${id('usr')}, 1, r.payload, now(), now()
       FROM generate_series($2::int, $3::int) AS i
       CROSS JOIN LATERAL (VALUES
         (1, 'user', ${id('usr')}, '{"status":"active"}'::jsonb),
         (2, 'identifier', ${id('idn')} || 'e',
           jsonb_build_object('kind', 'email', 'value', md5($1 || i) || '@example.com', 'verified', false)),
         (3, 'identifier', ${id('idn')} || 'u',
           jsonb_build_object('kind', 'username', 'value', 'user' || i, 'verified', false))
       ) AS r(n, record_type, record_id, payload)
       ORDER BY i, r.n`,
      [tenantId, from, to],
    )
    if (users > batch) log(`bench: reads seeded ${to} of ${users} users in ${tenantId}`)
  }
}

/**
 * A statement prepared as the store prepares its own (a named statement: after five custom plans the plan cache
 * may keep a generic one), then run `runs` times under EXPLAIN ANALYZE: the median planning and execution times
 * in ms, and the last plan.
 */
async function serverTimes(db: pg.Pool, statement: { text: string; values: unknown[] }, runs = 50) {
  const c = await db.connect()
  try {
    await c.query(`PREPARE bench_page AS ${statement.text}`)
    const args = statement.values
      .map((v) => (typeof v === 'number' ? String(v) : c.escapeLiteral(String(v))))
      .join(', ')
    const planning: number[] = []
    const execution: number[] = []
    let plan: string[] = []
    for (let i = 0; i < runs; i++) {
      const r = await c.query(`EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) EXECUTE bench_page(${args})`)
      plan = r.rows.map((row) => String(Object.values(row)[0]))
      const text = plan.join('\n')
      planning.push(Number(/Planning Time: ([\d.]+)/.exec(text)?.[1] ?? 0))
      execution.push(Number(/Execution Time: ([\d.]+)/.exec(text)?.[1] ?? 0))
    }
    await c.query('DEALLOCATE bench_page')
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    return { planning: median(planning), execution: median(execution), plan }
  } finally {
    c.release()
  }
}

const HEX = '0123456789abcdef'
/** The i-th two-character prefix of 256, shuffled by a multiplier coprime to 256. */
const prefixOf = (i: number) => {
  const n = (i * 73) % 256
  return `${HEX[n >> 4]}${HEX[n & 15]}`
}

/**
 * Reads a service needs, on the Postgres server: a page of 50 users with their identifiers against the same
 * page without them, and a prefix search page in a tenant of `largeUsers` against one of `smallUsers`. Each
 * figure is a ratio measured in one run; nothing passes or fails.
 */
export async function runReadsBench(options: ReadsBenchOptions): Promise<BenchResult[]> {
  const large = options.largeUsers ?? 1_000_000
  const small = options.smallUsers ?? 10_000
  const database = await createTestDatabase('ue_bench_reads')
  const poolSize = Math.max(...options.concurrencies)
  const pool = benchPool(database.url, poolSize)
  const admin = benchPool(database.url, 1)
  const results: BenchResult[] = []
  let opened: PostgresUserEngineStore | undefined
  try {
    const store = await createNodePostgresStore({ pool })
    opened = store
    await store.migrate()
    const engine = new UserEngine({
      store,
      keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
    })
    const [pageTenant, smallTenant, largeTenant] = ['ten_page', 'ten_small', 'ten_large']
    options.log(`bench: reads seeding ${small} + ${small} + ${large} users`)
    await seedTenant(admin, pageTenant, small, options.log)
    await seedTenant(admin, smallTenant, small, options.log)
    await seedTenant(admin, largeTenant, large, options.log)
    await admin.query('VACUUM ANALYZE user_engine_records')

    const plan = listUsersStatement({
      tenantId: largeTenant,
      limit: 20,
      after: null,
      status: undefined,
      prefix: { kind: 'email', lower: 'a7', upper: prefixUpperBound('a7') },
      includeIdentifiers: false,
    })
    const explained = await admin.query(`EXPLAIN (ANALYZE, BUFFERS) ${plan.text}`, plan.values)
    options.log(`bench: reads prefix plan on ${large} users:`)
    for (const row of explained.rows) options.log(`  ${Object.values(row)[0]}`)

    for (const includeIdentifiers of [false, true]) {
      const page = listUsersStatement({
        tenantId: pageTenant,
        limit: 50,
        after: `usr_${pageTenant}_${String(small >> 1).padStart(8, '0')}`,
        status: undefined,
        prefix: undefined,
        includeIdentifiers,
      })
      const t = await serverTimes(admin, page)
      options.log(
        `bench: reads page of 50${includeIdentifiers ? ' with identifiers' : ''}, prepared, median of 50: planning ${t.planning} ms, execution ${t.execution} ms`,
      )
      if (includeIdentifiers) for (const line of t.plan) options.log(`  ${line}`)
    }

    // Random positions: a page starts after a random user of the tenant.
    const cursorAt = (i: number) =>
      encodeCursor(`usr_${pageTenant}_${String(1 + ((i * 7919) % (small - 50))).padStart(8, '0')}`)
    const run = { durationMs: options.durationMs, rounds: options.rounds }
    for (const c of options.concurrencies) {
      options.log(`bench: reads page of 50, ${c} caller(s)`)
      results.push(
        await compare(
          `postgres store listUsers 50 with identifiers vs plain c=${c}`,
          (i) => store.listUsers(pageTenant, { limit: 50, cursor: cursorAt(i), includeIdentifiers: true }),
          (i) => store.listUsers(pageTenant, { limit: 50, cursor: cursorAt(i) }),
          { ...run, concurrency: c },
        ),
      )
      results.push(
        await compare(
          `postgres engine listUsers 50 include identifiers vs plain c=${c}`,
          (i) => engine.listUsers(pageTenant, { limit: 50, cursor: cursorAt(i), include: ['identifiers'] }),
          (i) => engine.listUsers(pageTenant, { limit: 50, cursor: cursorAt(i) }),
          { ...run, concurrency: c },
        ),
      )
      options.log(`bench: reads prefix search, ${c} caller(s)`)
      results.push(
        await compare(
          `postgres engine emailPrefix page of 20, ${large} vs ${small} users c=${c}`,
          (i) => engine.listUsers(largeTenant, { emailPrefix: prefixOf(i), limit: 20 }),
          (i) => engine.listUsers(smallTenant, { emailPrefix: prefixOf(i), limit: 20 }),
          { ...run, concurrency: c },
        ),
      )
      results.push(
        await compare(
          `postgres engine emailPrefix page of 20 with identifiers, ${large} vs ${small} users c=${c}`,
          (i) =>
            engine.listUsers(largeTenant, { emailPrefix: prefixOf(i), limit: 20, include: ['identifiers'] }),
          (i) =>
            engine.listUsers(smallTenant, { emailPrefix: prefixOf(i), limit: 20, include: ['identifiers'] }),
          { ...run, concurrency: c },
        ),
      )
    }
    return results
  } finally {
    // The database goes only once no connection is left on it (see endPool).
    await opened?.close()
    await endPool(pool)
    await endPool(admin)
    await database.drop()
  }
}
