// A server that freezes (a stopped process, a partition: TCP stays open, nothing answers) must fail each
// call within queryTimeoutMs with a typed error, close the connection it froze on, and leave the store
// serving once the server answers again. A proxy in front of the test server stands in for the freeze.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, beforeEach, describe, test } from 'node:test'
import { UserEngine } from '../../src/engine/index.js'
import { createKeyring, generateKey } from '../../src/engine/keyring.js'
import { isConnectionError } from '../../src/store/postgres/driver/errors.js'
import {
  createNodePostgresDriver,
  DEFAULT_QUERY_TIMEOUT_MS,
} from '../../src/store/postgres/driver/node-postgres-driver.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { COMMIT_UNLESS_SUSPENDED, PostgresCommits } from '../../src/store/postgres/postgres-commits.js'
import type { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { SQL } from '../../src/store/postgres/sql.js'
import { waitFor } from '../outbox/helpers.js'
import { FreezingProxy } from '../support/freezing-proxy.js'
import { socketsTo } from '../support/open-sockets.js'
import { createTestDatabase, postgresSkip, type TestDatabase } from '../support/services.js'

const TIMEOUT_MS = 400
// A failure must come within the bound plus scheduling slack on a shared, busy machine.
const WITHIN_MS = TIMEOUT_MS + 2500

/** Settles `promise`, failing the test instead of hanging when it takes longer than `ms`. */
async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<{ error: unknown; ms: number }> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no outcome within ${ms} ms: the call hangs`)), ms)
  })
  try {
    await Promise.race([promise, hung])
    return { error: undefined, ms: performance.now() - started }
  } catch (error) {
    if (error instanceof Error && /the call hangs/.test(error.message)) throw error
    return { error, ms: performance.now() - started }
  } finally {
    clearTimeout(timer)
  }
}

/** The driver's name for a prepared statement (sha256 of the text), as it goes in a Bind message. */
const preparedName = (sql: string) => `ue_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`

/**
 * Opens several pooled connections so calls in the freeze find one idle (a new one would wait for the
 * 10 s connect timeout instead: the startup is frozen too). The last one released is handed out next.
 */
async function warm(driver: { query(sql: string): Promise<unknown> }): Promise<void> {
  await Promise.all([1, 2, 3, 4].map(() => driver.query('SELECT pg_sleep(0.05)')))
}

test('queryTimeoutMs is validated: a bad value or one beside a pool is VALIDATION', async () => {
  for (const queryTimeoutMs of [-1, 1.5, Number.NaN, '1000', 2 ** 31, Number.POSITIVE_INFINITY]) {
    await assert.rejects(createNodePostgresDriver({ queryTimeoutMs } as never), (e: unknown) => {
      const error = e as { code?: string; details?: { field?: string } }
      assert.equal(error.code, 'VALIDATION', String(queryTimeoutMs))
      assert.equal(error.details?.field, 'queryTimeoutMs')
      return true
    })
  }
  const pool = {
    query: async () => ({ rows: [], rowCount: 0 }),
    connect: async () => ({}),
    end: async () => {},
  }
  await assert.rejects(createNodePostgresDriver({ pool: pool as never, queryTimeoutMs: 1000 }), {
    code: 'VALIDATION',
  })
  await assert.rejects(createNodePostgresStore({ queryTimeoutMs: -5 }), { code: 'VALIDATION' })
  assert.equal(DEFAULT_QUERY_TIMEOUT_MS, 30_000)
})

test("a caller's pool with node-postgres' query_timeout: typed as a lost connection, the connection removed", async () => {
  const released: Array<boolean | Error | undefined> = []
  const client = {
    processID: undefined,
    on: () => client,
    // What pg's Client rejects with when its query_timeout fires; it keeps waiting for the answer.
    query: () => Promise.reject(new Error('Query read timeout')),
    release: (destroy?: boolean | Error) => void released.push(destroy),
  }
  const pool = {
    query: () => Promise.reject(new Error('not used')),
    connect: async () => client,
    end: async () => {},
  }
  const driver = await createNodePostgresDriver({ pool: pool as never, preparedStatements: false })
  await assert.rejects(driver.query('SELECT 1', [1]), (error: unknown) => {
    assert.ok(isConnectionError(error), String(error))
    assert.equal((error as { code?: string }).code, 'ETIMEDOUT')
    return true
  })
  assert.deepEqual(released, [true], 'a connection still waiting for an answer went back to the pool')
  await driver.close()
})

const skip = await postgresSkip()

// Timeouts so that a regression fails the file instead of hanging it.
describe('a frozen server', { skip, timeout: 120_000 }, () => {
  const proxy = new FreezingProxy()
  let db: TestDatabase
  let store: PostgresUserEngineStore
  let engine: UserEngine
  let tenantId: string

  before(async () => {
    await proxy.start()
    db = await createTestDatabase('ue_qtimeout')
    const migrator = await createNodePostgresStore({ connectionString: db.url })
    await migrator.migrate()
    await migrator.close()
    store = await createNodePostgresStore({
      connectionString: proxy.url(db.name),
      queryTimeoutMs: TIMEOUT_MS,
    })
    engine = new UserEngine({
      store,
      keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
      passwordHashing: { memoryCost: 64, timeCost: 1, parallelism: 1 },
    })
    tenantId = (await engine.createTenant('Frozen')).id
  })

  // A test that failed mid-freeze must not leave the next one frozen.
  beforeEach(() => {
    proxy.stopWatching()
    proxy.unfreeze()
  })

  after(async () => {
    proxy.unfreeze()
    await store?.close()
    await proxy.close()
    await db?.drop()
  })

  test('a read fails within the bound with STORE_UNAVAILABLE naming host and port; the store recovers', {
    timeout: 30_000,
  }, async () => {
    const first = await engine.registerUser(tenantId, { email: 'before@example.com' })
    await warm(store.driver)
    proxy.freeze()
    const { error, ms } = await settleWithin(engine.getUser(tenantId, first.id), WITHIN_MS * 3)
    assert.ok(error !== undefined, 'a read on a frozen server succeeded')
    const e = error as { code?: string; message: string; details?: Record<string, unknown> }
    assert.equal(e.code, 'STORE_UNAVAILABLE', e.message)
    assert.ok(ms >= TIMEOUT_MS - 50, `failed after ${ms} ms, before the bound`)
    assert.ok(ms < WITHIN_MS, `a read took ${Math.round(ms)} ms on a frozen server (bound ${TIMEOUT_MS} ms)`)
    assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${proxy.port}`))
    assert.match(e.message, new RegExp(`did not answer within ${TIMEOUT_MS} ms \\(.*queryTimeoutMs\\)`))
    assert.equal(e.details?.port, String(proxy.port))
    assert.equal(e.details?.timeoutMs, TIMEOUT_MS)
    assert.doesNotMatch(JSON.stringify({ message: e.message, details: e.details }), /postgres:\/\/|password/i)

    proxy.unfreeze()
    // Fresh connections serve again, and each read gets its own answer.
    const again = await engine.getUser(tenantId, first.id)
    assert.equal(again?.id, first.id)
    const other = await engine.registerUser(tenantId, { email: 'after@example.com' })
    assert.equal((await engine.getUser(tenantId, other.id))?.id, other.id)
    assert.equal((await store.readiness()).ready, true)
  })

  test('a registration whose commit gets no answer: "may or may not have been applied", sent once, not retried', {
    timeout: 30_000,
  }, async () => {
    const marks = ['user_engine_commit', preparedName(COMMIT_UNLESS_SUSPENDED)]
    await warm(store.driver)
    proxy.watch(marks)
    const email = 'frozen-commit@example.com'
    const { error, ms } = await settleWithin(engine.registerUser(tenantId, { email }), WITHIN_MS * 3)
    assert.ok(error !== undefined, 'a registration on a frozen server succeeded')
    const e = error as { code?: string; message: string; details?: Record<string, unknown> }
    assert.equal(e.code, 'STORE_UNAVAILABLE', e.message)
    assert.match(
      e.message,
      new RegExp(`did not answer within ${TIMEOUT_MS} ms .*may or may not have been applied`),
    )
    assert.deepEqual(e.details, {
      host: '127.0.0.1',
      port: String(proxy.port),
      outcome: 'unknown',
      timeoutMs: TIMEOUT_MS,
    })
    assert.match(e.message, new RegExp(`the database at 127\\.0\\.0\\.1:${proxy.port} did not answer`))
    assert.ok(ms < WITHIN_MS, `a registration took ${Math.round(ms)} ms on a frozen server`)
    // A resend would sit on a pooled connection, held by the freeze: unfrozen, it would be counted.
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS))
    proxy.unfreeze()
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(proxy.marked, 1, 'the commit was sent again after its outcome became unknown')
    proxy.stopWatching()
    // The server did get the commit: it was applied although the caller could not know.
    const found = await engine.findUserByEmail(tenantId, email)
    assert.ok(found !== null, 'the forwarded commit was not applied')
    const next = await engine.registerUser(tenantId, { email: 'after-commit@example.com' })
    assert.equal((await engine.getUser(tenantId, next.id))?.id, next.id)
  })

  test('a group-commit batch without an answer: every caller gets "may or may not", nothing is resent alone', {
    timeout: 30_000,
  }, async () => {
    const commits = new PostgresCommits(store.driver, {
      groupCommit: true,
      committed: () => {},
      schemaVersion: () => 12,
    })
    const now = new Date().toISOString()
    const plans = [1, 2, 3].map(() => ({ tenantId, now, writes: [], audit: [], events: [] }))
    // Any commit statement, the batch or a plan resent alone, by its text or its prepared name.
    await warm(store.driver)
    proxy.watch(['user_engine_commit', preparedName(SQL.commitBatch), preparedName(SQL.commit)])
    const started = performance.now()
    const outcomes = await commits.commitMany(plans)
    const ms = performance.now() - started
    assert.ok(ms < WITHIN_MS, `a batch took ${Math.round(ms)} ms on a frozen server`)
    assert.equal(outcomes.length, 3)
    for (const outcome of outcomes) {
      const e = outcome as { code?: string; message?: string; details?: { outcome?: string } } | null
      assert.equal(e?.code, 'STORE_UNAVAILABLE', String(e?.message))
      assert.equal(e?.details?.outcome, 'unknown')
      assert.match(String(e?.message), /did not answer within \d+ ms .*may or may not have been applied/)
    }
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS))
    proxy.unfreeze()
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(proxy.marked, 1, 'a plan of the batch was sent again after its outcome became unknown')
  })

  test('group commit on a frozen server: commits queued behind a connect that times out fail with it, not one connect timeout later', {
    timeout: 60_000,
  }, async () => {
    proxy.freeze()
    // Arrivals spread over 1.2 s: later ones queue behind statements that wait for a connection.
    const calls = Array.from({ length: 12 }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * 100))
      const started = performance.now()
      const error = await engine.registerUser(tenantId, { email: `queued-${i}@example.com` }).then(
        () => undefined,
        (e: unknown) => e as { code?: string; details?: { outcome?: string } },
      )
      return { error, ms: performance.now() - started }
    })
    const results = await Promise.all(calls)
    proxy.unfreeze()
    for (const { error, ms } of results) {
      assert.equal(error?.code, 'STORE_UNAVAILABLE')
      // One connect timeout (10 s) and one statement's bound at most: before, a commit queued behind a
      // statement that waited for a connection waited for its own connect timeout after it (about 20 s).
      assert.ok(ms < 10_000 + TIMEOUT_MS + 2500, `a commit failed after ${Math.round(ms)} ms`)
    }
    // Commits that never got a connection say they were not sent; their users are not there.
    const unsent = results.filter((r) => r.error?.details?.outcome === 'not_applied')
    assert.ok(unsent.length > 0, 'no commit was reported as not sent')
    for (let i = 0; i < 12; i++) {
      const found = await engine.findUserByEmail(tenantId, `queued-${i}@example.com`)
      if (results[i]!.error?.details?.outcome === 'not_applied') assert.equal(found, null)
    }
  })

  test('a slow statement is cut like a frozen one; a migration script (exec) is not', {
    timeout: 30_000,
  }, async () => {
    const driver = await createNodePostgresDriver({ connectionString: db.url, queryTimeoutMs: 100 })
    try {
      await assert.rejects(driver.query('SELECT pg_sleep(0.5)'), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'ETIMEDOUT', String(error))
        return true
      })
      // Scripts are migrations: CREATE INDEX CONCURRENTLY may rightly run far longer than any statement.
      await driver.exec('SELECT pg_sleep(0.5)')
      await driver.session(async (session) => {
        await session.exec('SELECT pg_sleep(0.5)')
        await assert.rejects(session.query('SELECT pg_sleep(0.5)'), { code: 'ETIMEDOUT' })
      })
      assert.equal((await driver.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1)
    } finally {
      await driver.close()
    }
  })

  test('the driver: a timed-out statement closes its connection; its late answer reaches no other statement', {
    timeout: 30_000,
  }, async () => {
    const driver = await createNodePostgresDriver({
      connectionString: proxy.url(db.name),
      queryTimeoutMs: TIMEOUT_MS,
    })
    try {
      const echo = 'SELECT $1::text AS v'
      assert.equal((await driver.query<{ v: string }>(echo, ['warm'])).rows[0]?.v, 'warm')
      await warm(driver)
      const pid = Number((await driver.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid)
      proxy.freeze()
      const calls: Array<() => Promise<unknown>> = [
        () => driver.query(echo, ['late-1']),
        () => driver.queryText?.(echo, ['late-2']) ?? Promise.reject(new Error('no queryText')),
      ]
      for (const call of calls) {
        const { error, ms } = await settleWithin(call(), WITHIN_MS * 3)
        assert.ok(isConnectionError(error), String(error))
        assert.equal((error as { code?: string }).code, 'ETIMEDOUT')
        assert.ok(ms < WITHIN_MS, `took ${Math.round(ms)} ms`)
      }
      proxy.unfreeze()
      for (let i = 0; i < 20; i++) {
        assert.equal((await driver.query<{ v: string }>(echo, [`next-${i}`])).rows[0]?.v, `next-${i}`)
        assert.deepEqual(await driver.queryText?.(echo, [`text-${i}`]), [[`text-${i}`]])
      }
      // The server connection the freeze caught ends at once: closed, not kept idle in the pool (which
      // would hold it for its 10 s idle timeout).
      const gone = Date.now() + 5000
      let left = 1
      while (left > 0 && Date.now() < gone) {
        const { rows } = await driver.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1',
          [pid],
        )
        left = rows[0]?.n ?? 0
        if (left > 0) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.equal(left, 0, 'the connection that timed out is still open')
    } finally {
      await driver.close()
    }
  })
})

test("close() on a frozen server: the pool's connections, ended unanswered, are destroyed after a grace, not kept", {
  skip,
  timeout: 60_000,
}, async () => {
  // A proxy of its own: the sockets counted are this store's only.
  const frozen = new FreezingProxy()
  await frozen.start()
  const database = await createTestDatabase('ue_qclose')
  try {
    const driver = await createNodePostgresDriver({ connectionString: frozen.url(database.name) })
    await warm(driver)
    assert.ok(socketsTo(frozen.port) >= 1, 'the pool holds connections')
    frozen.freeze()
    const started = performance.now()
    await driver.close()
    // The server never answers the Terminate; before, each socket stayed open (and the process alive) for
    // as long as the freeze lasted.
    await waitFor(() => socketsTo(frozen.port) === 0, 5_000, "the closed pool's sockets destroyed")
    assert.ok(performance.now() - started < 5_000)
  } finally {
    frozen.unfreeze()
    await frozen.close()
    await database.drop()
  }
})
