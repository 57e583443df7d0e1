import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { readSchemaCatalog } from '../../src/store/postgres/schema/catalog.js'
import { MIGRATIONS } from '../../src/store/postgres/schema/manifest.js'
import { createMigrator } from '../../src/store/postgres/schema/runner.js'
import { generateSchemaSql } from '../../src/store/postgres/schema/schema-sql.js'
import { migrationsDirectory } from '../../src/store/postgres/schema/sql-files.js'
import { splitSqlStatements } from '../../src/store/postgres/schema/statements.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { SQL_ADAPTERS, type TestDb } from '../support/adapters.js'

const schemaSql = () => readFileSync(join(migrationsDirectory(), 'schema.sql'), 'utf8')

test('migrations/postgres/schema.sql is up to date (regenerate: npx tsx scripts/generate-schema.ts)', () => {
  assert.equal(schemaSql(), generateSchemaSql())
})

test('schema.sql holds every migration in order and the history rows', () => {
  const text = schemaSql()
  let at = -1
  for (const m of MIGRATIONS) {
    const next = text.indexOf(`-- ==== ${m.file}`)
    assert.ok(next > at, `${m.file} in order`)
    at = next
    assert.ok(text.includes(`(${m.version}, '${m.name}', '${m.checksum}', 0)`), `history row ${m.version}`)
  }
})

test('splitSqlStatements splits at top-level semicolons only', () => {
  const sql = `-- a comment; with a semicolon
CREATE TABLE a (x text DEFAULT ';');
/* block; comment */ CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;
SELECT "we;ird", E'it\\'s;', 'it''s;' ;
SELECT $$;$$
-- trailing comment only`
  assert.deepEqual(splitSqlStatements(sql), [
    `-- a comment; with a semicolon\nCREATE TABLE a (x text DEFAULT ';')`,
    `/* block; comment */ CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$`,
    `SELECT "we;ird", E'it\\'s;', 'it''s;'`,
    `SELECT $$;$$\n-- trailing comment only`,
  ])
  assert.deepEqual(splitSqlStatements('  -- nothing\n'), [])
})

for (const adapter of SQL_ADAPTERS) {
  describe(`schema.sql on ${adapter.name}`, { skip: await adapter.skip() }, () => {
    const dbs: TestDb[] = []
    after(async () => {
      await Promise.all(dbs.map((db) => db.drop()))
    })

    test('schema.sql on an empty database gives the catalog of every migration run in order', async () => {
      // The migrated database is a copy of the image every migration built, run in order by the runner.
      const [bootstrapped, migrated] = [
        await adapter.database(0),
        await adapter.database(LATEST_SCHEMA_VERSION),
      ]
      dbs.push(bootstrapped, migrated)
      const a = await bootstrapped.driver()
      // Statement by statement with autocommit, as psql -f does: CONCURRENTLY refuses a transaction block.
      for (const statement of splitSqlStatements(schemaSql())) await a.exec(statement)
      const b = await migrated.driver()

      const [ca, cb] = [await readSchemaCatalog(a), await readSchemaCatalog(b)]
      assert.deepEqual(ca, cb)
      assert.deepEqual(ca.tables, [
        'user_engine_audit',
        'user_engine_outbox',
        'user_engine_records',
        'user_engine_schema_versions',
        'user_engine_throttle',
      ])
      assert.ok(ca.indexes.length >= 9)
      assert.ok(!ca.indexes.some((i) => i.endsWith(' INVALID')))
      assert.ok(ca.functions.some((f) => f.includes('user_engine_commit')))
      assert.ok(ca.columns.includes('user_engine_records.record_id text collate C not null'))

      // A bootstrapped database is at the latest version: the runner finds nothing to do.
      const status = await createMigrator(a).validate()
      assert.equal(status.currentVersion, LATEST_SCHEMA_VERSION)
      assert.deepEqual((await createMigrator(a).migrate()).applied, [])
    })
  })
}
