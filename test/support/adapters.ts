import type { StoreLocation } from '../../src/cli/shared/open-store.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import type { SqlDriver } from '../../src/store/postgres/driver/driver.js'
import { createNodePostgresDriver } from '../../src/store/postgres/driver/node-postgres-driver.js'
import { createPgliteDriver } from '../../src/store/postgres/driver/pglite-driver.js'
import {
  type PostgresStoreOptions,
  PostgresUserEngineStore,
} from '../../src/store/postgres/postgres-store.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { openPgliteImage, releasePgliteImage } from './images.js'
import { createTestDatabase, postgresSkip } from './services.js'

/**
 * The one backend registry: every store the project ships. Test files loop over `ADAPTERS` (or over
 * `SQL_ADAPTERS`, the ones with a database); USER_ENGINE_ADAPTERS=memory,pglite narrows a run, and a name it
 * does not know fails the run. The server adapter is skipped with the reason when Postgres is down, and
 * required under CI=true.
 *
 * New databases start from images: on PGlite a data directory dumped once per process
 * (`src/store/postgres/pglite-images.ts`, which the conformance command uses too), on the server a template
 * database migrated once per process and copied by CREATE DATABASE ... TEMPLATE. Version 0 is an empty,
 * never-migrated database: what a test of the migrations themselves starts from.
 */
export type AdapterName = 'memory' | 'pglite' | 'postgres'

export interface Adapter {
  readonly name: AdapterName
  /**
   * False on the server adapter's second entry: the same server with group commit off (`groupCommit: false`,
   * and USER_ENGINE_GROUP_COMMIT=off between `open` and its `release`, for stores the CLI's factories open).
   * Its name stays `postgres`, so every suite treats it as the server.
   */
  readonly groupCommit?: false
  /** False when the adapter can run here; else why not (under CI=true a missing service throws instead). */
  skip(): Promise<string | false>
  /** Where its stores live, for `conformanceStoresFor`; `release` undoes whatever `open` created. */
  open(): Promise<{ location: StoreLocation; release(): Promise<void> }>
  /** A store over a database of its own, migrated to the latest version; `release` closes and removes it. */
  migratedStore(): Promise<{ store: UserEngineStore; release(): Promise<void> }>
}

/** One database of its own on a SQL adapter. Drivers and stores it hands out are closed by `drop()`. */
export interface TestDb {
  /** A new driver on this database (server: its own pool; pglite: the one connection, shared). */
  driver(): Promise<SqlDriver>
  store(
    options?: PostgresStoreOptions & { wrap?: (d: SqlDriver) => SqlDriver },
  ): Promise<PostgresUserEngineStore>
  /** The server database's URL, for raw clients (holding locks, racing transactions); null on pglite. */
  readonly url: string | null
  drop(): Promise<void>
}

export interface SqlAdapter extends Adapter {
  readonly name: 'pglite' | 'postgres'
  /** A database of its own at `schemaVersion`: 0 is empty and never migrated. */
  database(schemaVersion: number): Promise<TestDb>
}

// A driver whose close() does nothing: the database's own connection is closed once, by drop().
const unclosable = (d: SqlDriver): SqlDriver => ({
  kind: d.kind,
  query: (sql, params) => d.query(sql, params),
  exec: (sql) => d.exec(sql),
  session: (fn) => d.session(fn),
  close: async () => {},
})

const openStore = (driver: SqlDriver, { wrap, ...options }: Parameters<TestDb['store']>[0] = {}) =>
  PostgresUserEngineStore.open((wrap ?? ((d) => d))(driver), options)

/** A migrated store on a SQL adapter's database, released with it. */
async function migratedStoreOn(adapter: SqlAdapter) {
  const db = await adapter.database(LATEST_SCHEMA_VERSION)
  try {
    const store = await db.store()
    return { store, release: () => db.drop() }
  } catch (error) {
    await db.drop()
    throw error
  }
}

const memory: Adapter = {
  name: 'memory',
  skip: async () => false,
  open: async () => ({ location: { kind: 'memory' }, release: async () => undefined }),
  migratedStore: async () => {
    const store = new InMemoryUserEngineStore({ migrated: true })
    return { store, release: () => store.close() }
  },
}

const pglite: SqlAdapter = {
  name: 'pglite',
  skip: async () => false,
  open: async () => ({ location: { kind: 'pglite', dataDir: undefined }, release: async () => undefined }),
  migratedStore: () => migratedStoreOn(pglite),
  async database(schemaVersion) {
    const db = await openPgliteImage(schemaVersion)
    const shared = await createPgliteDriver({ db })
    const stores: PostgresUserEngineStore[] = []
    return {
      url: null,
      driver: async () => unclosable(shared),
      async store(options) {
        const store = await openStore(unclosable(shared), options)
        stores.push(store)
        return store
      },
      async drop() {
        for (const s of stores) await s.close().catch(() => {})
        // Emptied back to its image and reused by the next database of this version, if its catalog allows.
        await releasePgliteImage(db, schemaVersion)
      },
    }
  },
}

function serverAdapter(groupCommit: boolean): SqlAdapter {
  const adapter: SqlAdapter = {
    name: 'postgres',
    ...(groupCommit ? {} : { groupCommit: false as const }),
    skip: postgresSkip,
    async open() {
      const db = await createTestDatabase('ue_conformance')
      const location = { kind: 'postgres' as const, connectionString: db.url }
      if (groupCommit) return { location, release: () => db.drop() }
      // The harness's stores come from conformanceStoresFor, which takes no store options: the variable
      // decides for stores opened without groupCommit. Suites in a file run one after another.
      const before = process.env.USER_ENGINE_GROUP_COMMIT
      process.env.USER_ENGINE_GROUP_COMMIT = 'off'
      return {
        location,
        async release() {
          if (before === undefined) delete process.env.USER_ENGINE_GROUP_COMMIT
          else process.env.USER_ENGINE_GROUP_COMMIT = before
          await db.drop()
        },
      }
    },
    migratedStore: () => migratedStoreOn(adapter),
    async database(schemaVersion) {
      const db = await createTestDatabase('ue_test', schemaVersion)
      const drivers: SqlDriver[] = []
      const driver = async () => {
        const d = await createNodePostgresDriver({ connectionString: db.url })
        drivers.push(d)
        return d
      }
      return {
        url: db.url,
        driver,
        store: async (options) =>
          openStore(await driver(), groupCommit ? options : { groupCommit: false, ...options }),
        async drop() {
          for (const d of drivers) await d.close().catch(() => {})
          await db.drop()
        },
      }
    },
  }
  return adapter
}

const postgres = serverAdapter(true)
/** The server with group commit off: ADAPTERS runs the harness (and the suites looping ADAPTERS) both ways. */
const postgresGroupCommitOff = serverAdapter(false)

const ALL: readonly Adapter[] = [memory, pglite, postgres, postgresGroupCommitOff]

const only = process.env.USER_ENGINE_ADAPTERS?.split(',').map((s) => s.trim())
// A typo must not turn into "no adapter, nothing failed".
const unknown = only?.filter((name) => !ALL.some((a) => a.name === name)) ?? []
if (unknown.length > 0) throw new Error(`USER_ENGINE_ADAPTERS: unknown adapter(s) ${unknown.join(', ')}`)

/**
 * Every adapter this run covers, in order: memory, pglite, postgres, and postgres again with group commit
 * off (USER_ENGINE_ADAPTERS=postgres selects both server entries).
 */
export const ADAPTERS: readonly Adapter[] = only ? ALL.filter((a) => only.includes(a.name)) : ALL

/**
 * The adapters with a SQL database (pglite, the server), filtered by the same list; the server once, with
 * group commit on (the store's default): these suites test migrations and SQL, not the commit path.
 */
export const SQL_ADAPTERS: readonly SqlAdapter[] = ADAPTERS.filter(
  (a): a is SqlAdapter => a.name !== 'memory' && a.groupCommit !== false,
)

/** Counts the statements a driver sends outside sessions: what a store's reads and commits cost. */
export interface CountingDriver extends SqlDriver {
  readonly count: number
  reset(): void
}

export function countingDriver(inner: SqlDriver): CountingDriver {
  let count = 0
  return {
    kind: inner.kind,
    get count() {
      return count
    },
    reset() {
      count = 0
    },
    query(sql, params) {
      count++
      return inner.query(sql, params)
    },
    exec(sql) {
      count++
      return inner.exec(sql)
    },
    session: (fn) => inner.session(fn),
    close: () => inner.close(),
  }
}
