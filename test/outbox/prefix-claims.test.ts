// The relay's prefix claims, pipelining, settle batching, wake on commit, broker pauses, metrics and logger,
// on the memory store (and PGlite / the server where the store matters).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import pg from 'pg'
import { ErrorCode, UserEngineError } from '../../src/domain/errors.js'
import type { LogLevel } from '../../src/domain/logger.js'
import {
  brokerUnreachable,
  InProcessPublisher,
  type MeterLike,
  OutboxRelay,
  type PublishedEvent,
  RELAY_METRICS,
  type RelayProgress,
} from '../../src/outbox/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { createPgliteStore } from '../../src/store/postgres/pglite.js'
import { NOTIFY_CHANNEL, NOTIFY_INTERVAL_MS } from '../../src/store/postgres/postgres-outbox.js'
import type { OutboxAccess, UserEngineStore } from '../../src/store/store.js'
import { createTestDatabase, postgresSkip } from '../support/services.js'
import { commitEvents, sleep, waitFor } from './helpers.js'

const newStore = () => new InMemoryUserEngineStore({ migrated: true })
const pgSkip = await postgresSkip()
const quiet = { onError: () => {}, metrics: false as const }

/** An outbox that counts claims and settles, and records each claim's size. */
function counting(o: OutboxAccess) {
  const calls = { claim: 0, settle: 0, settled: 0, claimed: [] as number[] }
  const outbox: OutboxAccess = Object.assign(Object.create(o) as OutboxAccess, {
    claim: async (options: Parameters<OutboxAccess['claim']>[0]) => {
      calls.claim++
      const got = await o.claim(options)
      calls.claimed.push(got.length)
      return got
    },
    settle: async (options: Parameters<OutboxAccess['settle']>[0]) => {
      // A round trip's worth of time, as on a SQL store: what accumulates meanwhile goes in the next statement.
      await sleep(2)
      calls.settle++
      calls.settled += options.items.length
      return o.settle(options)
    },
    subscribe: o.subscribe?.bind(o),
  })
  return { outbox, calls }
}

function assertOrder(delivered: readonly PublishedEvent[], expected: Map<string, string[]>) {
  for (const [userId, ids] of expected) {
    const got = delivered.filter((e) => e.aggregateId === userId).map((e) => e.id)
    assert.deepEqual(got, ids, `order of ${userId}`)
  }
}

describe('OutboxRelay: prefix claims and pipelining', () => {
  test("a deep backlog per user drains in few claims, each user's events in order, users concurrently", async () => {
    const store = newStore()
    const expected = new Map<string, string[]>()
    for (let u = 0; u < 6; u++) {
      for (let c = 0; c < 40; c++) await commitEvents(store, 't1', `u${u}`)
      expected.set(
        `u${u}`,
        (await store.outbox.listForAggregate('t1', `u${u}`)).map((e) => e.id),
      )
    }
    const delivered: PublishedEvent[] = []
    let inFlight = 0
    let maxInFlight = 0
    const perUserInFlight = new Map<string, number>()
    const publisher = new InProcessPublisher(async (e) => {
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      const mine = (perUserInFlight.get(e.aggregateId) ?? 0) + 1
      perUserInFlight.set(e.aggregateId, mine)
      assert.equal(mine, 1, `two publishes of ${e.aggregateId} at once`)
      await sleep(0)
      delivered.push(e)
      perUserInFlight.set(e.aggregateId, mine - 1)
      inFlight--
    })
    const { outbox, calls } = counting(store.outbox)
    const relay = new OutboxRelay({ outbox, publisher, perAggregate: 20, batchSize: 200, ...quiet })
    const result = await relay.drainOnce()
    assert.equal(result.published, 240)
    assertOrder(delivered, expected)
    assert.ok(maxInFlight > 1, 'users did not publish concurrently')
    // Head-only claims needed one claim per event of a user (40 at least); prefixes and continuations fewer.
    assert.ok(calls.claim < 40, `${calls.claim} claims for 240 events: ${calls.claimed.join(' ')}`)
    assert.ok(Math.max(...calls.claimed) >= 100, 'no claim took several events of one user')
    assert.ok(calls.settle < 240 / 2, `${calls.settle} settle statements for 240 events`)
    assert.equal(calls.settled, 240)
  })

  test('a failure stops its aggregate (the rest given back, in order later) while other aggregates go on', async () => {
    const store = newStore()
    for (let c = 0; c < 5; c++) await commitEvents(store, 't1', 'bad')
    for (let c = 0; c < 5; c++) await commitEvents(store, 't1', 'good')
    const bad = await store.outbox.listForAggregate('t1', 'bad')
    let failing = true
    const delivered: PublishedEvent[] = []
    const publisher = new InProcessPublisher((e) => {
      if (failing && e.id === bad[2]!.id) throw new Error('rejected by the broker')
      delivered.push(e)
    })
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher,
      backoff: { baseMs: 80, maxMs: 80 },
      ...quiet,
    })
    const first = await relay.drainOnce()
    assert.equal(first.retried, 1)
    assert.equal(first.published, 7, 'the other aggregate, and the failing one up to the failure')
    failing = false
    await sleep(100)
    assert.equal((await relay.drainOnce()).published, 3)
    assertOrder(
      delivered,
      new Map([
        ['bad', bad.map((e) => e.id)],
        ['good', (await store.outbox.listForAggregate('t1', 'good')).map((e) => e.id)],
      ]),
    )
    assert.equal((await store.outbox.get(bad[2]!.id))?.attempts, 1)
  })
})

describe('OutboxRelay: broker outages', () => {
  test('an unreachable broker pauses the relay: nothing failed or dead, reported once, resumed by itself', async () => {
    const store = newStore()
    for (let u = 0; u < 4; u++) for (let c = 0; c < 3; c++) await commitEvents(store, 't1', `u${u}`)
    let down = true
    let attemptsWhileDown = 0
    const delivered: PublishedEvent[] = []
    const publisher = new InProcessPublisher((e) => {
      if (down) {
        attemptsWhileDown++
        throw brokerUnreachable('the broker is down (test)')
      }
      delivered.push(e)
    })
    const errors: unknown[] = []
    const progress: RelayProgress[] = []
    const logged: [LogLevel, string][] = []
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher,
      pollIntervalMs: 10,
      progressIntervalMs: 10,
      brokerRetry: { baseMs: 5, maxMs: 40 },
      metrics: false,
      onError: (e) => errors.push(e),
      onProgress: (p) => progress.push(p),
      logger: { log: (level, message) => logged.push([level, message]) },
    })
    relay.start()
    try {
      await waitFor(() => progress.some((p) => p.broker === 'down'), 5000, 'progress showing the broker down')
      await sleep(300)
      // Probes went out, one aggregate at a time, with growing pauses.
      assert.ok(attemptsWhileDown >= 2 && attemptsWhileDown < 60, `${attemptsWhileDown} publishes while down`)
      for (let u = 0; u < 4; u++) {
        for (const e of await store.outbox.listForAggregate('t1', `u${u}`)) {
          assert.deepEqual([e.status, e.attempts, e.lastError], ['pending', 0, null], 'an outage counted')
        }
      }
      down = false
      await waitFor(() => delivered.length === 12, 5000, 'the drain after the outage')
      await waitFor(() => progress.at(-1)?.broker === 'up', 5000, 'progress showing the broker up')
    } finally {
      await relay.stop()
    }
    assert.equal(errors.length, 1, 'the outage is reported once')
    const [error] = errors
    assert.ok(error instanceof UserEngineError && error.code === ErrorCode.PUBLISH_FAILED)
    assert.equal(error.details.reason, 'unreachable')
    assert.ok(logged.some(([level, m]) => level === 'warn' && /broker unreachable/.test(m)))
    assert.ok(logged.some(([level, m]) => level === 'info' && /reachable again/.test(m)))
    const p = await relay.progress()
    assert.deepEqual([p.published, p.retried, p.dead], [12, 0, 0])
  })

  test('drainOnce gives the events back and throws when the broker is unreachable', async () => {
    const store = newStore()
    await commitEvents(store, 't1', 'u1', 3)
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: {
        publish: async () => {
          throw brokerUnreachable('down')
        },
      },
      ...quiet,
    })
    await assert.rejects(
      relay.drainOnce(),
      (e: unknown) => e instanceof UserEngineError && e.details.reason === 'unreachable',
    )
    for (const e of await store.outbox.listForAggregate('t1', 'u1')) {
      assert.deepEqual([e.attempts, e.leaseOwner], [0, null])
    }
  })
})

describe('OutboxRelay: wake on commit', () => {
  const stores: [string, () => Promise<UserEngineStore>][] = [
    ['memory', async () => newStore()],
    [
      'pglite',
      async () => {
        const s = await createPgliteStore()
        await s.migrate()
        return s
      },
    ],
  ]
  for (const [name, open] of stores) {
    test(`${name}: a commit wakes a relay polling once a minute`, async () => {
      const store = await open()
      try {
        await commitEvents(store, 't1', 'warmup')
        const delivered: PublishedEvent[] = []
        const relay = new OutboxRelay({
          outbox: store.outbox,
          publisher: new InProcessPublisher((e) => void delivered.push(e)),
          pollIntervalMs: 60_000,
          ...quiet,
        })
        relay.start()
        try {
          await waitFor(() => delivered.length === 1, 5000, 'the first event')
          const started = Date.now()
          await commitEvents(store, 't1', 'u1')
          await waitFor(() => delivered.length === 2, 5000, 'the woken relay')
          assert.ok(Date.now() - started < 1000, `published ${Date.now() - started} ms after the commit`)
        } finally {
          await relay.stop()
        }
      } finally {
        await store.close()
      }
    })
  }

  test('postgres: a burst of commits sends at most one NOTIFY per interval, and none is lost, not even at close', {
    skip: pgSkip,
  }, async () => {
    const db = await createTestDatabase('ue_notify')
    const writer = await createNodePostgresStore({ connectionString: db.url })
    const listener = new pg.Client({ connectionString: db.url })
    const heard: number[] = []
    try {
      await writer.migrate()
      await commitEvents(writer, 't1', 'warmup')
      await listener.connect()
      listener.on('notification', () => void heard.push(performance.now()))
      await listener.query(`LISTEN ${NOTIFY_CHANNEL}`)
      await sleep(2 * NOTIFY_INTERVAL_MS)
      // 8 callers committing 10 times each: one NOTIFY at the first commit, then at most one per interval
      // (unthrottled, about one per batch the group commit sends).
      const started = performance.now()
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          for (let k = 0; k < 10; k++) await commitEvents(writer, 't1', `burst${i}`)
        }),
      )
      const elapsed = performance.now() - started
      await waitFor(() => heard.length >= 1, 5000, 'a NOTIFY for the burst')
      await sleep(10 * NOTIFY_INTERVAL_MS)
      assert.ok(
        heard.length <= Math.ceil(elapsed / NOTIFY_INTERVAL_MS) + 2,
        `${heard.length} NOTIFYs for 80 commits in ${elapsed.toFixed(1)} ms`,
      )
      // Two commits inside one interval: the second is announced too, an interval later.
      heard.length = 0
      await commitEvents(writer, 't1', 'a')
      await commitEvents(writer, 't1', 'b')
      await waitFor(() => heard.length === 2, 5000, 'a NOTIFY for each of two close commits')
      // A commit owed its NOTIFY when the store closes: close sends it.
      heard.length = 0
      await sleep(2 * NOTIFY_INTERVAL_MS)
      await commitEvents(writer, 't1', 'c')
      await commitEvents(writer, 't1', 'd')
      await writer.close()
      await waitFor(() => heard.length === 2, 5000, 'the owed NOTIFY, sent at close')
    } finally {
      await writer.close()
      await listener.end().catch(() => undefined)
      await db.drop()
    }
  })

  test('postgres: a commit in another process (another store) wakes the relay through LISTEN/NOTIFY', {
    skip: pgSkip,
  }, async () => {
    const db = await createTestDatabase('ue_wake')
    const writer = await createNodePostgresStore({ connectionString: db.url })
    const relayStore = await createNodePostgresStore({ connectionString: db.url })
    try {
      await writer.migrate()
      await commitEvents(writer, 't1', 'warmup')
      const delivered: PublishedEvent[] = []
      const relay = new OutboxRelay({
        outbox: relayStore.outbox,
        publisher: new InProcessPublisher((e) => void delivered.push(e)),
        pollIntervalMs: 60_000,
        ...quiet,
      })
      relay.start()
      try {
        await waitFor(() => delivered.length === 1, 5000, 'the first event')
        await sleep(200)
        const latencies: number[] = []
        for (let i = 0; i < 5; i++) {
          const started = Date.now()
          await commitEvents(writer, 't1', 'u1')
          await waitFor(() => delivered.length === 2 + i, 5000, 'the woken relay')
          latencies.push(Date.now() - started)
        }
        assert.ok(Math.max(...latencies) < 1000, `publish after commit: ${latencies.join(', ')} ms`)
      } finally {
        await relay.stop()
      }
    } finally {
      await writer.close()
      await relayStore.close()
      await db.drop()
    }
  })
})

describe('OutboxRelay: metrics and logger', () => {
  test('records counters, publish duration, delivery latency and lag gauges through a Meter', async () => {
    const store = newStore()
    for (let u = 0; u < 3; u++) await commitEvents(store, 't1', `u${u}`, 2)
    const counters = new Map<string, number>()
    const histograms = new Map<string, number[]>()
    const gauges = new Map<string, (r: { observe(v: number): void }) => void>()
    const meter: MeterLike = {
      createCounter: (name) => ({ add: (n) => void counters.set(name, (counters.get(name) ?? 0) + n) }),
      createHistogram: (name) => ({
        record: (v) => void histograms.set(name, [...(histograms.get(name) ?? []), v]),
      }),
      createObservableGauge: (name) => ({
        addCallback: (cb) => void gauges.set(name, cb),
        removeCallback: () => void gauges.delete(name),
      }),
    }
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: new InProcessPublisher(() => {}),
      metrics: meter,
      onError: () => {},
    })
    await relay.drainOnce()
    await relay.progress()
    assert.equal(counters.get(RELAY_METRICS.published), 6)
    assert.equal(histograms.get(RELAY_METRICS.publishDuration)?.length, 6)
    assert.equal(histograms.get(RELAY_METRICS.deliveryLatency)?.length, 6)
    const observed = (name: string) => {
      let value = Number.NaN
      gauges.get(name)?.({ observe: (v) => (value = v) })
      return value
    }
    assert.equal(observed(RELAY_METRICS.pending), 0)
    assert.equal(observed(RELAY_METRICS.brokerUp), 1)
    assert.equal(observed(RELAY_METRICS.deadInOutbox), 0)
    await relay.close()
    assert.equal(gauges.size, 0, 'close() detaches the gauges')
  })

  test("'auto' metrics load @opentelemetry/api when installed, and work without an SDK", async () => {
    const store = newStore()
    await commitEvents(store, 't1', 'u1')
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: new InProcessPublisher(() => {}),
      onError: () => {},
    })
    assert.equal((await relay.drainOnce()).published, 1)
  })
})
