import { ErrorCode, SchemaError, UserEngineError, ValidationError } from '../../../domain/errors.js'
import type { AppliedMigration, MigrateResult } from '../../store.js'
import type { SqlDriver, SqlSession } from '../driver/driver.js'
import { sanitizeDatabaseError, sqlState, toStoreError } from '../driver/errors.js'
import {
  acquireAdvisoryLock,
  assertLockHolder,
  type HeldLock,
  MIGRATION_LOCK_KEY,
  releaseAdvisoryLock,
} from './lock.js'
import { MIGRATIONS, type MigrationEntry } from './manifest.js'
import { checksumOf, migrationStatements, readMigrationSql } from './sql-files.js'

export interface MigratorOptions {
  /** How long to wait for another migrator's lock before MIGRATION_LOCK_TIMEOUT. Default 60 000 ms. */
  readonly lockTimeoutMs?: number
  /** The migrations to run; default the package manifest. */
  readonly manifest?: readonly MigrationEntry[]
  /** Reads a migration's SQL; default the file under migrations/postgres. */
  readonly loadSql?: (entry: MigrationEntry) => string | Promise<string>
  /** Stop at this version instead of the manifest's last (upgrade tests, staged rollouts). */
  readonly targetVersion?: number
  /** Called as the run progresses: lock wait, each migration's start and end. */
  readonly onProgress?: (event: MigrationProgress) => void
  /** Advisory lock key; default MIGRATION_LOCK_KEY. */
  readonly lockKey?: string
}

export type MigrationProgress =
  | { readonly type: 'lock-waiting'; readonly waitedMs: number }
  | { readonly type: 'lock-acquired'; readonly lockWaitMs: number }
  | { readonly type: 'migration-started'; readonly version: number; readonly name: string }
  | {
      readonly type: 'migration-applied'
      readonly version: number
      readonly name: string
      readonly executionMs: number
    }

/** A history row: what the database says was applied. */
export interface AppliedHistoryRow {
  readonly version: number
  readonly name: string
  readonly checksum: string
}

/** An applied migration that no longer matches the manifest, or a manifest version missing below the current one. */
export interface DriftEntry {
  readonly version: number
  readonly name: string
  readonly expectedChecksum: string
  /** null when the version is missing from the history though a later one is applied. */
  readonly actualChecksum: string | null
}

export interface MigrationStatus {
  /** The highest applied version; 0 on an empty database. */
  readonly currentVersion: number
  /** The manifest's last version. */
  readonly latestVersion: number
  /** The version `migrate()` brings the database to. */
  readonly targetVersion: number
  readonly applied: readonly AppliedHistoryRow[]
  /** What `migrate()` would apply, in order. */
  readonly pending: readonly MigrationEntry[]
  readonly drift: readonly DriftEntry[]
  /** Applied versions this code does not know: the database is newer than the code. */
  readonly unknownVersions: readonly number[]
}

export interface PlannedMigration {
  readonly version: number
  readonly name: string
  readonly transactional: boolean
  readonly checksum: string
  readonly sql: string
  /** The statements run one by one, for a non-transactional migration; else the one script. */
  readonly statements: readonly string[]
}

export interface MigrationPlan {
  readonly fromVersion: number
  readonly toVersion: number
  readonly migrations: readonly PlannedMigration[]
}

export interface Migrator {
  /** Reads the history and compares it with the manifest. Changes nothing. */
  status(): Promise<MigrationStatus>
  /** Throws SCHEMA_NEWER_THAN_CODE or SCHEMA_DRIFT when the database must not be migrated or used. */
  validate(): Promise<MigrationStatus>
  /** The SQL `migrate()` would run now, validated, without taking the lock or changing anything. */
  plan(): Promise<MigrationPlan>
  /** Applies what is pending under the advisory lock. Idempotent: a second run applies nothing. */
  migrate(): Promise<MigrateResult>
}

const HISTORY_TABLE_EXISTS = `SELECT to_regclass('user_engine_schema_versions') IS NOT NULL AS present`
const HISTORY = 'SELECT version, name, checksum FROM user_engine_schema_versions ORDER BY version'
// Same definition as 0001's, so a bootstrapped table and a migrated one are identical.
const BOOTSTRAP = `CREATE TABLE IF NOT EXISTS user_engine_schema_versions (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  execution_ms integer NOT NULL
)`
const RECORD = `INSERT INTO user_engine_schema_versions (version, name, checksum, execution_ms)
  VALUES ($1, $2, $3, $4)`

/** Reads the history; an empty list when the table does not exist yet. */
export async function readSchemaHistory(session: SqlSession): Promise<AppliedHistoryRow[]> {
  const present = await session.query<{ present: boolean }>(HISTORY_TABLE_EXISTS)
  if (present.rows[0]?.present !== true) return []
  const { rows } = await session.query<{ version: number; name: string; checksum: string }>(HISTORY)
  return rows.map((r) => ({ version: Number(r.version), name: r.name, checksum: r.checksum }))
}

/** Compares a history with a manifest. Pure: the store uses it at open, the runner on every run. */
export function compareHistory(
  history: readonly AppliedHistoryRow[],
  manifest: readonly MigrationEntry[] = MIGRATIONS,
  targetVersion?: number,
): MigrationStatus {
  const latestVersion = manifest.at(-1)?.version ?? 0
  const target = targetVersion ?? latestVersion
  const byVersion = new Map(manifest.map((m) => [m.version, m]))
  const appliedVersions = new Set(history.map((h) => h.version))
  const currentVersion = history.reduce((max, h) => Math.max(max, h.version), 0)
  const drift: DriftEntry[] = []
  for (const h of history) {
    const m = byVersion.get(h.version)
    if (m && m.checksum !== h.checksum) {
      drift.push({
        version: h.version,
        name: m.name,
        expectedChecksum: m.checksum,
        actualChecksum: h.checksum,
      })
    }
  }
  for (const m of manifest) {
    if (m.version < currentVersion && !appliedVersions.has(m.version)) {
      drift.push({ version: m.version, name: m.name, expectedChecksum: m.checksum, actualChecksum: null })
    }
  }
  return {
    currentVersion,
    latestVersion,
    targetVersion: target,
    applied: history,
    pending: manifest.filter((m) => m.version > currentVersion && m.version <= target),
    drift: drift.sort((a, b) => a.version - b.version),
    unknownVersions: history.filter((h) => !byVersion.has(h.version)).map((h) => h.version),
  }
}

/** Throws when the database must be refused: newer than the code first (drift is then expected), then drift. */
export function assertValidHistory(status: MigrationStatus): void {
  if (status.unknownVersions.length > 0) {
    throw new SchemaError(
      ErrorCode.SCHEMA_NEWER_THAN_CODE,
      `the database has schema version ${Math.max(...status.unknownVersions)}, newer than this code knows (${status.latestVersion}); upgrade user-engine`,
      {
        details: {
          schemaVersion: Math.max(...status.unknownVersions),
          latestVersion: status.latestVersion,
        },
      },
    )
  }
  if (status.drift.length > 0) {
    const versions = status.drift.map((d) => d.version).join(', ')
    throw new SchemaError(
      ErrorCode.SCHEMA_DRIFT,
      `applied migration(s) ${versions} differ from the manifest (checksum changed or history row missing); refusing to continue`,
      { details: { versions, schemaVersion: status.currentVersion } },
    )
  }
}

/**
 * The Postgres migration runner. Each transactional migration commits together with its history row;
 * a non-transactional one runs statement by statement, then records its row. Every run validates the
 * history first and refuses drift or a database newer than the code.
 */
export function createMigrator(driver: SqlDriver, options: MigratorOptions = {}): Migrator {
  const manifest = options.manifest ?? MIGRATIONS
  const latest = manifest.at(-1)?.version ?? 0
  const target = options.targetVersion ?? latest
  if (!Number.isInteger(target) || target < 0 || target > latest) {
    throw new ValidationError(`targetVersion must be an integer from 0 to ${latest}`, {
      details: {
        field: 'targetVersion',
      },
    })
  }
  const lockTimeoutMs = options.lockTimeoutMs ?? 60_000
  const lockKey = options.lockKey ?? MIGRATION_LOCK_KEY
  const loadSql = options.loadSql ?? readMigrationSql
  const progress = (event: MigrationProgress) => {
    try {
      options.onProgress?.(event)
    } catch {
      // A faulty progress callback must not break a migration half way.
    }
  }

  const statusOn = async (session: SqlSession) =>
    compareHistory(await readSchemaHistory(session), manifest, target)

  const load = async (entry: MigrationEntry): Promise<PlannedMigration> => {
    const sql = await loadSql(entry)
    if (checksumOf(sql) !== entry.checksum) {
      throw new UserEngineError(
        ErrorCode.MIGRATION_FAILED,
        `migration ${entry.version} (${entry.name}): the SQL does not match the manifest checksum; nothing applied`,
        { details: { version: entry.version, name: entry.name } },
      )
    }
    return {
      version: entry.version,
      name: entry.name,
      transactional: entry.transactional,
      checksum: entry.checksum,
      sql,
      statements: migrationStatements(entry, sql),
    }
  }

  const INVALID_INDEXES = `SELECT c.relname AS name FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
    WHERE NOT i.indisvalid AND t.relname LIKE 'user\\_engine\\_%' AND pg_table_is_visible(t.oid)`
  // The holder check runs inside a transactional migration's transaction, so the whole migration runs on
  // the server connection holding the lock; a non-transactional one is checked before each statement.
  const apply = async (session: SqlSession, m: PlannedMigration, lock: HeldLock): Promise<number> => {
    const started = performance.now()
    const elapsed = () => Math.round(performance.now() - started)
    if (m.transactional) {
      await session.query('BEGIN')
      try {
        await assertLockHolder(session, lock)
        await session.exec(m.sql)
        await session.query(RECORD, [m.version, m.name, m.checksum, elapsed()])
        await session.query('COMMIT')
      } catch (error) {
        await session.query('ROLLBACK').catch(() => {})
        throw failed(m, error)
      }
      return elapsed()
    }
    let index = 0
    try {
      for (const statement of m.statements) {
        await assertLockHolder(session, lock)
        await session.exec(statement)
        index++
      }
    } catch (error) {
      throw failed(
        m,
        error,
        ` at statement ${index + 1} of ${m.statements.length} (non-transactional: earlier statements stay applied; they are safe to re-run)`,
      )
    }
    // An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index that IF NOT EXISTS then skips:
    // refuse to record the version over it (docs/operations.md says how to recover).
    const invalid = await session.query<{ name: string }>(INVALID_INDEXES)
    if (invalid.rows.length > 0) {
      const names = invalid.rows.map((r) => r.name).join(', ')
      throw new UserEngineError(
        ErrorCode.MIGRATION_FAILED,
        `migration ${m.version} (${m.name}) left invalid index(es) ${names}; drop them and run migrate again`,
        { details: { version: m.version } },
      )
    }
    try {
      await session.query(RECORD, [m.version, m.name, m.checksum, elapsed()])
    } catch (error) {
      throw failed(
        m,
        error,
        ' while recording its history row (its statements are applied and safe to re-run)',
      )
    }
    return elapsed()
  }

  return {
    status: () => wrap('status', () => driver.session(statusOn)),

    async validate() {
      const status = await this.status()
      assertValidHistory(status)
      return status
    },

    async plan() {
      const status = await this.validate()
      const migrations: PlannedMigration[] = []
      for (const entry of status.pending) migrations.push(await load(entry))
      return {
        fromVersion: status.currentVersion,
        toVersion: migrations.at(-1)?.version ?? status.currentVersion,
        migrations,
      }
    },

    migrate: () =>
      wrap('migrate', () =>
        driver.session(async (session) => {
          // Before the lock: a session lock taken through a transaction-mode pooler stays on a server
          // connection the pooler keeps, where no unlock of ours may ever land.
          if ((await session.throughPooler?.()) === true) throw pooledRefusal()
          const lock = await acquireAdvisoryLock(session, {
            key: lockKey,
            timeoutMs: lockTimeoutMs,
            onWait: (waitedMs) => progress({ type: 'lock-waiting', waitedMs }),
          })
          const lockWaitMs = lock.waitedMs
          progress({ type: 'lock-acquired', lockWaitMs })
          try {
            await assertLockHolder(session, lock)
            // Inside the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog.
            await session.query(BOOTSTRAP)
            // Re-read under the lock: another migrator may have finished while we waited.
            const status = await statusOn(session)
            assertValidHistory(status)
            const planned: PlannedMigration[] = []
            for (const entry of status.pending) planned.push(await load(entry))
            const applied: AppliedMigration[] = []
            let toVersion = status.currentVersion
            for (const m of planned) {
              progress({ type: 'migration-started', version: m.version, name: m.name })
              const executionMs = await apply(session, m, lock)
              applied.push({ version: m.version, name: m.name, executionMs })
              toVersion = m.version
              progress({ type: 'migration-applied', version: m.version, name: m.name, executionMs })
            }
            return { fromVersion: status.currentVersion, toVersion, applied, lockWaitMs }
          } finally {
            await releaseAdvisoryLock(session, lock)
          }
        }),
      ),
  }
}

function pooledRefusal(): UserEngineError {
  return new UserEngineError(
    ErrorCode.POOLED_CONNECTION,
    'the connection goes through a pooler (the server process answering is not the one the connection announced): migrate refuses before taking the migration lock, which a transaction-mode pooler would leave on a server connection it keeps; nothing was applied. Run schema work over a direct connection to the server (USER_ENGINE_MIGRATION_URL)',
    { details: { pooler: true } },
  )
}

function failed(m: PlannedMigration, error: unknown, where = ''): UserEngineError {
  // The holder check's own refusal says more than "migration failed".
  if (error instanceof UserEngineError && error.code === ErrorCode.POOLED_CONNECTION) return error
  const state = sqlState(error)
  return new UserEngineError(
    ErrorCode.MIGRATION_FAILED,
    `migration ${m.version} (${m.name}) failed${state ? ` with SQLSTATE ${state}` : ''}${where}; the database stays at the previous version`,
    { details: { version: m.version, name: m.name, sqlState: state }, cause: sanitizeDatabaseError(error) },
  )
}

async function wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (error) {
    throw toStoreError(error, `migrations ${what}`)
  }
}
