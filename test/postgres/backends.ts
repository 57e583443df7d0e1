import pg from 'pg'
import type { SqlDriver } from '../../src/store/postgres/driver/driver.js'
import { createNodePostgresDriver } from '../../src/store/postgres/driver/node-postgres-driver.js'
import { createPgliteDriver } from '../../src/store/postgres/driver/pglite-driver.js'
import {
  type PostgresStoreOptions,
  PostgresUserEngineStore,
} from '../../src/store/postgres/postgres-store.js'
import { ADAPTERS } from '../support/adapters.js'
import { createTestDatabase, postgresSkip } from '../support/services.js'

/** One empty database on one backend. Drivers it hands out are closed by `drop()`. */
export interface TestDb {
  /** A new driver on this database (server: its own pool; pglite: the one connection, shared). */
  driver(): Promise<SqlDriver>
  store(
    options?: PostgresStoreOptions & { wrap?: (d: SqlDriver) => SqlDriver },
  ): Promise<PostgresUserEngineStore>
  /** A raw client for the server backend (holding locks, racing transactions); null on pglite. */
  readonly url: string | null
  drop(): Promise<void>
}

export interface Backend {
  readonly name: 'pglite' | 'postgres'
  /** node:test `skip` value: false, or why the backend is not available. */
  readonly skip: string | false
  create(): Promise<TestDb>
}

// A driver whose close() does nothing: the database's own driver is closed once, by drop().
const unclosable = (d: SqlDriver): SqlDriver => ({
  kind: d.kind,
  query: (sql, params) => d.query(sql, params),
  exec: (sql) => d.exec(sql),
  session: (fn) => d.session(fn),
  close: async () => {},
})

const pgliteBackend: Backend = {
  name: 'pglite',
  skip: false,
  async create() {
    const shared = await createPgliteDriver()
    return {
      url: null,
      driver: async () => unclosable(shared),
      store: async ({ wrap, ...options } = {}) =>
        PostgresUserEngineStore.open((wrap ?? ((d) => d))(unclosable(shared)), options),
      drop: () => shared.close(),
    }
  },
}

const serverBackend = (skip: string | false): Backend => ({
  name: 'postgres',
  skip,
  async create() {
    const db = await createTestDatabase()
    const drivers: SqlDriver[] = []
    const driver = async () => {
      const d = await createNodePostgresDriver({ connectionString: db.url })
      drivers.push(d)
      return d
    }
    return {
      url: db.url,
      driver,
      store: async ({ wrap, ...options } = {}) =>
        PostgresUserEngineStore.open((wrap ?? ((d) => d))(await driver()), options),
      async drop() {
        for (const d of drivers) await d.close().catch(() => {})
        await db.drop()
      },
    }
  },
})

/** The SQL backends among the shipped stores, filtered by the one USER_ENGINE_ADAPTERS list. */
export async function backends(): Promise<Backend[]> {
  const byName = { pglite: pgliteBackend, postgres: serverBackend(await postgresSkip()) }
  return ADAPTERS.flatMap((a) => (a.name === 'memory' ? [] : [byName[a.name]]))
}

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

/** A raw pg client on a server test database, closed by the caller. */
export async function rawClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return client
}
