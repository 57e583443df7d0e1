import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { openStore } from '../../src/cli/shared/open-store.js'
import { encodeCursor } from '../../src/domain/cursor.js'
import { prefixUpperBound } from '../../src/domain/user-queries.js'
import type { PostgresUserEngineStore } from '../../src/store/postgres/postgres-store.js'
import { listAuditStatement, listUsersStatement } from '../../src/store/postgres/sql.js'
import { ADAPTERS } from '../support/adapters.js'

const SQL_ADAPTERS = ADAPTERS.filter((a) => a.name !== 'memory')

/** Counts the statements the store sends from now on. */
function countQueries(store: PostgresUserEngineStore): () => number {
  const driver = store.driver as { query: PostgresUserEngineStore['driver']['query'] }
  const original = driver.query
  let n = 0
  driver.query = ((sql: string, params?: readonly unknown[]) => {
    n++
    return original.call(store.driver, sql, params)
  }) as typeof original
  return () => n
}

// Reads a service needs, as the Postgres store serves them: one statement per page, and index ranges that
// do not grow with the tenant (the plans name the 0008 indexes).
for (const adapter of SQL_ADAPTERS) {
  const skip = await adapter.skip()
  describe(`reads on ${adapter.name}`, { skip }, () => {
    let store: PostgresUserEngineStore
    let release: () => Promise<void>
    const tenantId = 'ten_reads'
    before(async () => {
      const opened = await adapter.open()
      release = opened.release
      store = (await openStore(opened.location)) as PostgresUserEngineStore
      await store.migrate()
      // 20 000 users with an email each, written directly: enough rows for the planner to prefer the indexes.
      await store.driver.exec(`
        INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
        SELECT '${tenantId}', 'tenant', '${tenantId}', NULL, 1, '{"name":"Reads","status":"active"}', now(), now();
        INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
        SELECT '${tenantId}', 'user', 'usr_' || lpad(i::text, 6, '0'), 'usr_' || lpad(i::text, 6, '0'), 1,
               '{"status":"active"}', now(), now() FROM generate_series(1, 20000) AS i;
        INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
        SELECT '${tenantId}', 'identifier', 'idn_' || lpad(i::text, 6, '0'), 'usr_' || lpad(i::text, 6, '0'), 1,
               jsonb_build_object('kind', 'email', 'value', md5(i::text) || '@example.com', 'verified', false),
               now(), now() FROM generate_series(1, 20000) AS i;
        INSERT INTO user_engine_audit (tenant_id, id, occurred_at, action, user_id, data)
        SELECT '${tenantId}', 'aud_' || lpad(i::text, 6, '0'), now(), 'user.registered', NULL, '{}'
        FROM generate_series(1, 20000) AS i;
        ANALYZE user_engine_records;
        ANALYZE user_engine_audit;`)
    })
    after(async () => {
      await store?.close()
      await release?.()
    })

    test('a page of 50 with identifiers, a prefix search page and a count are one statement each', async () => {
      const queries = countQueries(store)
      const page = await store.listUsers(tenantId, { limit: 50, includeIdentifiers: true })
      assert.equal(page.items.length, 50)
      assert.ok(page.items.every((u) => u.identifiers?.length === 1))
      assert.equal(queries(), 1)
      const found = await store.listUsers(tenantId, {
        limit: 50,
        includeIdentifiers: true,
        identifierPrefix: { kind: 'email', prefix: 'a' },
      })
      assert.equal(found.items.length, 50)
      assert.ok(found.items.every((u) => u.identifiers?.[0]?.value.startsWith('a')))
      assert.equal(queries(), 2)
      const next = await store.listUsers(tenantId, {
        limit: 50,
        identifierPrefix: { kind: 'email', prefix: 'a' },
        cursor: found.nextCursor!,
      })
      assert.equal(next.items.length, 50)
      assert.equal(queries(), 3)
      const count = await store.countUsers(tenantId, { identifierPrefix: { kind: 'email', prefix: 'a' } })
      assert.ok(count > 100 && count < 20000)
      assert.equal(queries(), 4)
    })

    test('listed identifiers keep any value: spaces, quotes, backslashes, newlines, non-ASCII', async () => {
      // Written by SQL, as a store-level write could: the store validates no identifier value it lists.
      const values = [
        'a b@example.com',
        'quo"te',
        'back\\slash',
        'new\nline',
        'ünï 漢字 😀',
        'tab\there',
        'null',
      ]
      await store.driver.query(
        `INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
         VALUES ($1, 'user', 'usr_zzodd', 'usr_zzodd', 1, '{"status":"active"}', now(), now())`,
        [tenantId],
      )
      for (const [i, value] of values.entries()) {
        await store.driver.query(
          `INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
           VALUES ($1, 'identifier', $2, 'usr_zzodd', 1,
             jsonb_build_object('kind', 'username', 'value', $3::text, 'verified', $4::boolean), now(), now())`,
          [tenantId, `idn_zzodd_${6 - i}`, value, i % 2 === 0],
        )
      }
      const page = await store.listUsers(tenantId, {
        limit: 1,
        includeIdentifiers: true,
        cursor: encodeCursor('usr_020000'),
      })
      assert.equal(page.items[0]?.id, 'usr_zzodd')
      assert.deepEqual(
        page.items[0]?.identifiers,
        values
          .map((value, i) => ({ id: `idn_zzodd_${6 - i}`, kind: 'username', value, verified: i % 2 === 0 }))
          .reverse(),
      )
    })

    test('findSession: the session and its tenant status in one read; again after the statements are gone', async () => {
      await store.driver.query(
        `INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
         VALUES ($1, 'session', 'ses_reads', 'usr_000001', 3, $2::jsonb, '2026-01-02T03:04:05.678Z', '2026-01-03T04:05:06.789Z')`,
        [
          tenantId,
          JSON.stringify({
            tokenHash: 'a'.repeat(64),
            methods: ['password', 'totp'],
            lastSeenAt: '2026-01-03T04:05:06.789Z',
            expiresAt: '2026-02-03T04:05:06.789Z',
            absoluteExpiresAt: '2026-03-03T04:05:06.789Z',
          }),
        ],
      )
      const expected = {
        id: 'ses_reads',
        tenantId,
        userId: 'usr_000001',
        methods: ['password', 'totp'],
        lastSeenAt: '2026-01-03T04:05:06.789Z',
        expiresAt: '2026-02-03T04:05:06.789Z',
        absoluteExpiresAt: '2026-03-03T04:05:06.789Z',
        version: 3,
        createdAt: '2026-01-02T03:04:05.678Z',
        updatedAt: '2026-01-03T04:05:06.789Z',
      }
      const check = async () => {
        const found = await store.findSession(tenantId, 'ses_reads')
        assert.equal(found?.tenantStatus, 'active')
        const { tokenHash, ...session } = found!.session
        assert.equal(tokenHash.reveal(), 'a'.repeat(64))
        assert.deepEqual(session, expected)
      }
      await check()
      assert.equal(await store.findSession(tenantId, 'ses_none'), null)
      assert.equal(await store.findSession('ten_other', 'ses_reads'), null)
      if (adapter.name === 'pglite') {
        // PGlite's one connection: its prepared statements dropped under the driver, which prepares again.
        await store.driver.exec('DEALLOCATE ALL')
        await check()
      }
    })

    test('EXPLAIN: a prefix search reads user_engine_identifier_prefix_idx; an audit cursor, the audit id index', async () => {
      const explain = async (statement: { text: string; values: unknown[] }) =>
        (await store.driver.query<Record<string, string>>(`EXPLAIN ${statement.text}`, statement.values)).rows
          .map((r) => Object.values(r)[0])
          .join('\n')
      for (const includeIdentifiers of [false, true]) {
        const plan = await explain(
          listUsersStatement({
            tenantId,
            limit: 50,
            after: 'ab',
            status: 'active',
            prefix: { kind: 'email', lower: 'ab', upper: prefixUpperBound('ab') },
            includeIdentifiers,
          }),
        )
        assert.match(plan, /user_engine_identifier_prefix_idx/, plan)
        assert.doesNotMatch(plan, /Seq Scan/, plan)
      }
      const audit = await explain(
        listAuditStatement({
          tenantId,
          limit: 50,
          afterId: 'aud_010000',
          userId: undefined,
          requestContext: true,
        }),
      )
      assert.match(audit, /user_engine_audit_id_key/, audit)
      assert.doesNotMatch(audit, /Seq Scan/, audit)
    })
  })
}
