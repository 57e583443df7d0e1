import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'
import { ConflictError } from '../../src/domain/errors.js'
import type { OutboxEntry } from '../../src/domain/records.js'
import { InProcessPublisher, OutboxRelay, type PublishedEvent } from '../../src/outbox/index.js'
import type { OutboxAccess, UserEngineStore } from '../../src/store/store.js'
import { ensureTenant, sleep, waitFor } from './helpers.js'

export interface StressOptions {
  readonly writers?: number
  readonly usersPerTenant?: number
  readonly tenants?: readonly string[]
  readonly eventsPerUser?: number
  readonly rollbackRate?: number
  readonly relays?: number
  readonly leaseMs?: number
  readonly timeoutMs?: number
}

export interface StressReport {
  readonly committed: number
  readonly deliveries: number
  readonly duplicates: number
  readonly rolledBackCommits: number
  readonly conflicts: number
  readonly retried: number
  readonly lostLeases: number
  readonly takenOver: number
}

class Rollback extends Error {}

/**
 * Writers commit (and roll back) events while relays drain them through a publisher that fails at random,
 * loses acknowledgements at random, and one relay dies mid-batch holding leases. Then: every committed event
 * was delivered, nothing rolled back was, and each user's first deliveries are its events in order.
 */
export async function runOutboxStress(
  store: UserEngineStore,
  options: StressOptions = {},
): Promise<StressReport> {
  const tenants = options.tenants ?? ['stress_a', 'stress_b']
  const usersPerTenant = options.usersPerTenant ?? 25
  const eventsPerUser = options.eventsPerUser ?? 20
  const rollbackRate = options.rollbackRate ?? 0.1
  const leaseMs = options.leaseMs ?? 200
  const timeoutMs = options.timeoutMs ?? 60_000

  for (const t of tenants) await ensureTenant(store, t)
  const users = tenants.flatMap((t) =>
    Array.from({ length: usersPerTenant }, (_, i) => [t, `user${i}`] as const),
  )
  const remaining = new Map(users.map(([t, u]) => [`${t}/${u}`, eventsPerUser]))

  // The broker: every delivery, in order, with the relay that made it.
  const deliveries: { event: PublishedEvent; relay: string }[] = []
  const deliver = (event: PublishedEvent, relay: string) => deliveries.push({ event, relay })

  let rolledBackCommits = 0
  let conflicts = 0
  const writer = async (w: number) => {
    for (;;) {
      const open = users.filter(([t, u]) => remaining.get(`${t}/${u}`)! > 0)
      if (open.length === 0) return
      const [tenantId, userId] = open[Math.floor(Math.random() * open.length)]!
      const key = `${tenantId}/${userId}`
      const n = Math.min(remaining.get(key)!, 1 + Math.floor(Math.random() * 2))
      const rollback = Math.random() < rollbackRate
      // Reserve before committing so concurrent writers never overshoot a user's count.
      remaining.set(key, remaining.get(key)! - n)
      try {
        await store.transaction(tenantId, async (tx) => {
          const user = await tx.getUser(userId)
          tx.putUser(
            { id: userId, status: 'active' },
            user ? { expectedVersion: user.version } : { mustNotExist: true },
          )
          for (let i = 0; i < n; i++) tx.enqueue({ type: 'stress', userId, payload: { w, rb: rollback } })
          if (rollback) throw new Rollback('rolled back on purpose')
        })
      } catch (error) {
        remaining.set(key, remaining.get(key)! + n)
        if (error instanceof Rollback) rolledBackCommits++
        else if (error instanceof ConflictError) conflicts++
        else throw error
      }
      await sleep(Math.random() * 2)
    }
  }

  const relayErrors: unknown[] = []
  const relayOptions = {
    outbox: store.outbox,
    leaseMs,
    pollIntervalMs: 5,
    publishConcurrency: 4,
    // High enough that no event goes dead by bad luck: this run checks delivery, not dead letters.
    maxAttempts: 1000,
    backoff: { baseMs: 2, maxMs: 20 },
    onError: (error: unknown) => void relayErrors.push(error),
  }
  const relays = Array.from({ length: options.relays ?? 3 }, (_, i) => {
    const name = `relay${i}`
    return new OutboxRelay({
      ...relayOptions,
      owner: name,
      batchSize: [5, 10, 20][i % 3]!,
      publisher: new InProcessPublisher(async (event) => {
        await sleep(Math.random() * 2)
        const r = Math.random()
        if (r < 0.1) throw new Error('publish failed')
        deliver(event, name)
        if (r < 0.2) throw new Error('acknowledgement lost')
      }),
    })
  })

  // The doomed relay delivers twice, then hangs inside its third publish forever: it never acknowledges,
  // fails or releases that batch. Its leases must lapse and other relays must take the events over.
  const doomedClaims: OutboxEntry[] = []
  const doomedOutbox: OutboxAccess = {
    ...bind(store.outbox),
    claim: async (o) => {
      const claimed = await store.outbox.claim(o)
      doomedClaims.push(...claimed)
      return claimed
    },
  }
  let doomedCalls = 0
  /** Publishes the doomed relay completed before it hung: it may have acknowledged those itself. */
  const doomedCompleted = new Set<string>()
  const doomed = new OutboxRelay({
    ...relayOptions,
    outbox: doomedOutbox,
    owner: 'doomed',
    batchSize: 10,
    publisher: new InProcessPublisher(async (event) => {
      doomedCalls++
      if (doomedCalls <= 3) deliver(event, 'doomed')
      if (doomedCalls >= 3) await new Promise<never>(() => {})
      doomedCompleted.add(event.id)
    }),
  })

  const writers = Promise.all(Array.from({ length: options.writers ?? 8 }, (_, w) => writer(w)))
  // The doomed relay goes first so it surely holds a batch when it dies; the others start while writers run.
  await waitFor(async () => (await store.outbox.lag()).pending >= 20, timeoutMs, 'backlog')
  doomed.start()
  await waitFor(() => doomedCalls >= 3, timeoutMs, 'doomed relay mid-batch')
  for (const r of relays) r.start()
  await writers
  try {
    await waitFor(
      async () => {
        const lag = await store.outbox.lag()
        return lag.pending === 0 && lag.dead === 0
      },
      timeoutMs,
      'outbox drained',
    )
  } finally {
    await Promise.all(relays.map((r) => r.stop()))
    // The doomed relay's publish never returns, so its stop never resolves; asking is enough to end its loop.
    void doomed.stop()
  }
  assert.deepEqual(relayErrors, [])
  assert.ok(doomedClaims.length >= 3, 'the doomed relay died mid-batch')

  // Committed = what the store holds after the run; nothing from a rolled-back commit may be there.
  const committed: OutboxEntry[] = []
  for (const [t, u] of users) committed.push(...(await store.outbox.listForAggregate(t, u)))
  assert.equal(committed.length, users.length * eventsPerUser)
  assert.ok(!committed.some((e) => e.payload.rb === true), 'an event of a rolled-back commit exists')
  assert.ok(
    committed.every((e) => e.status === 'published'),
    'every event published',
  )
  assert.ok(
    !deliveries.some((d) => d.event.payload.rb === true),
    'an event of a rolled-back commit was delivered',
  )

  const delivered = new Set(deliveries.map((d) => d.event.id))
  assert.deepEqual([...delivered].sort(), committed.map((e) => e.id).sort(), 'published set == committed set')

  // First deliveries per user: exactly the user's events in (sequence, position) order, with no gap.
  const first = new Map<string, PublishedEvent>()
  for (const { event } of deliveries) {
    const seen = first.get(event.id)
    if (seen) assert.ok(isDeepStrictEqual(seen, event), `duplicate of ${event.id} differs`)
    else first.set(event.id, event)
  }
  for (const [t, u] of users) {
    const expected = committed.filter((e) => e.tenantId === t && e.aggregateId === u)
    let last = 0
    for (const e of expected) {
      assert.ok(e.sequence === last || e.sequence === last + 1, `sequence gap for ${t}/${u}`)
      last = e.sequence
    }
    const got = [...first.values()].filter((e) => e.tenantId === t && e.aggregateId === u)
    assert.deepEqual(
      got.map((e) => [e.sequence, e.position]),
      expected.map((e) => [e.sequence, e.position]),
      `first deliveries of ${t}/${u}`,
    )
  }

  // The doomed relay's leases were taken over: the events it held but never finished publishing ended
  // published by someone else (the ones it published may have been acknowledged in its settle rounds).
  const takenOver = new Set(doomedClaims.map((e) => e.id).filter((id) => !doomedCompleted.has(id)))
  for (const id of takenOver) {
    assert.ok(
      deliveries.some((d) => d.event.id === id && d.relay !== 'doomed'),
      `event ${id} held by the dead relay was never taken over`,
    )
  }

  const totals = await Promise.all(relays.map((r) => r.progress()))
  return {
    committed: committed.length,
    deliveries: deliveries.length,
    duplicates: deliveries.length - delivered.size,
    rolledBackCommits,
    conflicts,
    retried: totals.reduce((s, p) => s + p.retried, 0),
    lostLeases: totals.reduce((s, p) => s + p.lostLeases, 0),
    takenOver: takenOver.size,
  }
}

function bind(o: OutboxAccess): OutboxAccess {
  return {
    claim: (options) => o.claim(options),
    acknowledge: (owner, ids) => o.acknowledge(owner, ids),
    fail: (options) => o.fail(options),
    release: (owner, ids) => o.release(owner, ids),
    retryDead: (id) => o.retryDead(id),
    discardDead: (id) => o.discardDead(id),
    purgePublished: (ms, limit) => o.purgePublished(ms, limit),
    lag: () => o.lag(),
    get: (id) => o.get(id),
    listForAggregate: (t, a) => o.listForAggregate(t, a),
    settle: (options) => o.settle(options),
    list: (query) => o.list(query),
  }
}
