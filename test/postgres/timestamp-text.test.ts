// Point reads take timestamps as the server's text and turn them into the records' ISO 8601 form without a
// Date when the session is in UTC. Each form the server writes must come out as the instant it names.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { UserEngine } from '../../src/engine/index.js'
import { createKeyring, generateKey } from '../../src/engine/keyring.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import type { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { isoFromTimestamptz, isoOf } from '../../src/store/postgres/timestamp-text.js'
import { createTestDatabase, postgresSkip, type TestDatabase } from '../support/services.js'

describe('isoFromTimestamptz', () => {
  test('UTC text with 0 to 6 fraction digits keeps milliseconds, padded, and cuts the rest', () => {
    assert.equal(isoFromTimestamptz('2026-11-30 19:56:36+00'), '2026-11-30T19:56:36.000Z')
    assert.equal(isoFromTimestamptz('2026-11-30 19:56:36.1+00'), '2026-11-30T19:56:36.100Z')
    assert.equal(isoFromTimestamptz('2026-11-30 19:56:36.12+00'), '2026-11-30T19:56:36.120Z')
    assert.equal(isoFromTimestamptz('2026-11-30 19:56:36.123+00'), '2026-11-30T19:56:36.123Z')
    assert.equal(isoFromTimestamptz('2026-11-30 19:56:36.123999+00'), '2026-11-30T19:56:36.123Z')
    assert.equal(isoFromTimestamptz('0099-01-02 03:04:05.6+00'), '0099-01-02T03:04:05.600Z')
  })

  test('other offsets, with minutes and seconds, name the same instant', () => {
    assert.equal(isoFromTimestamptz('2026-12-01 01:26:36.12+05:30'), '2026-11-30T19:56:36.120Z')
    assert.equal(isoFromTimestamptz('2026-11-30 16:26:36.123456-03:30'), '2026-11-30T19:56:36.123Z')
    assert.equal(isoFromTimestamptz('2026-11-30 14:56:36-05'), '2026-11-30T19:56:36.000Z')
    assert.equal(isoFromTimestamptz('1900-01-01 00:19:32+00:19:32'), '1900-01-01T00:00:00.000Z')
    assert.equal(isoFromTimestamptz('0099-01-01 05:00:00+05'), '0099-01-01T00:00:00.000Z')
  })

  test("ISO 8601 text, as a provider's driver may return it, names the same instant", () => {
    assert.equal(isoFromTimestamptz('2026-11-30T19:56:36.120Z'), '2026-11-30T19:56:36.120Z')
    assert.equal(isoFromTimestamptz('2026-11-30T19:56:36Z'), '2026-11-30T19:56:36.000Z')
    assert.equal(isoFromTimestamptz('2026-12-01T01:26:36.12+05:30'), '2026-11-30T19:56:36.120Z')
    assert.equal(isoFromTimestamptz('2026-12-01T01:26:36.12+0530'), '2026-11-30T19:56:36.120Z')
    assert.equal(isoFromTimestamptz('0099-01-02T03:04:05.600Z'), '0099-01-02T03:04:05.600Z')
  })

  test('isoOf takes a Date as it is and text without new Date (year 0099 stays 0099)', () => {
    const at = new Date('2026-11-30T19:56:36.123Z')
    assert.equal(isoOf(at), '2026-11-30T19:56:36.123Z')
    assert.equal(isoOf('2026-11-30 19:56:36.123+00'), '2026-11-30T19:56:36.123Z')
    assert.equal(isoOf('0099-01-02 03:04:05+00'), '0099-01-02T03:04:05.000Z')
    assert.equal(isoOf('0099-01-02T03:04:05.000Z'), '0099-01-02T03:04:05.000Z')
    assert.throws(() => isoOf('not a time'), /DateStyle ISO/)
  })

  test('text that is not DateStyle ISO is refused without echoing it', () => {
    for (const text of ['Mon Nov 30 19:56:36.12 2026 UTC', '30.11.2026 19:56:36.12 UTC', 'infinity']) {
      assert.throws(
        () => isoFromTimestamptz(text),
        (e: Error) => /DateStyle ISO/.test(e.message) && !e.message.includes(text),
      )
    }
  })
})

const skip = await postgresSkip()

describe('point reads under a session time zone other than UTC', { skip }, () => {
  let database: TestDatabase
  const pools: pg.Pool[] = []
  const stores: PostgresUserEngineStore[] = []
  const open = async (timezone: string) => {
    const pool = new pg.Pool({ connectionString: database.url, max: 2, options: `-c timezone=${timezone}` })
    // The database is dropped WITH (FORCE) at the end: a connection pool.end() has not closed yet is terminated.
    pool.on('error', () => {})
    pools.push(pool)
    const store = await createNodePostgresStore({ pool })
    stores.push(store)
    return store
  }
  before(async () => {
    database = await createTestDatabase('ue_tz')
  })
  after(async () => {
    for (const store of stores) await store.close()
    for (const pool of pools) await pool.end()
    await database?.drop()
  })

  test('a user, its identifier and its tenant read the same through UTC, +05:30 and -03:30', async () => {
    const utc = await open('UTC')
    await utc.migrate()
    const engine = new UserEngine({
      store: utc,
      keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
    })
    const tenant = await engine.createTenant('Zones')
    const user = await engine.registerUser(tenant.id, { email: 'zone@example.com' })
    // A row written by SQL with microseconds, as a provider's own tooling might write it.
    await utc.driver.query(
      `UPDATE user_engine_records SET updated_at = '2026-11-30 19:56:36.987654+00' WHERE tenant_id = $1 AND record_id = $2`,
      [tenant.id, user.id],
    )
    const read = async (store: PostgresUserEngineStore) => ({
      user: await store.getUser(tenant.id, user.id),
      byEmail: await store.findUserByIdentifier(tenant.id, 'email', 'zone@example.com'),
      identifier: await store.getIdentifier(tenant.id, 'email', 'zone@example.com'),
      tenant: await store.getTenant(tenant.id),
    })
    const inUtc = await read(utc)
    assert.equal(inUtc.user?.createdAt, user.createdAt)
    assert.equal(inUtc.user?.updatedAt, '2026-11-30T19:56:36.987Z')
    assert.equal(inUtc.tenant?.createdAt, tenant.createdAt)
    for (const zone of ['Asia/Kolkata', 'America/St_Johns']) {
      assert.deepEqual(await read(await open(zone)), inUtc, zone)
    }
  })
})
