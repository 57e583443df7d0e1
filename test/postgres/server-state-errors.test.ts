// Statements the server fails for its own state (a cancel, a lock wait past lock_timeout, a read-only server,
// a full disk, an I/O error) are STORE_UNAVAILABLE with the SQLSTATE in details, never a bare driver error.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { isUserEngineError } from '../../src/domain/errors.js'
import { createKeyring, generateKey } from '../../src/engine/keyring.js'
import { UserEngine } from '../../src/engine/user-engine.js'
import {
  isServerStateFailure,
  SanitizedDatabaseError,
  toStoreError,
} from '../../src/store/postgres/driver/errors.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import type { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { createTestDatabase, postgresSkip, rawClient, type TestDatabase } from '../support/services.js'

const driverError = (code: string, message: string) => Object.assign(new Error(message), { code })

test('server-state SQLSTATEs are STORE_UNAVAILABLE (a commit: not applied); bugs stay sanitized errors', () => {
  for (const code of [
    '57014',
    '55P03',
    '25006',
    '53100',
    '53200',
    '58P01',
    '58030',
    'XX000',
    '40001',
    '40P01',
  ]) {
    assert.ok(isServerStateFailure(code), code)
    const error = toStoreError(driverError(code, 'could not extend file "base/1/2": No space left'), 'commit')
    assert.ok(isUserEngineError(error, 'STORE_UNAVAILABLE'), `${code}: ${String(error)}`)
    assert.deepEqual(error.details, { sqlState: code, outcome: 'not_applied' })
    assert.match(error.message, new RegExp(`SQLSTATE ${code}\\); the commit was not applied$`))
    assert.ok(error.cause instanceof SanitizedDatabaseError)
  }
  const read = toStoreError(driverError('57014', 'canceling statement due to statement timeout'), 'read')
  assert.ok(isUserEngineError(read, 'STORE_UNAVAILABLE'))
  assert.deepEqual(read.details, { sqlState: '57014' })
  const revoked = toStoreError(
    driverError('42501', 'permission denied for table user_engine_records'),
    'read',
  )
  assert.ok(isUserEngineError(revoked, 'STORE_REFUSED'), String(revoked))
  // A request the server would refuse again the same way is a bug, not the server's state: kept as it was.
  for (const code of ['23505', '42P01', '22P02']) {
    assert.ok(!isServerStateFailure(code), code)
    assert.ok(toStoreError(driverError(code, 'x'), 'read') instanceof SanitizedDatabaseError, code)
  }
})

const skip = await postgresSkip()

describe('a server that fails statements for its own state', { skip, timeout: 60_000 }, () => {
  let db: TestDatabase
  const opened: PostgresUserEngineStore[] = []
  const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } })
  const engineOver = async (settings: string) => {
    const store = await createNodePostgresStore({
      connectionString: `${db.url}?options=${encodeURIComponent(settings)}`,
    })
    opened.push(store)
    return new UserEngine({
      store,
      keyring,
      passwordHashing: { memoryCost: 64, timeCost: 1, parallelism: 1 },
    })
  }
  let tenantId: string

  before(async () => {
    db = await createTestDatabase('ue_srvstate')
    const migrator = await createNodePostgresStore({ connectionString: db.url })
    await migrator.migrate()
    tenantId = (await new UserEngine({ store: migrator, keyring }).createTenant('State')).id
    await migrator.close()
  })

  after(async () => {
    for (const store of opened) await store.close().catch(() => undefined)
    await db?.drop()
  })

  test('a read-only server (a standby after failover): writes are STORE_UNAVAILABLE 25006, reads work', async () => {
    const engine = await engineOver('-c default_transaction_read_only=on')
    const error = await engine.registerUser(tenantId, { email: 'ro@example.com' }).catch((e: unknown) => e)
    assert.ok(isUserEngineError(error, 'STORE_UNAVAILABLE'), String(error))
    assert.equal((error.details as { sqlState?: string }).sqlState, '25006')
    assert.equal((error.details as { outcome?: string }).outcome, 'not_applied')
    assert.equal((await engine.getTenant(tenantId)).id, tenantId)
  })

  test('lock_timeout and statement_timeout: STORE_UNAVAILABLE 55P03 and 57014, nothing written', async () => {
    const holder = await rawClient(db.url)
    try {
      await holder.query('BEGIN')
      await holder.query('LOCK TABLE user_engine_records IN ACCESS EXCLUSIVE MODE')
      for (const [settings, state] of [
        ['-c lock_timeout=50', '55P03'],
        ['-c statement_timeout=50', '57014'],
      ] as const) {
        const engine = await engineOver(settings)
        const error = await engine
          .registerUser(tenantId, { email: `${state}@example.com` })
          .catch((e: unknown) => e)
        assert.ok(isUserEngineError(error, 'STORE_UNAVAILABLE'), `${settings}: ${String(error)}`)
        assert.equal((error.details as { sqlState?: string }).sqlState, state)
      }
    } finally {
      await holder.query('ROLLBACK')
      await holder.end()
    }
    const check = await rawClient(db.url)
    try {
      const { rows } = await check.query(
        "SELECT count(*)::int AS n FROM user_engine_records WHERE record_type = 'user'",
      )
      assert.equal(rows[0].n, 0, 'a failed registration wrote a user')
    } finally {
      await check.end()
    }
  })
})
