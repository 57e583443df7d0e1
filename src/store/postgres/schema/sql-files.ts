import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ErrorCode, UserEngineError } from '../../../domain/errors.js'
import type { MigrationEntry } from './manifest.js'
import { splitSqlStatements } from './statements.js'

/** Finds `migrations/postgres` from this module, whether it runs from `src/` or the built `dist/src/`. */
export function migrationsDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 8; i++) {
    const candidate = join(dir, 'migrations', 'postgres')
    if (existsSync(join(candidate, '0001_user_engine_store.sql'))) return candidate
    dir = dirname(dir)
  }
  // The package ships migrations/ (package.json "files"); missing means a broken install or bundle.
  throw new UserEngineError(
    ErrorCode.DEPENDENCY_MISSING,
    'migrations/postgres not found next to the package; reinstall user-engine (a bundler must copy migrations/)',
  )
}

/** Line endings normalized, so a checkout with CRLF has the same checksum. */
export function normalizeSql(text: string): string {
  return text.replace(/\r\n?/g, '\n')
}

export function checksumOf(text: string): string {
  return createHash('sha256').update(normalizeSql(text)).digest('hex')
}

export function readMigrationSql(entry: MigrationEntry): string {
  return normalizeSql(readFileSync(join(migrationsDirectory(), entry.file), 'utf8'))
}

/**
 * What to send for one migration, in order: a transactional one is its whole file (run it in one transaction
 * with its history row); a non-transactional one is its statements one at a time, split at top-level
 * semicolons (quotes, dollar-quoted bodies and comments respected), because a multi-statement query runs as
 * one implicit transaction, where `CREATE INDEX CONCURRENTLY` is refused.
 */
export function migrationStatements(entry: MigrationEntry, sql = readMigrationSql(entry)): string[] {
  return entry.transactional ? [sql] : splitSqlStatements(sql)
}
