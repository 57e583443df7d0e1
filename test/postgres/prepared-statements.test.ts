import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import pg from 'pg'
import { isUserEngineError } from '../../src/domain/errors.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { createTestDatabase, postgresSkip, type TestDatabase } from '../support/services.js'

const skip = await postgresSkip()

describe('prepared statements on the node-postgres store', { skip }, () => {
  const dbs: TestDatabase[] = []
  after(async () => {
    for (const db of dbs) await db.drop()
  })

  /** The statements prepared on the pool's one connection after a registration and reads (findSession's too). */
  async function preparedAfterWork(preparedStatements: boolean | undefined): Promise<string[]> {
    const db = await createTestDatabase('ue_prepared', LATEST_SCHEMA_VERSION)
    dbs.push(db)
    const pool = new pg.Pool({ connectionString: db.url, max: 1 })
    pool.on('error', () => {})
    try {
      const store = await createNodePostgresStore({
        pool,
        ...(preparedStatements === undefined ? {} : { preparedStatements }),
      })
      await store.transaction('ten_p', async (tx) => {
        tx.putTenant({ id: 'ten_p', name: 'P', status: 'active' }, { mustNotExist: true })
      })
      for (let i = 0; i < 3; i++) await store.getTenant('ten_p')
      // findSession's text-row query (no Describe) prepares by the same rule.
      for (let i = 0; i < 3; i++) assert.equal(await store.findSession('ten_p', 'ses_none'), null)
      await store.close()
      const { rows } = await pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements')
      return rows.map((r) => r.name).sort()
    } finally {
      await pool.end()
    }
  }

  test('on by default: each statement is prepared once per connection, under a name from its text', async () => {
    const names = await preparedAfterWork(undefined)
    assert.ok(names.length >= 2, `prepared: ${names.join(', ')}`)
    assert.ok(names.every((n) => /^ue_[0-9a-f]{24}$/.test(n)))
    assert.equal(new Set(names).size, names.length)
  })

  test('preparedStatements: false prepares nothing (for poolers that cannot carry them)', async () => {
    assert.deepEqual(await preparedAfterWork(false), [])
  })

  test('a non-boolean preparedStatements is VALIDATION', async () => {
    await assert.rejects(
      // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
      createNodePostgresStore({ preparedStatements: 'yes' as any }),
      (e) => isUserEngineError(e, 'VALIDATION'),
    )
  })
})
