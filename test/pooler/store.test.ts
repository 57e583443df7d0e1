import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type TOTP, URI } from 'otpauth'
import pg from 'pg'
import { isUserEngineError } from '../../src/domain/errors.js'
import { InProcessPublisher, OutboxRelay, type PublishedEvent } from '../../src/outbox/index.js'
import { createNodePostgresDriver } from '../../src/store/postgres/driver/node-postgres-driver.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import type { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { setup } from '../engine/support.js'
import { commitEvents, waitFor } from '../outbox/helpers.js'
import { type PgBouncer, pgbouncerSkip, pgbouncerVersion, startPgBouncer } from '../support/pgbouncer.js'
import { createTestDatabase, type TestDatabase } from '../support/services.js'

/**
 * The store's ordinary traffic through a real PgBouncer in transaction pooling mode: each unit of work is
 * one statement, so any server connection may run it.
 */
const skip = await pgbouncerSkip()

describe('the node-postgres store through PgBouncer (pool_mode = transaction)', { skip }, () => {
  let bouncer: PgBouncer
  let db: TestDatabase
  let pooledUrl: string
  let store: PostgresUserEngineStore
  before(async () => {
    bouncer = await startPgBouncer()
    db = await createTestDatabase('ue_pooler', LATEST_SCHEMA_VERSION)
    pooledUrl = bouncer.urlFor(db.name)
    store = (await createNodePostgresStore({ connectionString: pooledUrl })) as PostgresUserEngineStore
  })
  after(async () => {
    await store?.close()
    await bouncer?.stop()
    await db?.drop()
  })

  test(`PgBouncer ${pgbouncerVersion()} is detected as a pooler; a direct connection is not`, async () => {
    const pooled = await createNodePostgresDriver({ connectionString: pooledUrl })
    const direct = await createNodePostgresDriver({ connectionString: db.url })
    try {
      assert.equal(await pooled.throughPooler?.(), true)
      assert.equal(await direct.throughPooler?.(), false)
    } finally {
      await pooled.close()
      await direct.close()
    }
  })

  test('registrations from 8 callers at once all land; a duplicate-email race has exactly one winner', async () => {
    const h = setup({ store })
    const { id: t } = await h.engine.createTenant('Pooled')
    const users = await Promise.all(
      Array.from({ length: 8 }, (_, i) => h.engine.registerUser(t, { email: `caller${i}@example.com` })),
    )
    assert.equal(new Set(users.map((u) => u.id)).size, 8)
    assert.equal((await h.engine.listUsers(t)).items.length, 8)
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, (_, i) =>
          h.engine.registerUser(t, {
            email: i % 2 ? `race${round}@example.com` : `RACE${round}@example.com`,
          }),
        ),
      )
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}`)
      for (const r of results) {
        if (r.status === 'rejected')
          assert.ok(isUserEngineError(r.reason, 'DUPLICATE_IDENTIFIER'), String(r.reason))
      }
    }
    assert.equal((await h.engine.listUsers(t, { limit: 100 })).items.length, 13)
  })

  test('the use cases work: sign-in, TOTP, sessions, email change, profile, disable, delete', async () => {
    const h = setup({ store })
    const { id: t } = await h.engine.createTenant('Acme')
    const user = await h.engine.registerUser(t, {
      email: 'ann@example.com',
      password: 'correct horse battery',
    })
    await h.engine.setUsername(t, user.id, 'ann')
    const signIn = await h.engine.authenticate(t, { username: 'ann', password: 'correct horse battery' })
    assert.equal(signIn.status, 'signed_in')
    await assert.rejects(
      h.engine.authenticate(t, { username: 'ann', password: 'wrong horse battery' }),
      (e) => isUserEngineError(e, 'INVALID_CREDENTIALS'),
    )
    const { uri } = await h.engine.enrollTotp(t, user.id)
    const totp = URI.parse(uri) as TOTP
    assert.equal(await h.engine.verifyTotp(t, user.id, totp.generate({ timestamp: h.now })), true)
    const session = await h.engine.createSession(t, user.id)
    const validated = await h.engine.validateSession(session.token.reveal())
    assert.equal(validated?.userId, user.id)
    await h.engine.changeEmail(t, user.id, 'ann2@example.com')
    assert.equal((await h.engine.findUserByEmail(t, 'ann2@example.com'))?.id, user.id)
    await h.engine.updateProfile(t, user.id, { plan: 'pro' })
    assert.deepEqual((await h.engine.getProfile(t, user.id)).attributes, { plan: 'pro' })
    await h.engine.disableUser(t, user.id)
    await h.engine.deleteUser(t, user.id)
    assert.ok((await store.listAudit(t)).items.length > 5)
  })

  test('three relays drain one outbox through the pooler: every event published exactly once', async () => {
    const users = Array.from({ length: 12 }, (_, i) => `u${i}`)
    await commitEvents(store, 't_relay', 'u0', 0)
    await Promise.all(users.map((u) => commitEvents(store, 't_relay', u, 1)))
    for (let round = 0; round < 4; round++) {
      await Promise.all(users.map((u) => commitEvents(store, 't_relay', u, 1 + (round % 2))))
    }
    const committed = (
      await Promise.all(users.map((u) => store.outbox.listForAggregate('t_relay', u)))
    ).flat()
    assert.equal(committed.length, 12 * 7)
    const delivered: PublishedEvent[] = []
    // Through transaction pooling a LISTEN lands on a server connection the pooler hands on: no wakes, so
    // the relays poll.
    const relays = Array.from(
      { length: 3 },
      () =>
        new OutboxRelay({
          outbox: store.outbox,
          publisher: new InProcessPublisher((e) => void delivered.push(e)),
          batchSize: 5,
          pollIntervalMs: 20,
          wakeOnCommit: false,
          onError: () => {},
        }),
    )
    for (const r of relays) r.start()
    try {
      await waitFor(async () => (await store.outbox.lag()).pending === 0, 20_000, 'outbox drained')
    } finally {
      await Promise.all(relays.map((r) => r.stop()))
    }
    const ids = delivered.map((e) => e.id).filter((id) => committed.some((c) => c.id === id))
    assert.equal(ids.length, committed.length, 'deliveries of the committed events')
    assert.equal(new Set(ids).size, committed.length, 'each committed event published exactly once')
    const progress = await Promise.all(relays.map((r) => r.progress()))
    assert.ok(progress.filter((p) => p.published > 0).length >= 2, 'more than one relay published')
  })
})

describe('prepared statements through PgBouncer (pool_mode = transaction)', { skip }, () => {
  let bouncer: PgBouncer
  let db: TestDatabase
  before(async () => {
    bouncer = await startPgBouncer({ poolSize: 1 })
    db = await createTestDatabase('ue_pooler_prep')
  })
  after(async () => {
    await bouncer?.stop()
    await db?.drop()
  })

  // One server connection behind the pooler: a second client's statement lands where the first prepared.
  const twoClients = async (preparedStatements: boolean | undefined) => {
    const driver = await createNodePostgresDriver({
      connectionString: bouncer.urlFor(db.name),
      ...(preparedStatements === undefined ? {} : { preparedStatements }),
    })
    try {
      return await driver.session(async (first) => {
        await first.query('SELECT $1::int AS n', [1])
        await driver.query('SELECT $1::int AS n', [2])
        return (await first.query<{ n: number }>('SELECT $1::int AS n', [3])).rows[0]?.n
      })
    } finally {
      await driver.close()
    }
  }

  test('on: PgBouncer 1.18 does not carry them, and the call fails with POOLED_CONNECTION saying to turn them off', async (t) => {
    const version = pgbouncerVersion() ?? '0'
    const [major, minor] = version.split('.').map(Number)
    if ((major ?? 0) > 1 || (minor ?? 0) >= 21) {
      t.skip(
        `PgBouncer ${version} may carry prepared statements (max_prepared_statements); see the 1.21 test`,
      )
      return
    }
    await assert.rejects(twoClients(true), (e) => {
      assert.ok(isUserEngineError(e, 'POOLED_CONNECTION'), String(e))
      assert.match(e.message, /preparedStatements: false/)
      assert.match(e.message, /max_prepared_statements/)
      assert.match(String(e.details.sqlState), /^(26000|42P05)$/)
      return true
    })
  })

  test('off, and unset (the default turns them off behind a pooler): the same calls work', async () => {
    assert.equal(await twoClients(false), 3)
    assert.equal(await twoClients(undefined), 3)
  })

  test('unset on a direct connection: named statements are used', async () => {
    const driver = await createNodePostgresDriver({ connectionString: db.url })
    try {
      const names = await driver.session(async (s) => {
        await s.query('SELECT $1::int AS n', [1])
        return (await s.query<{ name: string }>('SELECT name FROM pg_prepared_statements', [])).rows
      })
      assert.ok(
        names.some((r) => r.name.startsWith('ue_')),
        'a ue_ statement is prepared',
      )
    } finally {
      await driver.close()
    }
  })
})

describe('refusals through PgBouncer say what happened', { skip }, () => {
  let bouncer: PgBouncer
  let db: TestDatabase
  before(async () => {
    bouncer = await startPgBouncer()
    db = await createTestDatabase('ue_pooler_refuse', LATEST_SCHEMA_VERSION)
  })
  after(async () => {
    await bouncer?.stop()
    await db?.drop()
  })

  test('a startup parameter PgBouncer rejects (options) is STORE_REFUSED with its message, not STORE_UNAVAILABLE', async () => {
    const pool = new pg.Pool({
      connectionString: bouncer.urlFor(db.name).replace('postgres@', 'postgres:s3cret-pw@'),
      options: '-c search_path=public',
    })
    pool.on('error', () => undefined)
    try {
      await assert.rejects(createNodePostgresStore({ pool }), (e) => {
        assert.ok(isUserEngineError(e, 'STORE_REFUSED'), String(e))
        assert.match(e.message, /unsupported startup parameter: options/)
        assert.doesNotMatch(e.message, /s3cret-pw|retry/)
        return true
      })
    } finally {
      await pool.end()
    }
  })
})
