// The relay's statements while it cannot make progress: a broker outage (paused between probes whatever wakes
// it), a publish that hangs (its events kept, not claimed and released over and over), and progress reports
// failing with the database (reported once, then at most every 30 s).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { brokerUnreachable, OutboxRelay, type Publisher } from '../../src/outbox/index.js'
import { FailureRun } from '../../src/outbox/store-outage.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { commitEvents, gate, sleep, waitFor } from './helpers.js'

/** A memory store whose claims, settles and released items are counted. */
function countedStore() {
  const store = new InMemoryUserEngineStore({ migrated: true })
  const count = { claims: 0, settles: 0, released: 0 }
  const claim = store.outbox.claim.bind(store.outbox)
  store.outbox.claim = (options) => {
    count.claims++
    return claim(options)
  }
  const settle = store.outbox.settle.bind(store.outbox)
  store.outbox.settle = (options) => {
    count.settles++
    count.released += options.items.filter((i) => i.outcome === 'released').length
    return settle(options)
  }
  return { store, count }
}

/** Always unreachable, after a turn of the event loop as a network client would answer. */
const unreachable = (whenReachable?: Publisher['whenReachable']): Publisher => ({
  publish: async () => {
    await new Promise((resolve) => setImmediate(resolve))
    throw brokerUnreachable('the broker is down (test)')
  },
  ...(whenReachable ? { whenReachable } : {}),
})

describe('OutboxRelay: no churn against the store', () => {
  for (const [name, publisher] of [
    ['a publisher that says it is reachable at once', unreachable(async () => {})],
    ['a publisher without whenReachable', unreachable()],
  ] as const) {
    test(`a broker outage with commits arriving, ${name}: probes paused by brokerRetry`, async () => {
      const { store, count } = countedStore()
      await commitEvents(store, 't1', 'u0')
      const errors: unknown[] = []
      const relay = new OutboxRelay({
        outbox: store.outbox,
        publisher,
        brokerRetry: { baseMs: 100, maxMs: 400 },
        pollIntervalMs: 20,
        metrics: false,
        onError: (e) => errors.push(e),
      })
      relay.start()
      let committing = true
      // Each commit wakes the relay (wake on commit): a wake must not end a pause.
      const commits = (async () => {
        for (let i = 0; committing; i++) {
          await commitEvents(store, 't1', `u${1 + (i % 20)}`)
          await sleep(10)
        }
      })()
      try {
        await sleep(2000)
        // Pauses of 100, 200, 400, 400, ... ms (a reconnect signal may cut every other one short): a probe
        // (one claim, one settle) every few hundred ms, not thousands.
        assert.ok(count.claims >= 2 && count.claims <= 25, `${count.claims} claims in 2 s of outage`)
        assert.ok(count.settles <= 25, `${count.settles} settles in 2 s of outage`)
        assert.equal(errors.length, 1, 'the outage is reported once')
        const p = await relay.progress()
        assert.deepEqual([p.broker, p.retried, p.dead, p.published], ['down', 0, 0, 0])
      } finally {
        committing = false
        await commits
        await relay.stop()
      }
    })
  }

  test('a hung publish: the relay keeps its events instead of claiming and releasing them again', async () => {
    const { store, count } = countedStore()
    await commitEvents(store, 't1', 'u1', 3)
    const committed = (await store.outbox.listForAggregate('t1', 'u1')).map((e) => e.id)
    const hold = gate()
    const delivered: string[] = []
    let publishes = 0
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: {
        publish: async (e) => {
          publishes++
          if (e.id === committed[0]) await hold.promise
          delivered.push(e.id)
        },
      },
      leaseMs: 300,
      pollIntervalMs: 50,
      metrics: false,
      onError: () => {},
    })
    relay.start()
    try {
      // The lease lapses about every 300 ms while the first publish hangs.
      await sleep(2000)
      assert.equal(publishes, 1, 'nothing published around the hung publish')
      assert.equal(count.released, 0, `${count.released} releases while the publish hung`)
      // One claim per poll at most: each renews the lapsed lease of the events in hand.
      assert.ok(count.claims <= 2000 / 50 + 5, `${count.claims} claims in 2 s`)
      const held = await store.outbox.listForAggregate('t1', 'u1')
      assert.deepEqual(
        held.map((e) => e.attempts),
        [0, 0, 0],
      )
      hold.open()
      // The aggregate goes on, in order, once the publish settles.
      await waitFor(async () => (await store.outbox.lag()).pending === 0, 5000, 'the aggregate published')
      assert.deepEqual(delivered, committed)
    } finally {
      hold.open()
      await relay.stop()
    }
  })

  test('progress failing with the database is reported once, then at most every 30 s', async () => {
    const store = new InMemoryUserEngineStore({ migrated: true })
    store.outbox.lag = () => Promise.reject(new Error('store unreachable'))
    const errors: unknown[] = []
    const logged: string[] = []
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: { publish: async () => {} },
      progressIntervalMs: 10,
      pollIntervalMs: 10,
      metrics: false,
      onProgress: () => {},
      onError: (e) => errors.push(e),
      logger: { log: (level, message) => void logged.push(`${level} ${message}`) },
    })
    relay.start()
    await sleep(500)
    assert.deepEqual(
      logged.filter((l) => /progress failed/.test(l)),
      ['error progress failed'],
    )
    assert.equal(errors.length, 1)
    await relay.stop()
  })

  test('FailureRun: the first failure of a run is reported, then at most every 30 s', () => {
    const run = new FailureRun()
    assert.deepEqual(
      [0, 1000, 29_999, 30_000, 31_000].map((t) => run.failed(t)),
      [true, false, false, true, false],
    )
    assert.equal(run.failures, 5)
    assert.equal(run.recovered(), 5)
    assert.equal(run.failed(32_000), true, 'a new run is reported at once')
  })
})
