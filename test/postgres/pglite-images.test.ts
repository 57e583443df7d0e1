import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, test } from 'node:test'
import { createPgliteDriver } from '../../src/store/postgres/driver/pglite-driver.js'
import { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { openPgliteImage, releasePgliteImage } from '../support/images.js'

const tableCount = async (db: Awaited<ReturnType<typeof openPgliteImage>>) =>
  (
    await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'`,
    )
  ).rows[0]?.n

describe('PGlite images: a released database is emptied back to its image and reused', () => {
  test('at the latest version: the same instance, its rows gone, identities restarted, the history kept', async () => {
    const db = await openPgliteImage(LATEST_SCHEMA_VERSION)
    const store = await PostgresUserEngineStore.open(await createPgliteDriver({ db }))
    await store.transaction('t_pool', async (tx) => {
      tx.putTenant({ id: 't_pool', name: 'Pool', status: 'active' }, { mustNotExist: true })
    })
    await store.close()
    await db.exec('SET search_path = nowhere')
    await releasePgliteImage(db, LATEST_SCHEMA_VERSION)

    const again = await openPgliteImage(LATEST_SCHEMA_VERSION)
    try {
      assert.equal(again, db, 'the released instance is handed out again')
      const reopened = await PostgresUserEngineStore.open(await createPgliteDriver({ db: again }))
      assert.equal((await reopened.diagnostics()).schemaVersion, LATEST_SCHEMA_VERSION)
      assert.deepEqual(
        Object.values((await reopened.diagnostics()).counts).filter((n) => n !== 0),
        [],
      )
      assert.equal(await reopened.getTenant('t_pool'), null)
      await reopened.close()
      const history = await again.query('SELECT count(*)::int AS n FROM user_engine_schema_versions')
      assert.deepEqual(history.rows, [{ n: LATEST_SCHEMA_VERSION }])
      const path = await again.query<{ search_path: string }>('SHOW search_path')
      assert.notEqual(path.rows[0]?.search_path, 'nowhere', 'session settings reset')
    } finally {
      await again.close()
    }
  })

  test('a database whose catalog changed (a table added, a history row planted) is closed, not reused', async () => {
    for (const change of [
      'CREATE TABLE stray (x int)',
      `INSERT INTO user_engine_schema_versions (version, name, checksum, execution_ms) VALUES (99, 'x', 'x', 0)`,
      'DROP INDEX user_engine_records_user_idx',
    ]) {
      const db = await openPgliteImage(LATEST_SCHEMA_VERSION)
      await db.exec(change)
      await releasePgliteImage(db, LATEST_SCHEMA_VERSION)
      assert.equal(db.closed, true, `${change}: closed`)
      const next = await openPgliteImage(LATEST_SCHEMA_VERSION)
      assert.notEqual(next, db)
      await next.close()
    }
  })

  test('inside a transaction left open, the database is closed, not reused', async () => {
    const db = await openPgliteImage(LATEST_SCHEMA_VERSION)
    await db.exec('BEGIN')
    await releasePgliteImage(db, LATEST_SCHEMA_VERSION)
    assert.equal(db.closed, true)
  })

  test('at version 0: a migrated database goes back to never migrated', async () => {
    const db = await openPgliteImage(0)
    const store = await PostgresUserEngineStore.open(await createPgliteDriver({ db }))
    await store.migrate()
    await store.close()
    assert.ok(((await tableCount(db)) ?? 0) > 0)
    await releasePgliteImage(db, 0)
    const again = await openPgliteImage(0)
    try {
      assert.equal(again, db)
      assert.equal(await tableCount(again), 0)
      const fresh = await PostgresUserEngineStore.open(await createPgliteDriver({ db: again }))
      assert.equal((await fresh.migrate()).toVersion, LATEST_SCHEMA_VERSION)
      await fresh.close()
    } finally {
      await again.close()
    }
  })

  test('releases at once keep at most two per version and close the rest', async () => {
    const dbs = await Promise.all(Array.from({ length: 3 }, () => openPgliteImage(LATEST_SCHEMA_VERSION)))
    await Promise.all(dbs.map((db) => releasePgliteImage(db, LATEST_SCHEMA_VERSION)))
    assert.equal(dbs.filter((db) => !db.closed).length, 2)
    const taken = [await openPgliteImage(LATEST_SCHEMA_VERSION), await openPgliteImage(LATEST_SCHEMA_VERSION)]
    assert.deepEqual(
      new Set(taken),
      new Set(dbs.filter((db) => !db.closed)),
      'the two kept are the ones handed out next',
    )
    for (const db of taken) await db.close()
  })

  test('a released database does not keep its process alive', () => {
    // The run's image directory, read only, so the child does not run initdb again.
    const script = `
      import { readFile } from 'node:fs/promises'
      import { join } from 'node:path'
      import { openPgliteImage, releasePgliteImage, setPgliteImageCache } from './src/store/postgres/pglite-images.ts'
      const dir = process.env.USER_ENGINE_TEST_IMAGES
      if (dir) setPgliteImageCache({
        get: (name) => readFile(join(dir, name + '.tar')).then((b) => new Blob([b]), () => undefined),
        set: async () => {},
      })
      const db = await openPgliteImage(0)
      await releasePgliteImage(db, 0)
      console.log(db.closed ? 'closed' : 'kept')`
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, USER_ENGINE_TEST_IMAGES: process.env.USER_ENGINE_TEST_IMAGES ?? '' },
    })
    assert.equal(run.status, 0, run.stderr)
    assert.equal(run.stdout.trim(), 'kept', 'kept for reuse, and the process still exited')
  })
})
