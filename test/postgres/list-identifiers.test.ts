import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { openStore } from '../../src/cli/shared/open-store.js'
import { encodeCursor } from '../../src/domain/cursor.js'
import type { SqlDriver } from '../../src/store/postgres/driver/driver.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { listUsersStatement } from '../../src/store/postgres/sql.js'
import type { ListedIdentifier } from '../../src/store/store.js'
import { SQL_ADAPTERS } from '../support/adapters.js'
import { POSTGRES_ADMIN_URL, postgresSkip } from '../support/services.js'

// A page by id with identifiers reads them all in one range of user_engine_records_user_idx, between the
// page's least and greatest user id in the database's default collation (sql.ts listUsersStatement). These
// check the edges of that range: users without identifiers, first, last and empty pages, a status filter,
// and ids whose order in the default collation is not their code-point order (mixed case, '-' and '_'), where
// the range also holds identifiers of users outside the page.

const tenantId = 'ten_listed'

interface SeedUser {
  readonly id: string
  readonly status: 'active' | 'disabled'
  readonly identifiers: ListedIdentifier[]
}

/** 60 users: ids of both cases for most letters, with '-' or '_', so "C" and a locale order them differently. */
function seedUsers(): SeedUser[] {
  const users: SeedUser[] = []
  for (let i = 0; i < 60; i++) {
    const letter = String.fromCharCode(97 + (i % 26))
    const id = `${(i + Math.floor(i / 26)) % 2 === 0 ? letter : letter.toUpperCase()}${i % 3 === 0 ? '-' : '_'}${String(i).padStart(2, '0')}`
    // Every fifth user has none; the others an email, and every other one a username too.
    const identifiers: ListedIdentifier[] = []
    if (i % 5 !== 0) {
      identifiers.push({
        id: `idn_${id}_e`,
        kind: 'email',
        value: `user${i}@example.com`,
        verified: i % 4 === 0,
      })
      if (i % 2 === 1)
        identifiers.push({ id: `idn_${id}_u`, kind: 'username', value: `name ${i}`, verified: false })
    }
    users.push({ id, status: i % 7 === 3 ? 'disabled' : 'active', identifiers })
  }
  return users
}

const literal = (s: string) => `'${s.replaceAll("'", "''")}'`

function seedSql(users: readonly SeedUser[]): string {
  const columns = 'tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at'
  const rows = [
    `(${literal(tenantId)}, 'tenant', ${literal(tenantId)}, NULL, 1, '{"name":"Listed","status":"active"}', now(), now())`,
  ]
  for (const u of users) {
    rows.push(
      `(${literal(tenantId)}, 'user', ${literal(u.id)}, ${literal(u.id)}, 1, '{"status":"${u.status}"}', now(), now())`,
    )
    for (const i of u.identifiers) {
      const payload = JSON.stringify({ kind: i.kind, value: i.value, verified: i.verified })
      rows.push(
        `(${literal(tenantId)}, 'identifier', ${literal(i.id)}, ${literal(u.id)}, 1, ${literal(payload)}, now(), now())`,
      )
    }
  }
  return `INSERT INTO user_engine_records (${columns}) VALUES ${rows.join(',\n')}; ANALYZE user_engine_records;`
}

// Code-point order, as the stores list users (ids are ASCII).
const byId = (a: SeedUser, b: SeedUser) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

async function checkPages(store: PostgresUserEngineStore, users: readonly SeedUser[]): Promise<void> {
  for (const status of [undefined, 'active', 'disabled'] as const) {
    const expected = users.filter((u) => status === undefined || u.status === status).sort(byId)
    for (const limit of [1, 3, 7, 50, 100]) {
      const listed: { id: string; identifiers: readonly ListedIdentifier[] | undefined }[] = []
      const plain: string[] = []
      let cursor: string | undefined
      let plainCursor: string | undefined
      let pages = 0
      do {
        const page = await store.listUsers(tenantId, { limit, cursor, status, includeIdentifiers: true })
        const without = await store.listUsers(tenantId, { limit, cursor: plainCursor, status })
        assert.ok(page.items.length <= limit)
        listed.push(...page.items.map((u) => ({ id: u.id, identifiers: u.identifiers })))
        plain.push(...without.items.map((u) => u.id))
        assert.equal(page.nextCursor, without.nextCursor, `status ${status} limit ${limit}: same cursors`)
        cursor = page.nextCursor ?? undefined
        plainCursor = without.nextCursor ?? undefined
        pages++
      } while (cursor !== undefined && pages < 200)
      const what = `status ${status ?? 'any'}, limit ${limit}`
      assert.deepEqual(
        listed.map((u) => u.id),
        expected.map((u) => u.id),
        what,
      )
      assert.deepEqual(
        plain,
        expected.map((u) => u.id),
        what,
      )
      for (const [k, u] of listed.entries()) {
        const want = [...expected[k]!.identifiers].sort((a, b) => (a.id < b.id ? -1 : 1))
        assert.deepEqual(u.identifiers, want, `${what}: identifiers of ${u.id}`)
      }
    }
    // After the last user: an empty page, with identifiers or without.
    const last = expected.at(-1)!.id
    for (const includeIdentifiers of [true, false]) {
      const empty = await store.listUsers(tenantId, {
        limit: 5,
        cursor: encodeCursor(last),
        status,
        includeIdentifiers,
      })
      assert.deepEqual(empty, { items: [], nextCursor: null })
    }
  }
  // A tenant with no users at all.
  const none = await store.listUsers('ten_nobody', { limit: 5, includeIdentifiers: true })
  assert.deepEqual(none, { items: [], nextCursor: null })
}

async function explain(
  store: PostgresUserEngineStore,
  tenant: string,
  status: string | undefined,
): Promise<string> {
  const statement = listUsersStatement({
    tenantId: tenant,
    limit: 20,
    after: null,
    status,
    prefix: undefined,
    includeIdentifiers: true,
  })
  const rows = await store.driver.query<Record<string, string>>(
    `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ${statement.text}`,
    statement.values,
  )
  return rows.rows.map((r) => Object.values(r)[0]).join('\n')
}

for (const adapter of SQL_ADAPTERS) {
  const skip = await adapter.skip()
  describe(`listUsers with identifiers on ${adapter.name}`, { skip }, () => {
    let store: PostgresUserEngineStore
    let release: () => Promise<void>
    const users = seedUsers()
    before(async () => {
      const opened = await adapter.open()
      release = opened.release
      store = (await openStore(opened.location)) as PostgresUserEngineStore
      await store.migrate()
      await store.driver.exec(seedSql(users))
      // Another tenant of 20 000 users with an email each: enough rows for the planner to prefer the indexes.
      await store.driver.exec(`
        INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
        SELECT 'ten_filler', 'user', 'usr_' || lpad(i::text, 6, '0'), 'usr_' || lpad(i::text, 6, '0'), 1,
               '{"status":"active"}', now(), now() FROM generate_series(1, 20000) AS i;
        INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
        SELECT 'ten_filler', 'identifier', 'idn_' || lpad(i::text, 6, '0'), 'usr_' || lpad(i::text, 6, '0'), 1,
               jsonb_build_object('kind', 'email', 'value', i || '@example.com', 'verified', false), now(), now()
        FROM generate_series(1, 20000) AS i;
        ANALYZE user_engine_records;`)
    })
    after(async () => {
      await store?.close()
      await release?.()
    })

    test('every page holds exactly its users identifiers: none, first, last and empty pages, by status', async () => {
      await checkPages(store, users)
    })

    test('the statement has no ORDER BY over its union: rows in reverse order give the same pages', async () => {
      // A driver that hands every page with identifiers back reversed (its identifiers row first): the store
      // must find that row and order the users itself, not trust the executor's order.
      const driver = store.driver
      const reversing: SqlDriver = {
        kind: driver.kind,
        session: (fn) => driver.session(fn),
        exec: (sql) => driver.exec(sql),
        async query<R>(sql: string, params?: readonly unknown[]) {
          const result = await driver.query<R>(sql, params)
          return sql.includes('AS identifiers') ? { ...result, rows: [...result.rows].reverse() } : result
        },
        close: async () => {},
      }
      const reordered = await PostgresUserEngineStore.open(reversing)
      await checkPages(reordered, users)
      await reordered.close()
    })

    test('EXPLAIN: one scan of user_engine_records_user_idx per page, not one per listed user', async () => {
      // A page of 20 (and the one more that tells whether a next page exists), an email each. Without a status:
      // one range of the index holding exactly their 21 identifiers; with one: the page's ids in one scan.
      const once = /user_engine_records_user_idx[^\n]*\(actual rows=21(\.00)? loops=1\)/
      const range = await explain(store, 'ten_filler', undefined)
      assert.match(range, once, range)
      assert.match(range, /user_id >= /, range)
      const byIds = await explain(store, 'ten_filler', 'active')
      assert.match(byIds, once, byIds)
      assert.match(byIds, /user_id = ANY/, byIds)
    })
  })
}

// The same pages on a server database whose default collation is a locale (ICU en-US): there user_id (default
// collation) orders mixed-case ids unlike record_id ("C"), so a page's range holds other users' identifiers.
const serverSkip = await postgresSkip()
const icu = serverSkip
  ? false
  : await (async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
      await client.connect()
      try {
        const r = await client.query(
          `SELECT 1 FROM pg_collation WHERE collprovider = 'i' AND collname = 'en-US-x-icu'`,
        )
        return r.rowCount === 1
      } finally {
        await client.end()
      }
    })()
describe('listUsers with identifiers on a server database collated en-US', {
  skip: serverSkip || (!icu && 'the server has no ICU collations'),
}, () => {
  const name = `ue_test_icu_${randomBytes(6).toString('hex')}`
  const admin = () => new pg.Client({ connectionString: POSTGRES_ADMIN_URL })
  let store: PostgresUserEngineStore
  const users = seedUsers()
  before(async () => {
    const client = admin()
    await client.connect()
    try {
      await client.query(`CREATE DATABASE ${name} LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0`)
    } finally {
      await client.end()
    }
    const url = new URL(POSTGRES_ADMIN_URL)
    url.pathname = `/${name}`
    store = await createNodePostgresStore({ connectionString: url.toString() })
    await store.migrate()
    await store.driver.exec(seedSql(users))
  })
  after(async () => {
    await store?.close()
    const client = admin()
    await client.connect()
    try {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } finally {
      await client.end()
    }
  })

  test('the database orders the ids unlike "C", so pages ranges hold other users identifiers', async () => {
    const { rows } = await store.driver.query<{ id: string }>(
      `SELECT record_id AS id FROM user_engine_records WHERE tenant_id = $1 AND record_type = 'user'
       ORDER BY record_id COLLATE "default"`,
      [tenantId],
    )
    const c = [...users].sort(byId).map((u) => u.id)
    assert.notDeepEqual(
      rows.map((r) => r.id),
      c,
    )
    // Some page of three in "C" spans more than three users in the database's order.
    const position = new Map(rows.map((r, k) => [r.id, k]))
    const spans = c.slice(0, -2).map((_, k) => {
      const at = c.slice(k, k + 3).map((id) => position.get(id)!)
      return Math.max(...at) - Math.min(...at) + 1
    })
    assert.ok(Math.max(...spans) > 3, JSON.stringify(spans))
  })

  test('every page holds exactly its users identifiers: none, first, last and empty pages, by status', async () => {
    await checkPages(store, users)
  })
})
