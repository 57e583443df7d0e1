import pg from 'pg'
import { OutboxRelay } from '../src/outbox/index.js'
import { JetStreamPublisher } from '../src/outbox/nats/index.js'
import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import type { OutboxAccess } from '../src/store/store.js'
import { createTestDatabase, NATS_URL } from '../test/support/services.js'
const [users, per] = (process.env.SHAPE ?? '5000x1').split('x').map(Number) as [number, number]
const db = await createTestDatabase('ue_thr')
const store = await createNodePostgresStore({ connectionString: db.url })
await store.migrate()
const t = 'thr'
await store.transaction(t, async (tx) => { tx.putTenant({ id: t, name: t, status: 'active' }, { mustNotExist: true }) })
// seed via SQL directly for speed
const c = new pg.Client({ connectionString: db.url }); await c.connect()
await c.query(`INSERT INTO user_engine_outbox (tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at, available_at)
  SELECT $1, 'e' || u || '_' || s, 'user', 'u' || u, s, 0, 'x', '{"note":"a small payload like most events"}', now(), now() + (s * 1000 + u) * interval '1 microsecond'
  FROM generate_series(1, $2::int) u, generate_series(1, $3::int) s`, [t, users, per])
await c.query('ANALYZE user_engine_outbox')
const stats: Record<string, { n: number; ms: number; rows: number }> = {}
const o = store.outbox
const timed = <A extends unknown[], R>(name: string, f: (...a: A) => Promise<R>, rows: (r: R) => number) => async (...a: A) => {
  const s = performance.now(); const r = await f(...a); const st = (stats[name] ??= { n: 0, ms: 0, rows: 0 }); st.n++; st.ms += performance.now() - s; st.rows += rows(r); return r }
const outbox: OutboxAccess = Object.assign(Object.create(o), {
  claim: timed('claim', (x: Parameters<typeof o.claim>[0]) => o.claim(x), (r) => r.length),
  settle: timed('settle', (x: Parameters<typeof o.settle>[0]) => o.settle(x), (r) => r.size),
  subscribe: undefined,
})
const stream = `THR_${Date.now()}`
const p = new JetStreamPublisher({ servers: NATS_URL, stream, subjectPrefix: `thr-${Date.now()}` })
await p.connect()
let pubMs = 0
const relay = new OutboxRelay({ outbox, metrics: false, batchSize: Number(process.env.BATCH ?? 500), perAggregate: Number(process.env.PER ?? 100), publishConcurrency: Number(process.env.CONC ?? 32), publisher: { publish: async (e) => { const s = performance.now(); await p.publish(e); pubMs += performance.now() - s } } })
const cpu0 = process.cpuUsage()
const s = performance.now()
const r = await relay.drainOnce()
const secs = (performance.now() - s) / 1000
const cpu = process.cpuUsage(cpu0); console.log('node cpu ms', ((cpu.user + cpu.system) / 1000).toFixed(0))
console.log(JSON.stringify(r), (r.published / secs).toFixed(0), 'ev/s', secs.toFixed(2), 's')
for (const [k, v] of Object.entries(stats)) console.log(k, v.n, 'calls', (v.ms / v.n).toFixed(1), 'ms avg', (v.ms/1000).toFixed(2), 's total', (v.rows / v.n).toFixed(0), 'rows/call')
console.log('publish total', (pubMs / 1000).toFixed(2), 's (summed over concurrent)')
await p.close(); await c.end(); await store.close(); await db.drop()
