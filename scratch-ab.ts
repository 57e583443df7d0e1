import pg from 'pg'
import { createKeyring, generateKey } from './src/engine/keyring.js'
import { UserEngine } from './src/engine/user-engine.js'
import { createNodePostgresStore } from './src/store/postgres/node-postgres.js'
import { createPgliteStore } from './src/store/postgres/pglite.js'
import { createTestDatabase } from './test/support/services.js'

const target = process.argv[2] ?? 'postgres'
const callers = Number(process.argv[3] ?? 8)
const db = target === 'postgres' ? await createTestDatabase('ue_ab') : undefined
const pool = db && new pg.Pool({ connectionString: db.url, max: 8 })
const store = pool ? await createNodePostgresStore({ pool }) : await createPgliteStore()
await store.migrate()
const engine = new UserEngine({
  store,
  keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
})
const t = await engine.createTenant('ab')
let n = 0
const res: Record<string, number[]> = { now: [], later: [] }
;(globalThis as any).__waitAlways = process.env.WAIT_ALWAYS === '1'
for (let round = 0; round < 10; round++) {
  for (const mode of round % 2 ? ['now', 'later'] : ['later', 'now']) {
    ;(globalThis as any).__flushNow = mode === 'now'
    const end = performance.now() + 1500
    let done = 0
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (performance.now() < end) {
          await engine.registerUser(t.id, { email: `u${n++}@example.com` })
          done++
        }
      }),
    )
    res[mode]!.push(done / 1.5)
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log(
  target,
  callers,
  'now',
  Math.round(med(res.now!)),
  'later',
  Math.round(med(res.later!)),
  'later/now',
  (med(res.later!) / med(res.now!)).toFixed(2),
)
await store.close()
await pool?.end()
await db?.drop()
