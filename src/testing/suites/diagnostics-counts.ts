// One case of the records suite: `diagnostics().counts` holds the numbers of what the store holds. Its own file
// because it writes every record type and every outbox status.
import { DIAGNOSTIC_COUNT_KEYS, type DiagnosticCountKey } from '../../store/schema-versions.js'
import type { UserEngineStore } from '../../store/store.js'
import type { CaseDefinition } from '../shared/context.js'
import { assert } from '../shared/expect.js'
import { seedUser } from '../shared/fixtures.js'
import { seed } from './returned-copies.js'

async function counts(store: UserEngineStore): Promise<Record<DiagnosticCountKey, number>> {
  const { counts } = await store.diagnostics()
  return Object.fromEntries(DIAGNOSTIC_COUNT_KEYS.map((k) => [k, counts[k] ?? Number.NaN])) as Record<
    DiagnosticCountKey,
    number
  >
}

export const diagnosticsCountsCase: CaseDefinition = {
  name: 'diagnostics counts what the store holds: records by type, audit records, events by outbox status',
  async run(ctx) {
    const store = await ctx.isolatedStore()
    const before = await counts(store)
    const tenantId = await ctx.newTenant(store)
    // One of every record type, one audit record and one event; then a second user with four events.
    const first = await seed(store, tenantId)
    const second = await seedUser(store, tenantId, { events: 4, audits: 2 })
    const claimed = await store.outbox.claim({
      owner: 'relay-a',
      limit: 100,
      leaseMs: 30_000,
      perAggregate: 10,
    })
    const mine = (userId: string) =>
      claimed.filter((e) => e.tenantId === tenantId && e.aggregateId === userId)
    const [published] = mine(first.userId)
    const [dead, discarded, ...released] = mine(second.userId)
    assert.ok(
      published && dead && discarded && released.length === 2,
      `a claim right after the commits took ${mine(first.userId).length} of the first user's 1 event and ` +
        `${mine(second.userId).length} of the second user's 4 (an event is due from its commit's time on the ` +
        "store's clock: compare availableAt with now() without rounding either)",
    )
    assert.deepEqual(await store.outbox.acknowledge('relay-a', [published.id]), [published.id])
    for (const e of [dead, discarded]) {
      const status = await store.outbox.fail({
        owner: 'relay-a',
        eventId: e.id,
        error: 'poison',
        maxAttempts: 1,
        backoffMs: 0,
      })
      assert.equal(status, 'dead', 'fail with maxAttempts 1: the first failure makes the event dead')
    }
    assert.equal(await store.outbox.discardDead(discarded.id), true)
    await store.outbox.release(
      'relay-a',
      claimed.map((e) => e.id),
    )
    const after = await counts(store)
    const expected: Record<DiagnosticCountKey, number> = {
      tenants: 1,
      users: 2,
      identifiers: 2,
      profiles: 1,
      factors: 1,
      sessions: 1,
      tokens: 1,
      audit_records: 3,
      outbox_pending: 2,
      outbox_published: 1,
      outbox_dead: 1,
      outbox_discarded: 1,
    }
    const grew = Object.fromEntries(DIAGNOSTIC_COUNT_KEYS.map((k) => [k, after[k] - before[k]]))
    assert.deepEqual(
      grew,
      expected,
      'diagnostics().counts grew by other numbers than the records, audit records and events this case wrote (in a database of its own): each count is how many the store holds, records by type, outbox events by status',
    )
  },
}
