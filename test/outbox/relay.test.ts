import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  backoffDelay,
  InProcessPublisher,
  OutboxRelay,
  type PublishedEvent,
  type Publisher,
  type RelayProgress,
} from '../../src/outbox/index.js'
import { StoreOutage } from '../../src/outbox/store-outage.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import type { OutboxAccess } from '../../src/store/store.js'
import { commitEvents, gate, sleep, waitFor } from './helpers.js'

const newStore = () => new InMemoryUserEngineStore({ migrated: true })
const quiet = { onError: () => {} }

function recorder() {
  const delivered: PublishedEvent[] = []
  return { delivered, publisher: new InProcessPublisher((e) => void delivered.push(e)) }
}

/** Asserts each user's deliveries are exactly its committed events, in (sequence, position) order. */
async function assertPerUserOrder(
  store: InMemoryUserEngineStore,
  delivered: readonly PublishedEvent[],
  users: ReadonlyArray<readonly [string, string]>,
) {
  for (const [tenantId, userId] of users) {
    const committed = (await store.outbox.listForAggregate(tenantId, userId)).map((e) => e.id)
    const got = delivered.filter((e) => e.tenantId === tenantId && e.aggregateId === userId).map((e) => e.id)
    assert.deepEqual(got, committed, `order of ${tenantId}/${userId}`)
  }
}

describe('OutboxRelay on the memory store', () => {
  test('drainOnce publishes every committed event, in order per user, in small batches', async () => {
    const store = newStore()
    const users: [string, string][] = []
    for (const tenantId of ['t1', 't2']) {
      for (let u = 0; u < 5; u++) {
        const userId = `u${u}`
        users.push([tenantId, userId])
        for (let c = 0; c < 4; c++) await commitEvents(store, tenantId, userId, 1 + (c % 2))
      }
    }
    const { delivered, publisher } = recorder()
    const relay = new OutboxRelay({ outbox: store.outbox, publisher, batchSize: 3, ...quiet })
    const result = await relay.drainOnce()
    assert.deepEqual(result, { published: 60, retried: 0, dead: 0, lostLeases: 0, released: 0 })
    assert.equal(delivered.length, 60)
    await assertPerUserOrder(store, delivered, users)
    assert.deepEqual(await store.outbox.lag(), { pending: 0, dead: 0, oldestPendingAgeMs: 0 })
    assert.equal((await relay.drainOnce()).published, 0)
  })

  test('published events carry no delivery state', async () => {
    const store = newStore()
    await commitEvents(store, 't1', 'u1', 1, { plan: 'pro' })
    const { delivered, publisher } = recorder()
    await new OutboxRelay({ outbox: store.outbox, publisher }).drainOnce()
    assert.deepEqual(Object.keys(delivered[0]!).sort(), [
      'aggregateId',
      'aggregateType',
      'id',
      'occurredAt',
      'payload',
      'position',
      'sequence',
      'tenantId',
      'type',
    ])
    assert.deepEqual(delivered[0]!.payload, { plan: 'pro' })
  })

  test('backoffDelay grows exponentially, is capped, and jitters within [half, full]', () => {
    const opts = { baseMs: 100, maxMs: 1000 }
    assert.equal(
      backoffDelay(1, opts, () => 0),
      50,
    )
    assert.equal(
      backoffDelay(1, opts, () => 0.999999),
      100,
    )
    assert.equal(
      backoffDelay(3, opts, () => 0.999999),
      400,
    )
    assert.equal(
      backoffDelay(10, opts, () => 0.999999),
      1000,
    )
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, opts)
      assert.ok(d >= 100 && d <= 200, String(d))
    }
  })

  test('a failing publish backs off: the event waits, the attempt and error are recorded', async () => {
    const store = newStore()
    await commitEvents(store, 't1', 'u1')
    const [event] = await store.outbox.listForAggregate('t1', 'u1')
    const failing: Publisher = {
      publish: async () => {
        throw new Error('broker unavailable')
      },
    }
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: failing,
      backoff: { baseMs: 1000, maxMs: 10_000 },
      random: () => 0,
      ...quiet,
    })
    const before = Date.now()
    assert.deepEqual(await relay.drainOnce(), {
      published: 0,
      retried: 1,
      dead: 0,
      lostLeases: 0,
      released: 0,
    })
    const after = await store.outbox.get(event!.id)
    assert.equal(after?.status, 'pending')
    assert.equal(after?.attempts, 1)
    assert.equal(after?.leaseOwner, null)
    assert.match(after?.lastError ?? '', /broker unavailable/)
    const waitMs = Date.parse(after!.availableAt) - before
    assert.ok(waitMs >= 450 && waitMs <= 600, `backoff ${waitMs}ms`)
    // Not due yet: a second drain claims nothing rather than spinning on it.
    assert.equal((await relay.drainOnce()).retried, 0)
  })

  test('after maxAttempts an event is dead and blocks its user until retryDead', async () => {
    const store = newStore()
    for (let i = 0; i < 3; i++) await commitEvents(store, 't1', 'u1')
    await commitEvents(store, 't1', 'u2')
    const [first] = await store.outbox.listForAggregate('t1', 'u1')
    let broken = true
    const delivered: PublishedEvent[] = []
    const publisher = new InProcessPublisher((e) => {
      if (broken && e.id === first!.id) throw new Error('poison')
      delivered.push(e)
    })
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher,
      maxAttempts: 3,
      backoff: { baseMs: 0, maxMs: 0 },
      ...quiet,
    })
    const { released, ...result } = await relay.drainOnce()
    assert.deepEqual(result, { published: 1, retried: 2, dead: 1, lostLeases: 0 })
    // A failed attempt gives back the events claimed behind the failing one (its ready prefix).
    assert.ok(released > 0, 'the events behind a failure were given back')
    assert.deepEqual(
      delivered.map((e) => e.aggregateId),
      ['u2'],
    )
    assert.equal((await store.outbox.get(first!.id))?.status, 'dead')
    assert.equal((await store.outbox.lag()).dead, 1)
    // The user's later events stay blocked behind the dead one.
    assert.equal((await relay.drainOnce()).published, 0)

    broken = false
    assert.equal(await store.outbox.retryDead(first!.id), true)
    assert.equal((await relay.drainOnce()).published, 3)
    await assertPerUserOrder(store, delivered, [
      ['t1', 'u1'],
      ['t1', 'u2'],
    ])
  })

  test('discardDead unblocks the user without publishing the dead event', async () => {
    const store = newStore()
    for (let i = 0; i < 2; i++) await commitEvents(store, 't1', 'u1')
    const [first, second] = await store.outbox.listForAggregate('t1', 'u1')
    const delivered: string[] = []
    const publisher = new InProcessPublisher((e) => {
      if (e.id === first!.id) throw new Error('poison')
      delivered.push(e.id)
    })
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher,
      maxAttempts: 1,
      backoff: { baseMs: 0, maxMs: 0 },
      ...quiet,
    })
    assert.equal((await relay.drainOnce()).dead, 1)
    assert.deepEqual(delivered, [])
    assert.equal(await store.outbox.discardDead(first!.id), true)
    assert.equal((await relay.drainOnce()).published, 1)
    assert.deepEqual(delivered, [second!.id])
    assert.equal((await store.outbox.get(first!.id))?.status, 'discarded')
  })

  test('stop() finishes the publish in flight and releases the claimed events not yet published', async () => {
    const store = newStore()
    for (let u = 0; u < 5; u++) await commitEvents(store, 't1', `u${u}`)
    const hold = gate()
    const started = gate()
    const delivered: string[] = []
    const publisher = new InProcessPublisher(async (e) => {
      started.open()
      await hold.promise
      delivered.push(e.id)
    })
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher,
      batchSize: 10,
      publishConcurrency: 1,
      leaseMs: 60_000,
      ...quiet,
    })
    relay.start()
    await started.promise
    const stopped = relay.stop()
    hold.open()
    await stopped
    assert.equal(relay.running, false)
    const p = await relay.progress()
    assert.equal(p.published, 1)
    assert.equal(p.released, 4)
    assert.equal(p.pending, 4)
    // Released leases are claimable at once by another relay, well before the 60s lease would lapse.
    const other = await store.outbox.claim({ owner: 'other', limit: 10, leaseMs: 1000 })
    assert.equal(other.length, 4)
    assert.ok(!other.some((e) => delivered.includes(e.id)))
  })

  test('two relays draining concurrently never publish the same event twice while leases hold', async () => {
    const store = newStore()
    const users: [string, string][] = []
    for (let u = 0; u < 20; u++) {
      users.push(['t1', `u${u}`])
      for (let c = 0; c < 3; c++) await commitEvents(store, 't1', `u${u}`)
    }
    const delivered: PublishedEvent[] = []
    const by = new Map<string, number>()
    const relays = ['a', 'b'].map(
      (name) =>
        new OutboxRelay({
          outbox: store.outbox,
          owner: `relay-${name}`,
          batchSize: 5,
          publishConcurrency: 3,
          publisher: new InProcessPublisher(async (e) => {
            await sleep(Math.random() * 2)
            delivered.push(e)
            by.set(name, (by.get(name) ?? 0) + 1)
          }),
          ...quiet,
        }),
    )
    while ((await store.outbox.lag()).pending > 0) await Promise.all(relays.map((r) => r.drainOnce()))
    assert.equal(delivered.length, 60)
    assert.equal(new Set(delivered.map((e) => e.id)).size, 60)
    assert.ok((by.get('a') ?? 0) > 0 && (by.get('b') ?? 0) > 0, 'both relays took part')
    await assertPerUserOrder(store, delivered, users)
  })

  test('a relay whose lease lapsed mid-publish: its acknowledge changes nothing', async () => {
    const store = newStore()
    await commitEvents(store, 't1', 'u1')
    const [event] = await store.outbox.listForAggregate('t1', 'u1')
    const hold = gate()
    const started = gate()
    const slow = new OutboxRelay({
      outbox: store.outbox,
      owner: 'slow',
      leaseMs: 50,
      publisher: new InProcessPublisher(async () => {
        started.open()
        await hold.promise
      }),
      ...quiet,
    })
    const slowDrain = slow.drainOnce()
    await started.promise
    await sleep(70)
    const fastDelivered: string[] = []
    const fast = new OutboxRelay({
      outbox: store.outbox,
      owner: 'fast',
      publisher: new InProcessPublisher((e) => void fastDelivered.push(e.id)),
    })
    assert.equal((await fast.drainOnce()).published, 1)
    const acknowledged = await store.outbox.get(event!.id)
    hold.open()
    assert.deepEqual(await slowDrain, { published: 0, retried: 0, dead: 0, lostLeases: 1, released: 0 })
    assert.deepEqual(await store.outbox.get(event!.id), acknowledged)
    assert.equal(acknowledged?.status, 'published')
  })

  test('a failure reported after the lease lapsed changes nothing either', async () => {
    const store = newStore()
    await commitEvents(store, 't1', 'u1')
    const [event] = await store.outbox.listForAggregate('t1', 'u1')
    const relay = new OutboxRelay({
      outbox: store.outbox,
      leaseMs: 30,
      publisher: {
        publish: async () => {
          await sleep(50)
          throw new Error('late')
        },
      },
      ...quiet,
    })
    assert.equal((await relay.drainOnce()).lostLeases, 1)
    const after = await store.outbox.get(event!.id)
    assert.equal(after?.attempts, 0)
    assert.equal(after?.lastError, null)
  })

  test('start() reports progress with the outbox lag, purges under retention, and keeps going after store errors', async () => {
    const store = newStore()
    for (let u = 0; u < 3; u++) await commitEvents(store, 't1', `u${u}`, 2)
    await sleep(25)
    const before = await new OutboxRelay({ outbox: store.outbox, publisher: recorder().publisher }).progress()
    assert.equal(before.pending, 6)
    assert.ok(before.oldestPendingAgeMs >= 20)

    let claimErrors = 1
    const o = store.outbox
    const flaky: OutboxAccess = {
      claim: (options) => {
        if (claimErrors-- > 0) return Promise.reject(new Error('store unreachable'))
        return o.claim(options)
      },
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
    const errors: string[] = []
    const progress: RelayProgress[] = []
    const { delivered, publisher } = recorder()
    const relay = new OutboxRelay({
      outbox: flaky,
      publisher,
      pollIntervalMs: 5,
      progressIntervalMs: 5,
      retentionMs: 1,
      purgeIntervalMs: 5,
      purgeBatchSize: 2,
      onProgress: (p) => progress.push(p),
      onError: (e) => errors.push((e as Error).message),
    })
    relay.start()
    try {
      await waitFor(() => progress.some((p) => p.published === 6 && p.pending === 0), 5000, 'progress')
      await commitEvents(store, 't1', 'u9')
      await waitFor(() => delivered.length === 7, 5000, 'event committed while running')
      await waitFor(async () => (await store.outbox.listForAggregate('t1', 'u0')).length === 0, 5000, 'purge')
    } finally {
      await relay.stop()
    }
    assert.deepEqual(errors, ['store unreachable'])
    const last = progress.at(-1)!
    assert.equal(last.published, 7)
    assert.equal(last.oldestPendingAgeMs, 0)
    assert.ok(last.purged >= 6)
  })

  test('a store outage: claims back off, the run of failures is reported once, draining resumes by itself', async () => {
    const store = newStore()
    for (let u = 0; u < 3; u++) await commitEvents(store, 't1', `u${u}`, 2)
    const o = store.outbox
    let down = true
    const claimsAt: number[] = []
    const outage: OutboxAccess = new Proxy(o, {
      get(target, key) {
        if (key === 'claim') {
          return (options: Parameters<OutboxAccess['claim']>[0]) => {
            claimsAt.push(Date.now())
            return down ? Promise.reject(new Error('store unreachable')) : target.claim(options)
          }
        }
        const value = Reflect.get(target, key, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const errors: string[] = []
    const logs: string[] = []
    const { delivered, publisher } = recorder()
    const relay = new OutboxRelay({
      outbox: outage,
      publisher,
      pollIntervalMs: 5,
      random: () => 0.5,
      onError: (e) => errors.push((e as Error).message),
      logger: { log: (level, message) => void logs.push(`${level} ${message}`) },
    })
    relay.start()
    try {
      await sleep(1500)
      // Backoff from the poll interval (5 ms, doubling): about 10 claims in 1.5 s instead of about 300.
      assert.ok(claimsAt.length >= 5 && claimsAt.length <= 20, `${claimsAt.length} claims in the outage`)
      const gaps = claimsAt.slice(1).map((t, i) => t - claimsAt[i]!)
      assert.ok(gaps.at(-1)! >= 4 * gaps[0]!, `the waits did not grow: ${gaps.join(', ')}`)
      assert.deepEqual(errors, ['store unreachable'], 'the outage is reported once, not per round')
      assert.equal(delivered.length, 0)
      down = false
      await waitFor(() => delivered.length === 6, 10_000, 'drained after the outage')
    } finally {
      await relay.stop()
    }
    assert.ok(logs.some((l) => l.startsWith('error store error; retrying in')))
    assert.ok(
      logs.some((l) => l === 'info store reachable again'),
      logs.join('\n'),
    )
    assert.deepEqual(errors, ['store unreachable'])
  })

  test('StoreOutage: waits grow from the poll interval to 5 s; reports the first failure, then every 30 s', () => {
    const outage = new StoreOutage(100, () => 1)
    const waits = Array.from({ length: 9 }, (_, i) => outage.failed(i * 1000))
    assert.deepEqual(
      waits.map((w) => w.delayMs),
      [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000],
    )
    assert.deepEqual(
      waits.map((w) => w.report),
      [true, false, false, false, false, false, false, false, false],
    )
    assert.equal(outage.failed(30_000).report, true, 'reported again 30 s after the last report')
    assert.equal(outage.failed(31_000).report, false)
    assert.equal(outage.recovered(), 11)
    assert.equal(outage.failures, 0)
    assert.equal(outage.failed(32_000).report, true, 'a new outage is reported at once')
  })

  test('purgeOnce deletes published events past retention in bounded batches', async () => {
    const store = newStore()
    for (let u = 0; u < 5; u++) await commitEvents(store, 't1', `u${u}`)
    await commitEvents(store, 't1', 'blocked')
    const [blocked] = await store.outbox.listForAggregate('t1', 'blocked')
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: new InProcessPublisher((e) => {
        if (e.id === blocked!.id) throw new Error('no')
      }),
      retentionMs: 1,
      purgeBatchSize: 2,
      maxAttempts: 1,
      ...quiet,
    })
    await relay.drainOnce()
    await sleep(5)
    assert.equal(await relay.purgeOnce(), 5)
    assert.equal((await store.outbox.get(blocked!.id))?.status, 'dead', 'only published events are purged')
    assert.equal(await relay.purgeOnce(), 0)
  })

  test('rejects a malformed owner id', () => {
    assert.throws(
      () => new OutboxRelay({ outbox: newStore().outbox, publisher: recorder().publisher, owner: 'a b' }),
    )
  })
})
