import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import { OutboxRelay } from '../src/outbox/index.js'
import { createTestDatabase } from '../test/support/services.js'
const db = await createTestDatabase('ue_lat')
const store = await createNodePostgresStore({ connectionString: db.url })
await store.migrate()
const NORELAY = !!process.env.NORELAY
const t = 'lat'
await store.transaction(t, async (tx) => { tx.putTenant({ id: t, name: t, status: 'active' }, { mustNotExist: true }) })
const commitDone = new Map<number, number>()
const startPub: number[] = [], commitDur: number[] = [], occToDone: number[] = []
const relay = new OutboxRelay({ outbox: store.outbox, metrics: false, publisher: { publish: async (e) => {
  const i = (e.payload as {i:number}).i
  const done = commitDone.get(i)
  if (done) startPub.push(Date.now() - done)
  occToDone.push(Date.now() - Date.parse(e.occurredAt))
} } })
if (!NORELAY) relay.start()
const chain = new Map<string, Promise<void>>()
const versions = new Map<string, number>()
const started = performance.now()
for (let i = 0; i < 2500; i++) {
  const due = started + i * 2
  const wait = due - performance.now()
  if (wait > 1) await new Promise((r) => setTimeout(r, wait))
  const u = `u${i % 50}`; const v = versions.get(u) ?? 0; versions.set(u, v + 1)
  const p = (chain.get(u) ?? Promise.resolve()).then(async () => {
    const s = performance.now()
    await store.transaction(t, async (tx) => { tx.putUser({ id: u, status: 'active' }, v === 0 ? { mustNotExist: true } : { expectedVersion: v }); tx.enqueue({ type: 'x', userId: u, payload: { i } }) })
    commitDur.push(performance.now() - s); commitDone.set(i, Date.now())
  })
  chain.set(u, p)
}
await Promise.all(chain.values())
await new Promise((r) => setTimeout(r, 2000))
await relay.stop()
const pct = (a: number[], p: number) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(p / 100 * (s.length - 1))]?.toFixed(1) }
console.log('commit dur p50/p99', pct(commitDur, 50), pct(commitDur, 99))
console.log('commitDone->publish p50/p99', pct(startPub, 50), pct(startPub, 99), startPub.length)
console.log('occurred->publish p50/p99', pct(occToDone, 50), pct(occToDone, 99))
console.log('elapsed', ((performance.now() - started) / 1000).toFixed(1))
await store.close(); await db.drop()
