import { test } from 'node:test'
import { SQL_ADAPTERS } from '../support/adapters.js'
import { runOutboxStress } from './stress-harness.js'

const NAMES = {
  postgres: 'outbox stress on a Postgres server (row locks, SKIP LOCKED across pooled connections)',
  // PGlite has one connection: claims run one after another, so this checks the relay logic on the SQL store
  // (leases, heads, acknowledge-while-held) but not row-lock concurrency.
  pglite: 'outbox stress on PGlite (weaker: one connection, no real row-lock concurrency)',
} as const

for (const adapter of SQL_ADAPTERS) {
  test(NAMES[adapter.name], { skip: await adapter.skip() }, async (t) => {
    const { store, release } = await adapter.migratedStore()
    try {
      const options = adapter.name === 'pglite' ? { leaseMs: 500 } : {}
      t.diagnostic(JSON.stringify(await runOutboxStress(store, options)))
    } finally {
      await release()
    }
  })
}
