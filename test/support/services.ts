import { randomBytes } from 'node:crypto'
import { connect, createServer } from 'node:net'
import pg from 'pg'
import { createNodePostgresDriver } from '../../src/store/postgres/driver/node-postgres-driver.js'
import { createMigrator } from '../../src/store/postgres/schema/runner.js'

/**
 * Server suites (Postgres, NATS) run when their service answers. Without it they are skipped with the reason
 * printed, except under CI=true, where a missing service is a failure: CI must never pass by skipping.
 */
export const SERVICES_REQUIRED = process.env.CI === 'true'

export const POSTGRES_ADMIN_URL =
  process.env.USER_ENGINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const NATS_URL = process.env.USER_ENGINE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'

// Generous, and tried three times: a busy event loop (PGlite compiling its wasm beside it) can make a 1 s
// timer fire before a connect that already succeeded is seen, and under CI=true a false "down" fails the run.
async function probe(host: string, port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) if (await probeOnce(host, port, 5000)) return true
  return false
}

function probeOnce(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

const cache = new Map<string, Promise<string | false>>()

/** Returns false when the service is up; otherwise the skip reason. Throws under CI=true. */
async function availability(name: string, url: string, defaultPort: number): Promise<string | false> {
  const parsed = new URL(url)
  const up = await probe(parsed.hostname, Number(parsed.port || defaultPort))
  if (up) return false
  const reason = `${name} not reachable at ${parsed.hostname}:${parsed.port || defaultPort}; server suite skipped`
  if (SERVICES_REQUIRED) throw new Error(`CI=true requires ${name}: ${reason}`)
  process.stderr.write(`# SKIP ${reason}\n`)
  return reason
}

/** `skip` option for node:test: false when Postgres answers, else the reason (never silently). */
export function postgresSkip(): Promise<string | false> {
  if (!cache.has('pg')) cache.set('pg', availability('PostgreSQL', POSTGRES_ADMIN_URL, 5432))
  return cache.get('pg')!
}

export function natsSkip(): Promise<string | false> {
  if (!cache.has('nats')) cache.set('nats', availability('NATS', NATS_URL, 4222))
  return cache.get('nats')!
}

export interface TestDatabase {
  readonly url: string
  readonly name: string
  drop(): Promise<void>
}

function databaseUrl(name: string): string {
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
}

// ---- migrated templates: one per schema version and process, copied by CREATE DATABASE ... TEMPLATE ----

/**
 * Templates are named `ue_tpl_<unix seconds>_<random>_v<version>`: unique across processes and hosts (CI
 * runs sharing a server never clash), and datable, so a run that was killed before it could drop its own
 * leaves templates the next run removes once they are an hour old.
 */
const TEMPLATE_PREFIX = 'ue_tpl_'
const RUN = `${Math.floor(Date.now() / 1000)}_${randomBytes(4).toString('hex')}`
const STALE_TEMPLATE_SECONDS = 3600
const templates = new Map<number, Promise<string>>()

async function dropStaleTemplates(): Promise<void> {
  const now = Date.now() / 1000
  const { rows } = await admin((c) =>
    c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'ue_tpl_%'`),
  )
  const stale = rows
    .map((r) => r.datname)
    .filter((name) => now - Number(name.slice(TEMPLATE_PREFIX.length).split('_')[0]) > STALE_TEMPLATE_SECONDS)
  await Promise.all(stale.map(dropDatabase))
}

async function buildTemplate(schemaVersion: number, first: boolean): Promise<string> {
  if (first) await dropStaleTemplates().catch(() => undefined)
  const name = `${TEMPLATE_PREFIX}${RUN}_v${schemaVersion}`
  await admin((c) => c.query(`CREATE DATABASE ${name}`))
  // Migrated by the runner exactly as `migrate({ targetVersion })` would; then no session may stay on it.
  const driver = await createNodePostgresDriver({ connectionString: databaseUrl(name) })
  try {
    await createMigrator(driver, { targetVersion: schemaVersion }).migrate()
  } finally {
    await driver.close()
  }
  return name
}

/** The template at `schemaVersion`, built on first use in this process and dropped when the process ends. */
function template(schemaVersion: number): Promise<string> {
  let name = templates.get(schemaVersion)
  if (name === undefined) {
    const first = templates.size === 0
    if (first) process.once('beforeExit', dropTemplates)
    name = buildTemplate(schemaVersion, first)
    templates.set(schemaVersion, name)
  }
  return name
}

// 'beforeExit' runs once the tests are done and the loop is empty; the drops keep it alive until they end.
async function dropTemplates(): Promise<void> {
  const names = await Promise.allSettled([...templates.values()])
  templates.clear()
  // At once: concurrent drops share the checkpoint each DROP DATABASE waits for.
  await Promise.all(
    names.map((r) => (r.status === 'fulfilled' ? dropDatabase(r.value).catch(() => undefined) : undefined)),
  )
}

/**
 * Creates a database of its own (for one test or one test file) at `schemaVersion`: 0 is empty, never
 * migrated; any other version is a copy of a template migrated to it once per process, so a test does not
 * pay for the migrations. `drop()` removes it, terminating leftover sessions.
 */
export async function createTestDatabase(prefix = 'ue_test', schemaVersion = 0): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  const source = schemaVersion === 0 ? '' : ` TEMPLATE ${await template(schemaVersion)}`
  await admin((c) => c.query(`CREATE DATABASE ${name}${source}`))
  return { url: databaseUrl(name), name, drop: () => dropDatabase(name) }
}

/** A raw pg client on a server test database (holding locks, racing transactions), ended by the caller. */
export async function rawClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return client
}

/** Resolves once a server at `url` (Postgres, or a pooler in front of it) answers `SELECT 1`; else throws. */
export async function answersSelect(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.query('SELECT 1')
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** A port free on loopback right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}
