import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { runCli } from '../cli/run-cli.js'
import { type PgBouncer, pgbouncerSkip, startPgBouncer } from '../support/pgbouncer.js'
import { createTestDatabase, rawClient, type TestDatabase } from '../support/services.js'

/**
 * `user-engine conformance` with its database URL through PgBouncer (transaction mode): without a direct URL
 * it refuses at once, saying why; with USER_ENGINE_MIGRATION_URL it gives each case a database of its own
 * (created and migrated directly, its traffic pooled) and leaves none behind.
 */
const skip = await pgbouncerSkip()
// Suites that open stores in every way the factories offer: own databases, shared ones, planted history.
const SUITES = process.env.USER_ENGINE_POOLER_CONFORMANCE_SUITES?.split(',') ?? [
  'migration',
  'concurrency',
  'schema-history',
  'migrator-race',
  'identifiers',
  'closed-store',
]

const conformanceDatabases = async (db: TestDatabase): Promise<string[]> => {
  const client = await rawClient(db.url)
  try {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE 'ue\\_conformance\\_pooled\\_%'`,
    )
    return rows.map((r) => r.datname)
  } finally {
    await client.end()
  }
}

describe('conformance through PgBouncer (pool_mode = transaction)', { skip }, () => {
  let bouncer: PgBouncer
  let db: TestDatabase
  before(async () => {
    bouncer = await startPgBouncer()
    db = await createTestDatabase('ue_pooler_conf')
  })
  after(async () => {
    await bouncer?.stop()
    await db?.drop()
  })

  test('without a direct URL it refuses at once with POOLED_CONNECTION saying what to set', async () => {
    const run = await runCli(['conformance', '--database-url', bouncer.urlFor(db.name)], {
      USER_ENGINE_MIGRATION_URL: '',
    })
    assert.equal(run.code, 1, run.stderr)
    assert.match(run.stderr, /POOLED_CONNECTION/)
    assert.match(run.stderr, /USER_ENGINE_MIGRATION_URL/)
    assert.doesNotMatch(run.stderr, /unavailable/)
    // A "direct" URL that goes through the pooler as well is refused the same way.
    const pooledTwice = await runCli(['conformance'], { USER_ENGINE_MIGRATION_URL: bouncer.urlFor(db.name) })
    assert.equal(pooledTwice.code, 1, pooledTwice.stderr)
    assert.match(pooledTwice.stderr, /POOLED_CONNECTION.*not through a pooler/s)
  })

  test('with USER_ENGINE_MIGRATION_URL the cases pass through the pooler, each in a database of its own, none left', async (t) => {
    const before = await conformanceDatabases(db)
    const run = await runCli(
      [
        'conformance',
        '--json',
        '--database-url',
        bouncer.urlFor(db.name),
        ...SUITES.flatMap((s) => ['--suite', s]),
      ],
      { USER_ENGINE_MIGRATION_URL: db.url },
    )
    assert.equal(run.code, 0, `${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`)
    const report = JSON.parse(run.stdout) as {
      target: string
      passed: number
      failed: number
      skipped: number
    }
    t.diagnostic(
      `suites ${SUITES.join(',')}: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`,
    )
    assert.match(report.target, /through a pooler, a database of its own per case that needs one/)
    assert.equal(report.failed, 0)
    assert.ok(report.passed > 10, `passed ${report.passed}`)
    assert.deepEqual(await conformanceDatabases(db), before, 'no case database left behind')
  })
})
