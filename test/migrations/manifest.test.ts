import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { MIGRATIONS } from '../../src/store/postgres/schema/manifest.js'
import {
  checksumOf,
  migrationStatements,
  migrationsDirectory,
  readMigrationSql,
} from '../../src/store/postgres/schema/sql-files.js'
import { splitSqlStatements } from '../../src/store/postgres/schema/statements.js'
import { DIAGNOSTIC_COUNT_KEYS, LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { openPgliteImage } from '../support/images.js'

test('manifest versions are consecutive from 1 and LATEST_SCHEMA_VERSION is the last', () => {
  assert.deepEqual(
    MIGRATIONS.map((m) => m.version),
    MIGRATIONS.map((_, i) => i + 1),
  )
  assert.equal(LATEST_SCHEMA_VERSION, MIGRATIONS.at(-1)?.version)
})

test('every checksum matches its SQL file, with line endings normalized', () => {
  for (const m of MIGRATIONS) {
    const raw = readFileSync(join(migrationsDirectory(), m.file), 'utf8')
    assert.equal(checksumOf(raw), m.checksum, `checksum of ${m.file}`)
    assert.equal(checksumOf(raw.replace(/\n/g, '\r\n')), m.checksum, `CRLF checkout of ${m.file}`)
  }
})

test('every numbered SQL file is in the manifest, in order, and each non-transactional entry says why', () => {
  const files = readdirSync(migrationsDirectory())
    .filter((f) => /^\d{4}_.*\.sql$/.test(f))
    .sort()
  assert.deepEqual(
    files,
    MIGRATIONS.map((m) => m.file),
  )
  for (const m of MIGRATIONS) {
    assert.equal(m.file.slice(0, 4), String(m.version).padStart(4, '0'))
    if (!m.transactional)
      assert.ok(m.nonTransactionalReason, `${m.file} must say why it is non-transactional`)
  }
})

test('migrationStatements: a transactional file whole; a non-transactional one split, $$ bodies kept whole', () => {
  for (const m of MIGRATIONS) {
    const sql = readMigrationSql(m)
    const statements = migrationStatements(m)
    if (m.transactional) {
      assert.deepEqual(statements, [sql], `${m.file}: one script`)
      continue
    }
    assert.ok(statements.length >= 1, `${m.file}: at least one statement`)
    for (const statement of statements) {
      // Every dollar quote opened in a statement is closed in it: no body was cut at an inner semicolon.
      assert.equal((statement.match(/\$\$/g) ?? []).length % 2, 0, `${m.file}: a $$ body was cut`)
      assert.ok(!/;\s*$/.test(statement), `${m.file}: a statement keeps its terminator`)
    }
    assert.ok(
      statements.some((s) => /CONCURRENTLY/.test(s)),
      `${m.file}: holds the concurrent builds`,
    )
  }
})

test('the in-memory store reports its schema version from the manifest', async () => {
  const store = new InMemoryUserEngineStore()
  assert.equal((await store.readiness()).schemaVersion, 0)
  const result = await store.migrate()
  assert.deepEqual(
    result.applied.map((a) => a.version),
    MIGRATIONS.map((m) => m.version),
  )
  const diagnostics = await store.diagnostics()
  assert.equal(diagnostics.schemaVersion, LATEST_SCHEMA_VERSION)
  assert.deepEqual(Object.keys(diagnostics.counts).sort(), [...DIAGNOSTIC_COUNT_KEYS].sort())
})

test('the SQL files apply in order to an embedded PGlite database: valid Postgres', async () => {
  // Empty, never migrated: loaded from the process's initdb image rather than running initdb again.
  const db = await openPgliteImage(0)
  try {
    for (const m of MIGRATIONS) {
      // As the runner does: a non-transactional migration runs one statement at a time.
      if (m.transactional) await db.exec(readMigrationSql(m))
      else for (const statement of splitSqlStatements(readMigrationSql(m))) await db.exec(statement)
    }
    const tables = await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    )
    assert.deepEqual(
      tables.rows.map((r) => r.table_name),
      [
        'user_engine_audit',
        'user_engine_outbox',
        'user_engine_records',
        'user_engine_schema_versions',
        'user_engine_throttle',
      ],
    )
    // Every key and index leads with tenant_id (the schema history table has no tenant), except the relay's
    // claim index: claims span tenants in due order (0005 says why).
    const indexes = await db.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'user_engine_schema_versions'`,
    )
    assert.ok(indexes.rows.length >= 8)
    const crossTenant = new Set(['user_engine_outbox_claim_order_idx'])
    for (const ix of indexes.rows) {
      if (crossTenant.has(ix.indexname)) continue
      assert.match(ix.indexdef, /\(tenant_id( COLLATE "C")?[,)]/, ix.indexname)
    }
    assert.ok(indexes.rows.some((ix) => crossTenant.has(ix.indexname)))
  } finally {
    await db.close()
  }
})
