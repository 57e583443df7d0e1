import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import pg from 'pg'

/**
 * Server suites (Postgres, NATS) run when their service answers. Without it they are skipped with the reason
 * printed, except under CI=true, where a missing service is a failure: CI must never pass by skipping.
 */
export const SERVICES_REQUIRED = process.env.CI === 'true'

export const POSTGRES_ADMIN_URL =
  process.env.USER_ENGINE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const NATS_URL = process.env.USER_ENGINE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'

function probe(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
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

/** Creates a database of its own for one test file; `drop()` removes it (terminating leftover sessions). */
export async function createTestDatabase(prefix = 'ue_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(POSTGRES_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}
