import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { isUserEngineError } from '../../src/domain/errors.js'
import type { SqlDriver, SqlSession } from '../../src/store/postgres/driver/driver.js'
import { createNodePostgresDriver } from '../../src/store/postgres/driver/node-postgres-driver.js'
import { acquireAdvisoryLock, releaseAdvisoryLock } from '../../src/store/postgres/schema/lock.js'
import { createMigrator } from '../../src/store/postgres/schema/runner.js'
import { createTestDatabase, postgresSkip, rawClient, type TestDatabase } from '../support/services.js'

/**
 * What a transaction-mode pooler does to a session: each statement may land on another server connection.
 * Here the statements of one "session" alternate between two real connections.
 */
function transactionPooled(a: SqlDriver, b: SqlDriver): SqlDriver {
  return {
    ...a,
    session: (fn) =>
      a.session((first) =>
        b.session((second) => {
          let turn = 0
          const next = (): SqlSession => (turn++ % 2 === 0 ? first : second)
          return fn({
            query: (sql, params) => next().query(sql, params),
            exec: (sql) => next().exec(sql),
          })
        }),
      ),
  }
}

const skip = await postgresSkip()

describe('schema work behind a transaction-mode pooler', { skip }, () => {
  const dbs: TestDatabase[] = []
  after(async () => {
    for (const db of dbs) await db.drop()
  })

  test('migrate refuses with POOLED_CONNECTION before applying anything, and a direct connection then works', async () => {
    const db = await createTestDatabase('ue_pooled')
    dbs.push(db)
    const [a, b] = [
      await createNodePostgresDriver({ connectionString: db.url }),
      await createNodePostgresDriver({ connectionString: db.url }),
    ]
    try {
      await assert.rejects(createMigrator(transactionPooled(a, b)).migrate(), (e) => {
        assert.ok(isUserEngineError(e, 'POOLED_CONNECTION'), String(e))
        assert.match(e.message, /direct connection to the server/)
        return true
      })
      const status = await createMigrator(a).status()
      assert.equal(status.currentVersion, 0, 'nothing was applied')
      // The lock went back on the connection that took it (the pool's), so a direct run proceeds.
      const result = await createMigrator(a).migrate()
      assert.ok(result.applied.length > 0)
    } finally {
      await a.close()
      await b.close()
    }
  })

  test("a second migrator handed the holder's server connection is refused, not given the lock again", async () => {
    const db = await createTestDatabase('ue_pooled')
    dbs.push(db)
    const driver = await createNodePostgresDriver({ connectionString: db.url })
    const other = await rawClient(db.url)
    const free = async () =>
      (await other.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(42) AND pg_advisory_unlock(42) AS ok'))
        .rows[0]?.ok
    try {
      await driver.session(async (serverConnection) => {
        // Advisory locks are re-entrant per server connection: what a pooler turns into two holders.
        const first = await acquireAdvisoryLock(serverConnection, { key: '42', timeoutMs: 1000 })
        await assert.rejects(acquireAdvisoryLock(serverConnection, { key: '42', timeoutMs: 1000 }), (e) => {
          assert.ok(isUserEngineError(e, 'POOLED_CONNECTION'), String(e))
          assert.match(e.message, /already holds the migration lock for another migrator/)
          return true
        })
        // Another migrator's release unlocks nothing; the holder's does.
        await releaseAdvisoryLock(serverConnection, { ...first, owner: 'someone-else' })
        assert.equal(await free(), false, 'still held by the first migrator')
        await releaseAdvisoryLock(serverConnection, first)
        assert.equal(await free(), true, 'released once, and so free')
      })
    } finally {
      await other.end()
      await driver.close()
    }
  })
})
