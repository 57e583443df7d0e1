import { randomBytes } from 'node:crypto'
import { importOptional } from '../../domain/optional-import.js'
import { InMemoryUserEngineStore } from '../../store/memory/index.js'
import type { UserEngineStore } from '../../store/store.js'
import type { StoreConformanceOptions } from '../../testing/shared/types.js'
import type { StoreLocation } from './open-store.js'

export type ConformanceStores = Pick<
  StoreConformanceOptions,
  'createStore' | 'destroyStore' | 'createSharedStores'
> & {
  /** Releases what the factories share (a template database); call once after the run. */
  dispose(): Promise<void>
  /** What the run touches, for the report. */
  readonly description: string
}

/**
 * Store factories for running the harness against a location without touching its data:
 * - postgres: every store gets a schema of its own (search_path), dropped afterwards;
 * - pglite: an in-memory PGlite started from a template data directory (initdb runs once per process),
 *   fresh for each case that needs an empty database, shared by the others;
 * - memory: a new reference store per case.
 */
export async function conformanceStoresFor(location: StoreLocation): Promise<ConformanceStores> {
  if (location.kind === 'memory') {
    return {
      description: 'in-memory reference store, one per case',
      createStore: async () => new InMemoryUserEngineStore(),
      dispose: async () => undefined,
    }
  }
  if (location.kind === 'pglite') return pgliteStores()
  return postgresSchemaStores(location.connectionString)
}

async function pgliteStores(): Promise<ConformanceStores> {
  const { PGlite } = await importOptional(
    () => import('@electric-sql/pglite'),
    '@electric-sql/pglite',
    'conformance on PGlite',
  )
  const { createPgliteDriver, PostgresUserEngineStore } = await import('../../store/postgres/pglite.js')
  const template = new PGlite()
  await template.waitReady
  const image = await template.dumpDataDir('none')
  await template.close()
  const owned = new Map<UserEngineStore, { close(): Promise<void> }>()
  // Cases that do not need an empty database share one (each uses its own tenant): PGlite starts in seconds.
  let shared: InstanceType<typeof PGlite> | undefined
  const open = async (ctx: { empty: boolean }) => {
    if (!ctx.empty) {
      shared ??= new PGlite({ loadDataDir: image })
      return PostgresUserEngineStore.open(await createPgliteDriver({ db: shared }))
    }
    const db = new PGlite({ loadDataDir: image })
    const store = await PostgresUserEngineStore.open(await createPgliteDriver({ db }))
    owned.set(store, db)
    return store
  }
  const destroy = async (store: UserEngineStore) => {
    await store.close()
    await owned.get(store)?.close()
    owned.delete(store)
  }
  return {
    description: 'embedded PGlite: a fresh in-memory database per case that needs one, else one shared',
    createStore: open,
    destroyStore: destroy,
    dispose: async () => {
      await Promise.all([...owned.keys()].map(destroy))
      await shared?.close()
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
  const destroy = async (store: UserEngineStore) => {
    const entry = schemas.get(store)
    await store.close()
    if (!entry) return
    schemas.delete(store)
    await entry.pool.end()
    // Shared stores use one schema: drop it with the last of them.
    if (![...schemas.values()].some((e) => e.schema === entry.schema)) await dropSchema(entry.schema)
  }
  return {
    description: 'the Postgres server, a schema of its own per case (dropped afterwards)',
    createStore: async () => storeIn(await newSchema()),
    destroyStore: destroy,
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
