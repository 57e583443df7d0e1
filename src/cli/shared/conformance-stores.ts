import { randomBytes } from 'node:crypto'
import { ErrorCode, UserEngineError, ValidationError } from '../../domain/errors.js'
import { importOptional } from '../../domain/optional-import.js'
import { InMemoryUserEngineStore } from '../../store/memory/index.js'
import type { PgliteInstance } from '../../store/postgres/pglite-images.js'
import { LATEST_SCHEMA_VERSION } from '../../store/schema-versions.js'
import type { MigrateResult, UserEngineStore } from '../../store/store.js'
import type { PlantedSchemaVersion, StoreFactoryContext } from '../../testing/shared/types.js'

// A history row as a newer release or a hand edit would leave it (insert, or replace that version's row).
const PLANT_HISTORY = `INSERT INTO user_engine_schema_versions (version, name, checksum, execution_ms)
  VALUES ($1, $2, $3, 0)
  ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, checksum = EXCLUDED.checksum`

import type { StoreLocation } from './open-store.js'

/** The harness's context, or `{ empty }` alone: the 0.1 spelling of `ownDatabase`. */
type FactoryContext = Pick<StoreFactoryContext, 'ownDatabase'> | { readonly empty: boolean }

const ownDatabase = (ctx: FactoryContext): boolean => ('ownDatabase' in ctx ? ctx.ownDatabase : ctx.empty)

/** The harness's store factories (`ConformanceOptions`) for one location, and what they share. */
export interface ConformanceStores {
  createStore(ctx: FactoryContext): Promise<UserEngineStore>
  destroyStore?(store: UserEngineStore): Promise<void>
  createSharedStores?(count: number, ctx: FactoryContext): Promise<UserEngineStore[]>
  plantSchemaVersion?(store: UserEngineStore, row: PlantedSchemaVersion): Promise<void>
  reopenStore?(store: UserEngineStore): Promise<UserEngineStore>
  /** Releases what the factories share (a shared database); call once after the run. */
  dispose(): Promise<void>
  /** What the run touches, for the report. */
  readonly description: string
}

/**
 * Store factories for running the harness against a location without touching its data:
 * - postgres: a schema per database the harness asks for (search_path, a startup parameter), dropped
 *   afterwards: one migrated schema shared by the cases that do not need a database of their own (each
 *   uses its own tenants, as on PGlite), a new one for each case that does;
 *   through a pooler, which refuses that parameter and cannot carry migrations, a database of its own per
 *   case instead, created, migrated and dropped over `directUrl` (USER_ENGINE_MIGRATION_URL), with the
 *   case's traffic through the pooler; without `directUrl` it refuses with POOLED_CONNECTION;
 * - pglite: in-memory PGlite databases loaded from images (`pglite-images.ts`: initdb and the migrations run
 *   once per process): a never-migrated one for each case that needs a database of its own, one migrated
 *   database shared by the others;
 * - memory: a new reference store per case.
 */
export async function conformanceStoresFor(
  location: StoreLocation,
  options: { readonly directUrl?: string | undefined } = {},
): Promise<ConformanceStores> {
  if (location.kind === 'memory') {
    return {
      description: 'in-memory reference store, one per case',
      createStore: async () => new InMemoryUserEngineStore(),
      dispose: async () => undefined,
    }
  }
  if (location.kind === 'pglite') return pgliteStores()
  if (await throughPooler(location.connectionString)) {
    const direct = options.directUrl
    if (direct === undefined || !/^postgres(ql)?:\/\//.test(direct) || (await throughPooler(direct))) {
      throw new UserEngineError(
        ErrorCode.POOLED_CONNECTION,
        'conformance: the database URL goes through a pooler, which refuses the per-case search_path and cannot carry the migrations every case runs; set USER_ENGINE_MIGRATION_URL to a direct postgres:// URL of the same server, not through a pooler (cases then get a database of their own, created and migrated over it, with their traffic through the pooler)',
        { details: { pooler: true } },
      )
    }
    return pooledDatabaseStores(location.connectionString, direct)
  }
  return postgresSchemaStores(location.connectionString)
}

async function throughPooler(connectionString: string): Promise<boolean> {
  const { createNodePostgresDriver } = await import('../../store/postgres/driver/node-postgres-driver.js')
  const driver = await createNodePostgresDriver({ connectionString })
  try {
    return (await driver.throughPooler?.()) === true
  } finally {
    await driver.close()
  }
}

/** The same URL naming another database. */
function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/**
 * A database per case through a pooler: the store talks through `pooledUrl`; CREATE/DROP DATABASE, the
 * planted history rows and `migrate()` go over `directUrl`, as a service's deploy would run them.
 */
async function pooledDatabaseStores(pooledUrl: string, directUrl: string): Promise<ConformanceStores> {
  const pg = (await importOptional(() => import('pg'), 'pg', 'conformance on a PostgreSQL server')).default
  const { createNodePostgresStore } = await import('../../store/postgres/node-postgres.js')
  const admin = new pg.Pool({ connectionString: directUrl, max: 1 })
  admin.on('error', () => undefined)
  const created = new Set<string>()
  const databases = new Map<UserEngineStore, { database: string }>()

  const newDatabase = async () => {
    const database = `ue_conformance_pooled_${randomBytes(6).toString('hex')}`
    await admin.query(`CREATE DATABASE ${database}`)
    created.add(database)
    return database
  }
  const directly = async <T>(database: string, fn: (store: UserEngineStore) => Promise<T>): Promise<T> => {
    const store = await createNodePostgresStore({ connectionString: withDatabase(directUrl, database) })
    try {
      return await fn(store)
    } finally {
      await store.close()
    }
  }
  const storeIn = async (database: string) => {
    const inner = await createNodePostgresStore({ connectionString: withDatabase(pooledUrl, database) })
    let closed = false
    // Everything goes to the pooled store except migrate(), which goes direct once the store is open.
    const store = new Proxy(inner, {
      get(target, key) {
        if (key === 'close') {
          return async () => {
            closed = true
            await target.close()
          }
        }
        if (key === 'migrate' && !closed) {
          return (): Promise<MigrateResult> => directly(database, (s) => s.migrate())
        }
        const value = Reflect.get(target, key, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    databases.set(store, { database })
    return store
  }
  const dropDatabase = async (database: string) => {
    if (!created.delete(database)) return
    // FORCE: the pooler keeps server connections to it open after its clients left.
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  }
  const entryOf = (store: UserEngineStore, what: string) => {
    const entry = databases.get(store)
    if (!entry)
      throw new ValidationError(`${what} takes a store this factory created`, { details: { field: 'store' } })
    return entry
  }
  const destroy = async (store: UserEngineStore) => {
    const entry = databases.get(store)
    await store.close()
    if (!entry) return
    databases.delete(store)
    const last = ![...databases.values()].some((e) => e.database === entry.database)
    if (last && entry.database !== (await shared)) await dropDatabase(entry.database)
  }
  // Cases that do not need a database of their own share one (each uses its own tenant), as on PGlite.
  let shared: Promise<string> | undefined
  const sharedDatabase = () => {
    shared ??= newDatabase().then(async (database) => {
      await directly(database, (s) => s.migrate())
      return database
    })
    return shared
  }
  return {
    description:
      'the Postgres server through a pooler, a database of its own per case that needs one, else one shared (dropped afterwards)',
    createStore: async (ctx) => storeIn(ownDatabase(ctx) ? await newDatabase() : await sharedDatabase()),
    destroyStore: destroy,
    plantSchemaVersion: async (store, row) => {
      const { database } = entryOf(store, 'plantSchemaVersion')
      const client = new pg.Client({ connectionString: withDatabase(directUrl, database) })
      await client.connect()
      try {
        await client.query(PLANT_HISTORY, [row.version, row.name, row.checksum])
      } finally {
        await client.end()
      }
    },
    reopenStore: async (store) => storeIn(entryOf(store, 'reopenStore').database),
    createSharedStores: async (count) => {
      const database = await newDatabase()
      const stores: UserEngineStore[] = []
      for (let i = 0; i < count; i++) stores.push(await storeIn(database))
      return stores
    },
    dispose: async () => {
      await Promise.all([...databases.keys()].map(destroy))
      for (const database of [...created]) await dropDatabase(database)
      await admin.end()
    },
  }
}

async function pgliteStores(): Promise<ConformanceStores> {
  const [
    { closeIdlePgliteImages, openPgliteImage, releasePgliteImage },
    { createPgliteDriver, PostgresUserEngineStore },
  ] = await Promise.all([
    import('../../store/postgres/pglite-images.js'),
    import('../../store/postgres/pglite.js'),
  ])
  // Each store over a database of its own, and that database (reopened stores share their owner's).
  const databases = new Map<UserEngineStore, PgliteInstance>()
  // Cases that do not need a database of their own share one (each uses its own tenant), already migrated.
  let shared: Promise<PgliteInstance> | undefined
  const open = async (ctx: FactoryContext) => {
    if (!ownDatabase(ctx)) {
      shared ??= openPgliteImage(LATEST_SCHEMA_VERSION)
      return PostgresUserEngineStore.open(await createPgliteDriver({ db: await shared }))
    }
    // Initdb ran once, for the image; a database of its own is never migrated, as the harness asks.
    const db = await openPgliteImage(0)
    const store = await PostgresUserEngineStore.open(await createPgliteDriver({ db }))
    databases.set(store, db)
    return store
  }
  const destroy = async (store: UserEngineStore) => {
    await store.close()
    const db = databases.get(store)
    databases.delete(store)
    // With its last store closed, the database goes back to version 0 for the next case that needs one.
    if (db && ![...databases.values()].includes(db)) await releasePgliteImage(db, 0)
  }
  const databaseOf = (store: UserEngineStore): PgliteInstance => {
    const db = databases.get(store)
    if (!db)
      throw new ValidationError(
        'plantSchemaVersion and reopenStore take a store over a database of its own',
        { details: { field: 'store' } },
      )
    return db
  }
  return {
    description:
      'embedded PGlite: an in-memory database of its own per case that needs one (emptied back to version 0 and checked before the next case reuses it), else one shared',
    createStore: open,
    destroyStore: destroy,
    plantSchemaVersion: async (store, row) => {
      await databaseOf(store).query(PLANT_HISTORY, [row.version, row.name, row.checksum])
    },
    reopenStore: async (store) => {
      const db = databaseOf(store)
      const again = await PostgresUserEngineStore.open(await createPgliteDriver({ db }))
      databases.set(again, db)
      return again
    },
    dispose: async () => {
      await Promise.all([...databases.keys()].map(destroy))
      await (await shared)?.close()
      await closeIdlePgliteImages()
    },
  }
}

async function postgresSchemaStores(connectionString: string): Promise<ConformanceStores> {
  const pg = (await importOptional(() => import('pg'), 'pg', 'conformance on a PostgreSQL server')).default
  const { createNodePostgresStore } = await import('../../store/postgres/node-postgres.js')
  const schemas = new Map<UserEngineStore, { schema: string; pool: InstanceType<typeof pg.Pool> }>()
  const admin = new pg.Pool({ connectionString, max: 1 })
  admin.on('error', () => undefined)
  const created = new Set<string>()

  const newSchema = async () => {
    const schema = `ue_conformance_${randomBytes(6).toString('hex')}`
    await admin.query(`CREATE SCHEMA ${schema}`)
    created.add(schema)
    return schema
  }
  const storeIn = async (schema: string) => {
    const pool = new pg.Pool({ connectionString, options: `-c search_path=${schema}`, max: 4 })
    pool.on('error', () => undefined)
    const store = await createNodePostgresStore({ pool })
    schemas.set(store, { schema, pool })
    return store
  }
  const dropSchema = async (schema: string) => {
    if (!created.delete(schema)) return
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  }
  // Created (and later migrated by its first case) once; dropped by dispose().
  let sharedSchema: Promise<string> | undefined
  const destroy = async (store: UserEngineStore) => {
    const entry = schemas.get(store)
    await store.close()
    if (!entry) return
    schemas.delete(store)
    await entry.pool.end()
    // Stores over one schema of a case: drop it with the last of them. The cases' shared schema stays.
    const shared = sharedSchema === undefined ? undefined : await sharedSchema
    if (entry.schema !== shared && ![...schemas.values()].some((e) => e.schema === entry.schema)) {
      await dropSchema(entry.schema)
    }
  }
  return {
    description:
      'the Postgres server: one migrated schema shared by the cases that can share, a schema of its own for each case that needs a database of its own (all dropped afterwards)',
    createStore: async (ctx) => {
      if (ownDatabase(ctx)) return storeIn(await newSchema())
      if (sharedSchema === undefined) {
        const created = newSchema()
        // A failed CREATE SCHEMA is not kept: the next case tries again and sees its own error.
        created.catch(() => {
          sharedSchema = undefined
        })
        sharedSchema = created
      }
      return storeIn(await sharedSchema)
    },
    destroyStore: destroy,
    plantSchemaVersion: async (store, row) => {
      const entry = schemas.get(store)
      if (!entry)
        throw new ValidationError('plantSchemaVersion takes a store this factory created', {
          details: { field: 'store' },
        })
      await entry.pool.query(PLANT_HISTORY, [row.version, row.name, row.checksum])
    },
    reopenStore: async (store) => {
      const entry = schemas.get(store)
      if (!entry)
        throw new ValidationError('reopenStore takes a store this factory created', {
          details: { field: 'store' },
        })
      return storeIn(entry.schema)
    },
    createSharedStores: async (count) => {
      const schema = await newSchema()
      const stores: UserEngineStore[] = []
      for (let i = 0; i < count; i++) stores.push(await storeIn(schema))
      return stores
    },
    dispose: async () => {
      await Promise.all([...schemas.keys()].map(destroy))
      for (const schema of [...created]) await dropSchema(schema)
      await admin.end()
    },
  }
}
