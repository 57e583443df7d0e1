// migrate's wait for another migrator's lock: --lock-timeout, else USER_ENGINE_MIGRATION_LOCK_TIMEOUT, else
// the store's 60 s. A bad value is a usage error; on a server whose lock another session holds, the wait ends
// at the value given with MIGRATION_LOCK_TIMEOUT and nothing applied.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { MIGRATION_LOCK_KEY } from '../../src/store/postgres/schema/lock.js'
import { ADAPTERS } from '../support/adapters.js'
import { createTestDatabase, postgresSkip, rawClient } from '../support/services.js'
import { runCli } from './run-cli.js'

test('a malformed --lock-timeout or USER_ENGINE_MIGRATION_LOCK_TIMEOUT is a usage error', async () => {
  const flag = await runCli(['migrate', '--json', '--database-url', 'memory:', '--lock-timeout', 'soon'])
  assert.equal(flag.code, 2, flag.stderr)
  assert.match(flag.stdout, /--lock-timeout must be a duration/)
  const env = await runCli(['migrate', '--json', '--database-url', 'memory:'], {
    USER_ENGINE_MIGRATION_LOCK_TIMEOUT: '-1',
  })
  assert.equal(env.code, 2, env.stderr)
  assert.match(env.stdout, /USER_ENGINE_MIGRATION_LOCK_TIMEOUT must be a duration/)
})

const serverSkip = ADAPTERS.some((a) => a.name === 'postgres')
  ? await postgresSkip()
  : 'postgres not selected'
describe('migrate waits --lock-timeout for a held lock (server)', { skip: serverSkip }, () => {
  test('with the lock held elsewhere, migrate fails MIGRATION_LOCK_TIMEOUT after about the value given', async () => {
    const db = await createTestDatabase('ue_lockt')
    const holder = await rawClient(db.url)
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY])
      for (const [args, env] of [
        [['--lock-timeout', '300ms'], {}],
        [[], { USER_ENGINE_MIGRATION_LOCK_TIMEOUT: '300ms' }],
      ] as const) {
        const started = Date.now()
        const run = await runCli(['migrate', '--json', '--database-url', db.url, ...args], { ...env })
        const waited = Date.now() - started
        assert.equal(run.code, 1, run.stderr)
        const printed = JSON.parse(run.stdout) as {
          error: { code: string; details: { lockTimeoutMs: number } }
        }
        assert.equal(printed.error.code, 'MIGRATION_LOCK_TIMEOUT')
        assert.equal(printed.error.details.lockTimeoutMs, 300)
        assert.ok(waited < 20_000, `waited ${waited} ms, not the default 60 s`)
      }
      const tables = await holder.query(
        "SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE 'user_engine%'",
      )
      assert.equal(tables.rows[0].n, 0, 'nothing applied')
    } finally {
      await holder.end()
      await db.drop()
    }
  })
})
