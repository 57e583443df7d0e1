import { test } from 'node:test'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { runOutboxStress } from './stress-harness.js'

test('outbox stress on the memory store: writers, rollbacks, 3 relays, flaky publisher, a relay dying mid-batch', async (t) => {
  const report = await runOutboxStress(new InMemoryUserEngineStore({ migrated: true }))
  t.diagnostic(JSON.stringify(report))
})
