import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { InMemoryUserEngineStore } from '../../store/memory/index.js'
import type { SqlDriver } from '../../store/postgres/driver/driver.js'
import type { SchemaStatus } from '../../store/schema-admin.js'
import type { UserEngineStore } from '../../store/store.js'
import { UsageError } from './usage-error.js'

export const DEFAULT_DATABASE_URL = 'pglite:./.user-engine/data'

export type StoreLocation =
  | { readonly kind: 'postgres'; readonly connectionString: string }
  | { readonly kind: 'pglite'; readonly dataDir: string | undefined }
  | { readonly kind: 'memory' }

/**
 * The database a command works on: the flag, else the environment (`env`, by default the process's), else the
 * embedded default. Schema work (migrate, status, plan, conformance) prefers USER_ENGINE_MIGRATION_URL, a
 * direct connection, over DATABASE_URL, which may go through a transaction-mode pooler that cannot carry the
 * migration lock. The demo reads no variable: it writes sample tenants and users, so only a database named
 * on its command line gets them.
 */
export function resolveDatabaseUrl(
  flag: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
  purpose: 'service' | 'schema' | 'demo' = 'service',
): string {
  if (purpose === 'demo') return flag ?? DEFAULT_DATABASE_URL
  const schemaUrl = purpose === 'schema' ? env.USER_ENGINE_MIGRATION_URL || undefined : undefined
  return flag ?? schemaUrl ?? (env.DATABASE_URL || undefined) ?? DEFAULT_DATABASE_URL
}

// Schemes a message may name: a value that is not a URL (a libpq `key=value` string, a bare password) can
// hold a secret anywhere, so the message repeats nothing of it but one of these.
const NAMEABLE_SCHEMES = new Set(['mysql', 'mariadb', 'sqlite', 'file', 'http', 'https', 'redis', 'mongodb'])

export function parseStoreLocation(url: string): StoreLocation {
  // Schemes are case-insensitive (RFC 3986); paths after pglite: are not.
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  const rest = scheme === undefined ? url : url.slice(scheme.length + 1)
  if ((scheme === 'postgres' || scheme === 'postgresql') && rest.startsWith('//')) {
    return { kind: 'postgres', connectionString: `${scheme}:${rest}` }
  }
  if (scheme === 'pglite') {
    if (rest === 'memory') return { kind: 'pglite', dataDir: undefined }
    if (rest.length === 0) throw new UsageError('pglite: needs a path, or pglite:memory')
    return { kind: 'pglite', dataDir: resolve(rest) }
  }
  if (scheme === 'memory' && rest === '') return { kind: 'memory' }
  const named = scheme !== undefined && NAMEABLE_SCHEMES.has(scheme) ? ` (${scheme}:)` : ''
  throw new UsageError(
    `unsupported database URL${named}: use postgres://, postgresql://, pglite:PATH, pglite:memory or memory: (the value is not repeated, as it may hold a password)`,
  )
}

/**
 * A URL fit for messages: credentials are never printed, whether a password, a NATS token in the user part,
 * or a `password=` query parameter; comma-separated server lists are redacted one by one.
 */
export function redactUrl(url: string): string {
  return url
    .split(',')
    .map((part) => {
      let u: URL
      try {
        u = new URL(part)
      } catch {
        return maskUserInfo(part)
      }
      // 'postgres:/u:pw@h/db' or 'user:pw@host:4222' parse as URLs without a host; their user information
      // sits in what the parser calls the path.
      if (u.host === '') return maskUserInfo(part)
      if (u.username || u.password) {
        u.username = '***'
        u.password = ''
      }
      for (const key of [...u.searchParams.keys()]) {
        if (/pass|token|secret|key/i.test(key)) u.searchParams.set(key, '***')
      }
      return u.toString()
    })
    .join(',')
}

/** Everything between a scheme (if any) and the last '@' is taken for user information, and masked. */
function maskUserInfo(part: string): string {
  const at = part.lastIndexOf('@')
  if (at < 0) return part
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(part)?.[0] ?? ''
  return `${scheme}***${part.slice(at)}`
}

/** How the CLI opens a store beyond its location. */
export interface OpenStoreOptions {
  /** The bound on each statement's wait on a PostgreSQL server (0: none); the driver's default when absent. */
  readonly queryTimeoutMs?: number | undefined
  /** How long `migrate` waits for another migrator's lock; the store's default (60 s) when absent. */
  readonly migrationLockTimeoutMs?: number | undefined
}

/** A driver for a SQL location. Postgres modules load lazily so `memory:` needs neither driver package. */
async function openDriver(
  location: Exclude<StoreLocation, { kind: 'memory' }>,
  { queryTimeoutMs }: OpenStoreOptions = {},
): Promise<SqlDriver> {
  if (location.kind === 'pglite') {
    const { createPgliteDriver } = await import('../../store/postgres/driver/pglite-driver.js')
    return createPgliteDriver(location.dataDir === undefined ? {} : { dataDir: location.dataDir })
  }
  const { createNodePostgresDriver } = await import('../../store/postgres/driver/node-postgres-driver.js')
  return createNodePostgresDriver({
    connectionString: location.connectionString,
    ...(queryTimeoutMs === undefined ? {} : { queryTimeoutMs }),
  })
}

/** Opens the store a location names (refusing drift and a newer schema, as every store open does). */
export async function openStore(
  location: StoreLocation,
  options: OpenStoreOptions = {},
): Promise<UserEngineStore> {
  if (location.kind === 'memory') return new InMemoryUserEngineStore()
  const { PostgresUserEngineStore } = await import('../../store/postgres/postgres-store.js')
  const { migrationLockTimeoutMs } = options
  return PostgresUserEngineStore.open(
    await openDriver(location, options),
    migrationLockTimeoutMs === undefined ? {} : { migrationLockTimeoutMs },
  )
}

/** The data directory of an embedded database that is not there yet (opening it would create it), else undefined. */
export function missingDataDir(location: StoreLocation): string | undefined {
  return location.kind === 'pglite' && location.dataDir !== undefined && !existsSync(location.dataDir)
    ? location.dataDir
    : undefined
}

/** What a look at a missing embedded database reads instead: an empty one, in memory. */
export const EMPTY_EMBEDDED: Extract<StoreLocation, { kind: 'pglite' }> = {
  kind: 'pglite',
  dataDir: undefined,
}

/**
 * The schema status of a location without opening a store: opening refuses drift, `status` reports it.
 * Nothing is created: an embedded data directory that does not exist reads as an empty database.
 */
export async function inspectSchema(
  location: StoreLocation,
  options: OpenStoreOptions = {},
): Promise<SchemaStatus> {
  if (location.kind === 'memory') return new InMemoryUserEngineStore().schemaStatus()
  const { PostgresUserEngineStore } = await import('../../store/postgres/postgres-store.js')
  // A look must not create the embedded database: a directory not there yet reads as an empty database.
  const driver = await openDriver(missingDataDir(location) === undefined ? location : EMPTY_EMBEDDED, options)
  try {
    return await PostgresUserEngineStore.inspectSchema(driver)
  } finally {
    await driver.close()
  }
}
