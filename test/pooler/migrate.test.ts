import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isUserEngineError } from '../../src/domain/errors.js'
import type { SqlDriver } from '../../src/store/postgres/driver/driver.js'
import { createNodePostgresDriver } from '../../src/store/postgres/driver/node-postgres-driver.js'
import { MIGRATION_LOCK_KEY } from '../../src/store/postgres/schema/lock.js'
import { createMigrator } from '../../src/store/postgres/schema/runner.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { spawnCli } from '../cli/run-cli.js'
import { type PgBouncer, pgbouncerSkip, startPgBouncer } from '../support/pgbouncer.js'
import { createTestDatabase, rawClient, type TestDatabase } from '../support/services.js'

/**
 * 8 concurrent `migrate` processes through PgBouncer in transaction mode on a fresh database, trial after
 * trial for about TRIAL_BUDGET_MS (USER_ENGINE_POOLER_TRIALS=n runs exactly n, for a run by hand). Each
 * process must succeed or exit with POOLED_CONNECTION; afterwards the database is at version 0 or the
 * latest, with every version recorded once, no INVALID index, no advisory lock left, and a direct migrate
 * gets the lock at once.
 */
const skip = await pgbouncerSkip()
const PROCESSES = 8
const TRIAL_BUDGET_MS = 6_000
const FIXED_TRIALS = Number(process.env.USER_ENGINE_POOLER_TRIALS ?? 0)

interface TrialResult {
  readonly succeeded: number
  readonly refused: number
  readonly versionAfterPooled: number
  readonly ms: number
}

/**
 * After migrators ran through the pooler: nothing or every version once (or, with `stopsBetweenVersions`, the
 * first versions, each once), no INVALID index, no migration lock left, and a direct migrate takes the lock at
 * once and applies the rest. Returns the version the pooled runs left.
 */
async function assertCleanAfterPooled(
  db: TestDatabase,
  { stopsBetweenVersions = false }: { stopsBetweenVersions?: boolean } = {},
): Promise<number> {
  const client = await rawClient(db.url)
  let versionAfterPooled = 0
  try {
    const present = await client.query(`SELECT to_regclass('user_engine_schema_versions') IS NOT NULL AS p`)
    const history = present.rows[0].p
      ? (
          await client.query<{ version: number }>(
            'SELECT version FROM user_engine_schema_versions ORDER BY version',
          )
        ).rows
      : []
    const versions = history.map((r) => Number(r.version))
    versionAfterPooled = versions.at(-1) ?? 0
    // Refused before the lock (pooler detected): nothing, or every version. With the detection hidden, the
    // lock's guards may stop a migrator between two versions: the versions before stay, each whole with its
    // history row, and the direct migrate below applies the rest.
    if (!stopsBetweenVersions) {
      assert.ok(
        versions.length === 0 || versions.length === LATEST_SCHEMA_VERSION,
        `half-migrated: versions ${versions.join(',')}`,
      )
    }
    assert.deepEqual(
      versions,
      versions.map((_, i) => i + 1),
      'each version recorded once',
    )
    if (versions.length === 0) {
      const tables =
        await client.query(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE 'user\\_engine\\_%'
          AND tablename <> 'user_engine_schema_versions'`)
      assert.equal(tables.rows[0].n, 0, 'no table of a migration without its history row')
    }
    const invalid = await client.query('SELECT count(*)::int AS n FROM pg_index WHERE NOT indisvalid')
    assert.equal(invalid.rows[0].n, 0, 'no INVALID index')
    const key = BigInt(MIGRATION_LOCK_KEY)
    const locks = await client.query(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [Number(key >> 32n), Number(key & 0xffffffffn)],
    )
    assert.equal(locks.rows[0].n, 0, 'no migration lock left behind')
  } finally {
    await client.end()
  }
  // A direct migrate afterwards takes the lock at once and finishes the job.
  const driver = await createNodePostgresDriver({ connectionString: db.url })
  try {
    const result = await createMigrator(driver, { lockTimeoutMs: 2000 }).migrate()
    assert.equal(result.toVersion, LATEST_SCHEMA_VERSION)
    assert.ok(result.lockWaitMs < 1000, `direct migrate waited ${result.lockWaitMs} ms for the lock`)
  } finally {
    await driver.close()
  }
  return versionAfterPooled
}

async function trial(bouncer: PgBouncer): Promise<TrialResult> {
  const started = Date.now()
  const db: TestDatabase = await createTestDatabase('ue_pooler_migrate')
  try {
    const runs = await Promise.all(
      Array.from({ length: PROCESSES }, () =>
        spawnCli(['migrate', '--json', '--database-url', bouncer.urlFor(db.name)], {
          USER_ENGINE_MIGRATION_URL: '',
        }),
      ),
    )
    let succeeded = 0
    let refused = 0
    for (const run of runs) {
      if (run.code === 0) succeeded++
      else if (run.code === 1 && /POOLED_CONNECTION/.test(run.stderr)) refused++
      else assert.fail(`a migrate process neither succeeded nor refused: exit ${run.code}\n${run.stderr}`)
    }
    const versionAfterPooled = await assertCleanAfterPooled(db)
    return { succeeded, refused, versionAfterPooled, ms: Date.now() - started }
  } finally {
    await db.drop()
  }
}

describe('concurrent migrate through PgBouncer (pool_mode = transaction)', { skip }, () => {
  let bouncer: PgBouncer
  before(async () => {
    bouncer = await startPgBouncer()
  })
  after(async () => {
    await bouncer?.stop()
  })

  test(`${PROCESSES} migrate processes at once: each succeeds or refuses with POOLED_CONNECTION, the database is never half-migrated`, async (t) => {
    const results: TrialResult[] = []
    const started = Date.now()
    for (;;) {
      results.push(await trial(bouncer))
      // Another trial only when it would end within the budget. One took 15 to 20 s on a busy 2-core host while
      // each process started through tsx (1 or 2 trials in 20 s); from the run's CLI bundle 1.2 to 2 s alone.
      const next = Date.now() - started + (results.at(-1)?.ms ?? 0)
      if (FIXED_TRIALS > 0 ? results.length >= FIXED_TRIALS : next > TRIAL_BUDGET_MS) break
    }
    t.diagnostic(`trials: ${JSON.stringify(results)}`)
    assert.ok(results.length >= 1)
  })

  // A pool whose clients announce no server process id hides the pooler: the lock's own guards remain.
  const hidden = (d: SqlDriver): SqlDriver => ({
    kind: d.kind,
    query: (sql, params) => d.query(sql, params),
    exec: (sql) => d.exec(sql),
    close: () => d.close(),
    session: (fn) =>
      d.session((s) => fn({ query: (sql, params) => s.query(sql, params), exec: (sql) => s.exec(sql) })),
  })

  test(`with the pooler undetected, ${PROCESSES} migrators at once still succeed or refuse, and leave no lock`, async (t) => {
    const outcomes: string[] = []
    const started = Date.now()
    while (Date.now() - started < 10_000) {
      const db = await createTestDatabase('ue_pooler_hidden')
      try {
        const drivers = await Promise.all(
          Array.from({ length: PROCESSES }, () =>
            createNodePostgresDriver({ connectionString: bouncer.urlFor(db.name) }),
          ),
        )
        const results = await Promise.allSettled(
          drivers.map((d) => createMigrator(hidden(d), { lockTimeoutMs: 5000 }).migrate()),
        )
        await Promise.all(drivers.map((d) => d.close()))
        let ok = 0
        for (const r of results) {
          if (r.status === 'fulfilled') ok++
          else
            assert.ok(
              isUserEngineError(r.reason, 'POOLED_CONNECTION') ||
                // The lock's last resort closes the idle holder's server connection; the pooler may hand that
                // connection to this migrator between the check and the close (docs/operations.md).
                (isUserEngineError(r.reason, 'STORE_UNAVAILABLE') && /57P01/.test(String(r.reason))),
              String(r.reason),
            )
        }
        const version = await assertCleanAfterPooled(db, { stopsBetweenVersions: true })
        outcomes.push(`${ok} ok/${PROCESSES - ok} refused/v${version}`)
      } finally {
        await db.drop()
      }
    }
    t.diagnostic(`undetected trials: ${outcomes.join(', ')}`)
  })
})
