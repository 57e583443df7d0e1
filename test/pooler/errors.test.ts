import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isUserEngineError } from '../../src/domain/errors.js'
import { connectError, noteTarget, toStoreError } from '../../src/store/postgres/driver/errors.js'
import { createNodePostgresDriver } from '../../src/store/postgres/driver/node-postgres-driver.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { type PgBouncer, pgbouncerSkip, startPgBouncer } from '../support/pgbouncer.js'
import { createTestDatabase, type TestDatabase } from '../support/services.js'

/** A driver error as node-postgres raises it for a server's ErrorResponse. */
const serverError = (code: string, message: string) => Object.assign(new Error(message), { code })
const target = { host: 'db.internal', port: '6432', secrets: ['s3cret-pw'] }

test('a protocol violation during a call (08P01) is STORE_REFUSED with the server message, never "unavailable"', () => {
  const error = toStoreError(
    noteTarget(serverError('08P01', 'unsupported pkt type: 80 (password s3cret-pw)'), target),
    'commit',
  )
  assert.ok(isUserEngineError(error, 'STORE_REFUSED'), String(error))
  assert.match(error.message, /refused the request \(commit\): unsupported pkt type: 80/)
  assert.match(error.message, /SQLSTATE 08P01/)
  assert.doesNotMatch(error.message, /s3cret-pw|unavailable|retry(ing)? (may|later)/)
  assert.equal(error.details.sqlState, '08P01')
})

test("a pooler's passing condition reported as 08P01 is STORE_UNAVAILABLE with its words, at startup and during a call", () => {
  const during = toStoreError(noteTarget(serverError('08P01', 'query_wait_timeout'), target), 'open')
  assert.ok(isUserEngineError(during, 'STORE_UNAVAILABLE'), String(during))
  assert.match(
    during.message,
    /db\.internal:6432 is unavailable \(open\): query_wait_timeout \(SQLSTATE 08P01\)/,
  )
  const full = connectError(serverError('08P01', 'no more connections allowed (max_client_conn)'), target)
  assert.ok(isUserEngineError(full, 'STORE_UNAVAILABLE'), String(full))
  assert.match(full.message, /no more connections allowed/)
  const refused = connectError(serverError('08P01', 'unsupported startup parameter: options'), target)
  assert.ok(isUserEngineError(refused, 'STORE_REFUSED'), String(refused))
})

test('a lost connection (08006) stays STORE_UNAVAILABLE and now quotes the server', () => {
  const error = toStoreError(
    noteTarget(serverError('08006', 'server closed the connection'), target),
    'commit',
  )
  assert.ok(isUserEngineError(error, 'STORE_UNAVAILABLE'), String(error))
  assert.match(error.message, /server closed the connection \(SQLSTATE 08006\)/)
})

const skip = await pgbouncerSkip()

describe('a PgBouncer wait that runs out, through the store', { skip }, () => {
  let bouncer: PgBouncer
  let db: TestDatabase
  before(async () => {
    // One server connection, and a client gives up waiting for it after a second.
    bouncer = await startPgBouncer({ poolSize: 1, queryWaitTimeout: 1 })
    db = await createTestDatabase('ue_pooler_wait', LATEST_SCHEMA_VERSION)
  })
  after(async () => {
    await bouncer?.stop()
    await db?.drop()
  })

  test('query_wait_timeout is STORE_UNAVAILABLE quoting PgBouncer, not a bare "unavailable"', async () => {
    const holder = await createNodePostgresDriver({ connectionString: bouncer.urlFor(db.name) })
    const store = await createNodePostgresStore({ connectionString: bouncer.urlFor(db.name) })
    try {
      await holder.session(async (s) => {
        // An open transaction keeps the only server connection.
        await s.query('BEGIN')
        try {
          await assert.rejects(store.getTenant('t_wait'), (e) => {
            assert.ok(isUserEngineError(e, 'STORE_UNAVAILABLE'), String(e))
            assert.match(e.message, /query_wait_timeout/)
            assert.equal(e.details.sqlState, '08P01')
            return true
          })
        } finally {
          await s.query('ROLLBACK')
        }
      })
    } finally {
      await store.close()
      await holder.close()
    }
  })
})
