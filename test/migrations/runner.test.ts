import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import type pg from 'pg'
import { isUserEngineError } from '../../src/domain/errors.js'
import { Secret } from '../../src/domain/secret.js'
import type { SqlSession } from '../../src/store/postgres/driver/driver.js'
import { SanitizedDatabaseError } from '../../src/store/postgres/driver/errors.js'
import { MIGRATION_LOCK_KEY } from '../../src/store/postgres/schema/lock.js'
import { MIGRATIONS, type MigrationEntry } from '../../src/store/postgres/schema/manifest.js'
import { createMigrator, type MigrationProgress } from '../../src/store/postgres/schema/runner.js'
import { checksumOf, readMigrationSql } from '../../src/store/postgres/schema/sql-files.js'
import { barrier, deferred } from '../../src/testing/shared/barrier.js'
import { sleep } from '../../src/testing/shared/expect.js'
import { SQL_ADAPTERS, type TestDb } from '../support/adapters.js'
import { rawClient } from '../support/services.js'

const LATEST = MIGRATIONS.at(-1)!.version
const ALL_VERSIONS = MIGRATIONS.map((m) => m.version)

async function history(s: SqlSession): Promise<Array<{ version: number; checksum: string }>> {
  const present = await s.query<{ p: boolean }>(
    `SELECT to_regclass('user_engine_schema_versions') IS NOT NULL AS p`,
  )
  if (!present.rows[0]?.p) return []
  const { rows } = await s.query<{ version: number; checksum: string }>(
    'SELECT version, checksum FROM user_engine_schema_versions ORDER BY version',
  )
  return rows.map((r) => ({ version: Number(r.version), checksum: r.checksum }))
}

const tableExists = async (s: SqlSession, name: string) =>
  (await s.query<{ p: boolean }>('SELECT to_regclass($1) IS NOT NULL AS p', [name])).rows[0]?.p === true

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown }

/** A promise's outcome as a value: the rejection is handled the moment the promise exists. */
const settled = <T>(promise: Promise<T>): Promise<Settled<T>> =>
  promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  )

function resultOf<T>(outcome: Settled<T>): T {
  if (!outcome.ok) throw outcome.error
  return outcome.value
}

function errorOf(outcome: Settled<unknown>): unknown {
  if (outcome.ok) assert.fail('expected an error, but it succeeded')
  return outcome.error
}

/** Resolves once some backend waits on a lock that backend `pid` holds (polled in pg_locks, which is live). */
async function blockedBy(client: pg.Client, pid: number, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND $1 = ANY(pg_blocking_pids(pid))',
      [pid],
    )
    if (rows[0]!.n > 0) return
    if (Date.now() > until) assert.fail(`no session waited on backend ${pid} within ${timeoutMs} ms`)
    await sleep(5)
  }
}

for (const adapter of SQL_ADAPTERS) {
  describe(`migration runner on ${adapter.name}`, { skip: await adapter.skip() }, () => {
    const dbs: TestDb[] = []
    /** A database of its own at `schemaVersion`; the default, 0, is empty: the runner starts from nothing. */
    const fresh = async (schemaVersion = 0) => {
      const db = await adapter.database(schemaVersion)
      dbs.push(db)
      return db
    }
    after(async () => {
      await Promise.all(dbs.map((db) => db.drop()))
    })

    test('migrate from empty returns a result object; a second run applies nothing', async () => {
      const db = await fresh()
      const driver = await db.driver()
      const events: MigrationProgress[] = []
      const first = await createMigrator(driver, { onProgress: (e) => events.push(e) }).migrate()
      assert.equal(first.fromVersion, 0)
      assert.equal(first.toVersion, LATEST)
      assert.deepEqual(
        first.applied.map((a) => [a.version, a.name]),
        MIGRATIONS.map((m) => [m.version, m.name]),
      )
      for (const a of first.applied) assert.ok(Number.isInteger(a.executionMs) && a.executionMs >= 0)
      assert.ok(first.lockWaitMs >= 0)
      assert.deepEqual(
        events.filter((e) => e.type === 'migration-applied').map((e) => (e as { version: number }).version),
        ALL_VERSIONS,
      )
      const second = await createMigrator(driver).migrate()
      assert.deepEqual(second, {
        fromVersion: LATEST,
        toVersion: LATEST,
        applied: [],
        lockWaitMs: second.lockWaitMs,
      })
      assert.deepEqual(
        await history(driver),
        MIGRATIONS.map((m) => ({ version: m.version, checksum: m.checksum })),
      )
      const status = await createMigrator(driver).status()
      assert.equal(status.currentVersion, LATEST)
      assert.deepEqual(status.pending, [])
      assert.deepEqual(status.drift, [])
    })

    test('plan() returns the SQL it would run and changes nothing', async () => {
      const db = await fresh()
      const driver = await db.driver()
      const plan = await createMigrator(driver).plan()
      assert.equal(plan.fromVersion, 0)
      assert.equal(plan.toVersion, LATEST)
      assert.deepEqual(
        plan.migrations.map((m) => [m.version, m.sql]),
        MIGRATIONS.map((m) => [m.version, readMigrationSql(m)]),
      )
      const nonTx = plan.migrations.find((m) => !m.transactional)
      assert.ok(nonTx && nonTx.statements.length === 1 && /CONCURRENTLY/.test(nonTx.statements[0]!))
      assert.equal(await tableExists(driver, 'user_engine_schema_versions'), false)
      await createMigrator(driver, { targetVersion: 1 }).migrate()
      const rest = await createMigrator(driver).plan()
      assert.deepEqual(
        rest.migrations.map((m) => m.version),
        ALL_VERSIONS.filter((v) => v > 1),
      )
    })

    test('a failing migration rolls back: previous version, no history row, MIGRATION_FAILED with the version', async () => {
      const db = await fresh(LATEST)
      const driver = await db.driver()
      const bad = 'CREATE TABLE ue_half_done (id integer);\nSELECT * FROM ue_no_such_table;\n'
      const broken: MigrationEntry = {
        version: LATEST + 1,
        name: 'broken',
        file: 'broken.sql',
        checksum: checksumOf(bad),
        transactional: true,
        recordTypes: [],
        purpose: 'test',
      }
      const migrator = createMigrator(driver, {
        manifest: [...MIGRATIONS, broken],
        loadSql: (m) => (m === broken ? bad : readMigrationSql(m)),
      })
      const error = await migrator.migrate().then(
        () => assert.fail('expected MIGRATION_FAILED'),
        (e: unknown) => e,
      )
      assert.ok(isUserEngineError(error, 'MIGRATION_FAILED'), String(error))
      assert.equal(error.details.version, LATEST + 1)
      assert.equal(error.details.sqlState, '42P01')
      assert.ok(error.cause instanceof SanitizedDatabaseError)
      // The cause keeps codes only: no query text, parameters or DETAIL.
      for (const key of ['query', 'params', 'detail', 'internalQuery', 'where'])
        assert.equal((error.cause as unknown as Record<string, unknown>)[key], undefined, key)
      assert.deepEqual(
        (await history(driver)).map((h) => h.version),
        ALL_VERSIONS,
      )
      assert.equal(await tableExists(driver, 'ue_half_done'), false)
      assert.equal((await createMigrator(driver).status()).currentVersion, LATEST)
      // The lock was released: another run proceeds at once.
      assert.deepEqual((await createMigrator(driver, { lockTimeoutMs: 500 }).migrate()).applied, [])
    })

    test('SQL that does not match its manifest checksum is refused before anything runs', async () => {
      const db = await fresh()
      const driver = await db.driver()
      const error = await createMigrator(driver, { loadSql: (m) => `${readMigrationSql(m)}\n-- edited` })
        .migrate()
        .catch((e: unknown) => e)
      assert.ok(isUserEngineError(error, 'MIGRATION_FAILED'))
      assert.deepEqual(await history(driver), [])
    })

    test('drift (a tampered checksum) is refused with SCHEMA_DRIFT and nothing changes', async () => {
      const db = await fresh(2)
      const driver = await db.driver()
      await driver.query(`UPDATE user_engine_schema_versions SET checksum = 'tampered' WHERE version = 1`)
      const before = await history(driver)
      for (const run of [
        () => createMigrator(driver).migrate(),
        () => createMigrator(driver).validate(),
        () => createMigrator(driver).plan(),
        () => db.store(),
      ]) {
        const error = await run().catch((e: unknown) => e)
        assert.ok(isUserEngineError(error, 'SCHEMA_DRIFT'), String(error))
        assert.match(error.message, /1/)
      }
      assert.deepEqual(await history(driver), before)
      assert.equal(await tableExists(driver, 'user_engine_outbox_due_idx'), false)
      const status = await createMigrator(driver).status()
      assert.deepEqual(
        status.drift.map((d) => [d.version, d.actualChecksum]),
        [[1, 'tampered']],
      )
    })

    test('a database newer than the code is refused with SCHEMA_NEWER_THAN_CODE and nothing changes', async () => {
      const db = await fresh(1)
      const driver = await db.driver()
      await driver.query(
        `INSERT INTO user_engine_schema_versions (version, name, checksum, execution_ms) VALUES (99, 'future', 'x', 0)`,
      )
      const before = await history(driver)
      for (const run of [() => createMigrator(driver).migrate(), () => db.store()]) {
        const error = await run().catch((e: unknown) => e)
        assert.ok(isUserEngineError(error, 'SCHEMA_NEWER_THAN_CODE'), String(error))
        assert.equal(error.details.schemaVersion, 99)
      }
      assert.deepEqual(await history(driver), before)
      // Version 2's index was not created.
      assert.equal(await tableExists(driver, 'user_engine_identifier_value_key'), false)
    })

    test('upgrade: data written at version 1 reads back intact after migrating to latest', async () => {
      const db = await fresh(1)
      const strict = await db.store()
      assert.deepEqual(await strict.readiness(), {
        ready: false,
        schemaVersion: 1,
        latestVersion: LATEST,
        reason: 'SCHEMA_NOT_READY',
      })
      await assert.rejects(strict.getUser('t1', 'u1'), (e) => isUserEngineError(e, 'SCHEMA_NOT_READY'))
      await strict.close()

      const old = await db.store({ requireLatestSchema: false })
      assert.equal((await old.readiness()).ready, true)
      await old.transaction('tenant_up', async (tx) => {
        tx.putTenant({ id: 'tenant_up', name: 'Upgrade', status: 'active' }, { mustNotExist: true })
        tx.enqueue({ type: 'tenant.created' })
      })
      for (const [i, userId] of ['user_a', 'user_b'].entries()) {
        await old.transaction('tenant_up', async (tx) => {
          tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
          tx.putIdentifier(
            { id: `idf_${userId}`, userId, kind: 'email', value: `${userId}@example.com`, verified: i === 0 },
            { mustNotExist: true },
          )
          tx.putProfile(
            { userId, attributes: { displayName: `Name ${i}`, age: 30 + i } },
            { mustNotExist: true },
          )
          tx.putFactor(
            {
              id: `fac_${userId}`,
              userId,
              kind: 'password',
              secret: new Secret({ hash: `hash-${userId}` }),
              state: { v: 1 },
            },
            { mustNotExist: true },
          )
          tx.appendAudit({ action: 'user.created', userId, data: { n: i } })
          tx.enqueue({ type: 'user.created', userId, payload: { n: i } })
        })
      }
      const result = await old.migrate()
      assert.equal(result.fromVersion, 1)
      assert.deepEqual(
        result.applied.map((a) => a.version),
        ALL_VERSIONS.filter((v) => v > 1),
      )
      await old.close()

      const store = await db.store()
      assert.equal((await store.readiness()).ready, true)
      assert.equal((await store.getTenant('tenant_up'))?.name, 'Upgrade')
      const users = await store.listUsers('tenant_up')
      assert.deepEqual(
        users.items.map((u) => [u.id, u.version]),
        [
          ['user_a', 1],
          ['user_b', 1],
        ],
      )
      assert.equal(
        (await store.findUserByIdentifier('tenant_up', 'email', 'user_b@example.com'))?.id,
        'user_b',
      )
      await store.transaction('tenant_up', async (tx) => {
        assert.deepEqual((await tx.getProfile('user_a'))?.attributes, { displayName: 'Name 0', age: 30 })
        const [factor] = await tx.listFactors('user_b')
        assert.deepEqual(factor?.secret.reveal(), { hash: 'hash-user_b' })
        assert.equal((await tx.listIdentifiers('user_a'))[0]?.verified, true)
      })
      const audit = await store.listAudit('tenant_up')
      assert.deepEqual(
        audit.items.map((a) => [a.action, a.userId, a.data]),
        [
          ['user.created', 'user_a', { n: 0 }],
          ['user.created', 'user_b', { n: 1 }],
        ],
      )
      assert.deepEqual(
        (await store.outbox.listForAggregate('tenant_up', 'user_b')).map((e) => [
          e.type,
          e.sequence,
          e.payload,
        ]),
        [['user.created', 1, { n: 1 }]],
      )
      // At version 2+ the unique index exists: a duplicate identifier value is refused.
      const dup = await store
        .transaction('tenant_up', async (tx) => {
          tx.putUser({ id: 'user_c', status: 'active' }, { mustNotExist: true })
          tx.putIdentifier(
            {
              id: 'idf_user_c',
              userId: 'user_c',
              kind: 'email',
              value: 'user_a@example.com',
              verified: false,
            },
            { mustNotExist: true },
          )
        })
        .catch((e: unknown) => e)
      assert.ok(isUserEngineError(dup, 'DUPLICATE_IDENTIFIER'))
      await store.close()
    })

    test('a store migrates through the runner and reports ready', async () => {
      const db = await fresh()
      const store = await db.store()
      assert.equal((await store.readiness()).ready, false)
      await assert.rejects(
        store.transaction('t1', async () => {}),
        (e) => isUserEngineError(e, 'SCHEMA_NOT_READY'),
      )
      const result = await store.migrate()
      assert.deepEqual(
        result.applied.map((a) => a.version),
        ALL_VERSIONS,
      )
      assert.deepEqual((await store.migrate()).applied, [])
      assert.equal((await store.readiness()).ready, true)
      await store.close()
    })

    if (adapter.name === 'postgres') {
      test('lock timeout: another session holding the migration lock => MIGRATION_LOCK_TIMEOUT, nothing changed', async () => {
        const db = await fresh()
        const holder = await rawClient(db.url!)
        try {
          await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY])
          const driver = await db.driver()
          const started = Date.now()
          const error = await createMigrator(driver, { lockTimeoutMs: 300 })
            .migrate()
            .catch((e: unknown) => e)
          assert.ok(isUserEngineError(error, 'MIGRATION_LOCK_TIMEOUT'), String(error))
          assert.ok(Date.now() - started >= 300)
          assert.equal(await tableExists(driver, 'user_engine_schema_versions'), false)

          // Released while a migrator waits: it proceeds and reports the wait. The migrator's own progress
          // says when it has waited 300 ms; its promise is handled from the start, whenever it settles.
          const waited = deferred()
          const waiting = settled(
            createMigrator(driver, {
              lockTimeoutMs: 10_000,
              onProgress: (e) => {
                if (e.type === 'lock-waiting' && e.waitedMs >= 300) waited.resolve()
              },
            }).migrate(),
          )
          await Promise.race([waited.promise, waiting])
          await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY])
          const result = resultOf(await waiting)
          assert.ok(result.lockWaitMs >= 250, `lockWaitMs ${result.lockWaitMs}`)
          assert.equal(result.toVersion, LATEST)
        } finally {
          await holder.end()
        }
      })

      test('4 concurrent migrators on one empty database: all succeed, each version applied once', async () => {
        const db = await fresh()
        const drivers = await Promise.all([1, 2, 3, 4].map(() => db.driver()))
        const results = await Promise.all(
          drivers.map((d) => createMigrator(d, { lockTimeoutMs: 30_000 }).migrate()),
        )
        const applied = results.flatMap((r) => r.applied.map((a) => a.version)).sort((a, b) => a - b)
        assert.deepEqual(applied, ALL_VERSIONS)
        for (const r of results) assert.equal(r.toVersion, LATEST)
        assert.deepEqual(
          (await history(drivers[0]!)).map((h) => h.version),
          ALL_VERSIONS,
        )
      })

      test('racing registrations of one identifier at version 2+: exactly one wins', async () => {
        const db = await fresh(LATEST)
        const store = await db.store()
        await store.transaction('tenant_race', async (tx) => {
          tx.putTenant({ id: 'tenant_race', name: 'Race', status: 'active' }, { mustNotExist: true })
        })
        // Every racer has read "not taken" before any commits (the pool holds a connection for each).
        const allRead = barrier(8, 30_000)
        const attempts = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            store.transaction('tenant_race', async (tx) => {
              assert.equal(await tx.findIdentifier('email', 'race@example.com'), null)
              await allRead()
              tx.putUser({ id: `racer_${i}`, status: 'active' }, { mustNotExist: true })
              tx.putIdentifier(
                {
                  id: `idf_racer_${i}`,
                  userId: `racer_${i}`,
                  kind: 'email',
                  value: 'race@example.com',
                  verified: false,
                },
                { mustNotExist: true },
              )
            }),
          ),
        )
        const won = attempts.filter((a) => a.status === 'fulfilled')
        assert.equal(won.length, 1)
        for (const a of attempts) {
          if (a.status === 'rejected')
            assert.ok(isUserEngineError(a.reason, 'DUPLICATE_IDENTIFIER'), String(a.reason))
        }
        assert.equal((await store.listUsers('tenant_race')).items.length, 1)
        await store.close()
      })

      test('a registration waiting on an uncommitted one of the same identifier fails DUPLICATE_IDENTIFIER when it commits (23505 from the unique index)', async () => {
        const db = await fresh(LATEST)
        const store = await db.store()
        await store.transaction('tenant_ix', async (tx) => {
          tx.putTenant({ id: 'tenant_ix', name: 'Index', status: 'active' }, { mustNotExist: true })
        })
        const other = await rawClient(db.url!)
        const watcher = await rawClient(db.url!)
        try {
          const otherPid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid
          // An uncommitted registration holds the value's key in user_engine_identifier_value_key. Since 0006
          // that unique index is the commit function's only uniqueness check: the second insert waits on it.
          await other.query('BEGIN')
          await other.query(`SELECT user_engine_commit($1, $2::jsonb, '[]', '[]', now())`, [
            'tenant_ix',
            JSON.stringify([
              {
                op: 'insert',
                type: 'identifier',
                id: 'idf_first',
                userId: 'first',
                payload: { kind: 'email', value: 'ix@example.com', verified: false },
              },
            ]),
          ])
          // Handled from the start: however early it settles, it is never an unhandled rejection.
          const second = settled(
            store.transaction('tenant_ix', async (tx) => {
              tx.putUser({ id: 'second', status: 'active' }, { mustNotExist: true })
              tx.putIdentifier(
                {
                  id: 'idn_0190f3a2b4c17000a1b2c3d4e5f60718',
                  userId: 'second',
                  kind: 'email',
                  value: 'ix@example.com',
                  verified: false,
                },
                { mustNotExist: true },
              )
            }),
          )
          // The signal, not a pause: the second commit's backend is waiting on a lock `other` holds.
          await Promise.race([blockedBy(watcher, otherPid), second])
          await other.query('COMMIT')
          const error = errorOf(await second)
          assert.ok(isUserEngineError(error, 'DUPLICATE_IDENTIFIER'), String(error))
          assert.equal((error.cause as SanitizedDatabaseError).code, '23505')
          assert.equal((error.cause as SanitizedDatabaseError).constraint, 'user_engine_identifier_value_key')
          assert.equal(error.details.recordId, 'idn_0190f3a2b4c17000a1b2c3d4e5f60718')
          assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /ix@example/)
        } finally {
          await other.end()
          await watcher.end()
          await store.close()
        }
      })
    }
  })
}
