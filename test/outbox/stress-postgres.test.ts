import { test } from 'node:test'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { createPgliteStore } from '../../src/store/postgres/pglite.js'
import { createTestDatabase, postgresSkip } from '../support/services.js'
import { runOutboxStress } from './stress-harness.js'

test('outbox stress on a Postgres server (row locks, SKIP LOCKED across pooled connections)', {
  skip: await postgresSkip(),
}, async (t) => {
  const db = await createTestDatabase('ue_outbox_stress')
  try {
    const store = await createNodePostgresStore({ connectionString: db.url })
    try {
      await store.migrate()
      t.diagnostic(JSON.stringify(await runOutboxStress(store)))
    } finally {
      await store.close()
    }
  } finally {
    await db.drop()
  }
})

// PGlite has one connection: claims run one after another, so this checks the relay logic on the SQL store
// (leases, heads, acknowledge-while-held) but not row-lock concurrency.
test('outbox stress on PGlite (weaker: one connection, no real row-lock concurrency)', async (t) => {
  const store = await createPgliteStore({})
  try {
    await store.migrate()
    t.diagnostic(JSON.stringify(await runOutboxStress(store, { leaseMs: 500 })))
  } finally {
    await store.close()
  }
})
