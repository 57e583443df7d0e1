import pg from 'pg'
import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import { SQL } from '../src/store/postgres/sql.js'
import { createTestDatabase } from '../test/support/services.js'
const [users, per] = (process.env.SHAPE ?? '5000x1').split('x').map(Number) as [number, number]
const published = Number(process.env.PUBLISHED ?? 0)
const db = await createTestDatabase('ue_explain')
const store = await createNodePostgresStore({ connectionString: db.url })
await store.migrate()
const c = new pg.Client({ connectionString: db.url }); await c.connect()
const ins = `INSERT INTO user_engine_outbox (tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at, available_at, status, published_at)
  SELECT 't', $4 || u || '_' || s, 'user', 'u' || u, s, 0, 'x', '{"note":"a small payload like most events"}', now(), now() + (s * 1000 + u) * interval '1 microsecond', $5, $6
  FROM generate_series(1, $1::int) u, generate_series($2::int, $3::int) s`
if (published > 0) await c.query(ins, [users, 1, Math.ceil(published / users), 'p', 'published', new Date()])
const base = published > 0 ? Math.ceil(published / users) : 0
await c.query(ins, [users, base + 1, base + per, 'e', 'pending', null])
if (published > 0) await c.query('VACUUM ANALYZE user_engine_outbox')
else if (process.env.ANALYZE !== '0') await c.query('ANALYZE user_engine_outbox')
const params = ['relay', Number(process.env.LIMIT ?? 500), 30000, Number(process.env.PER ?? 100), Number(process.env.NEW ?? 500), [], []]
await c.query('BEGIN')
const r = await c.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${SQL.outbox.claim}`, params)
console.log(r.rows.map((x) => x['QUERY PLAN']).join('\n'))
await c.query('ROLLBACK')
await c.end(); await store.close(); await db.drop()
