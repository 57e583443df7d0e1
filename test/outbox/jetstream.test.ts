import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { isUserEngineError } from '../../src/domain/errors.js'
import {
  isBrokerUnreachable,
  OutboxRelay,
  type PublishedEvent,
  type Publisher,
} from '../../src/outbox/index.js'
import { createJetStreamRelay, EVENT_HEADERS, JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { freePort, NATS_URL, natsSkip } from '../support/services.js'
import { AuthNatsServer, natsServerSkip } from './auth-nats-server.js'
import { commitEvents, publisherBehindProxy, waitFor } from './helpers.js'

test('relay drains into JetStream; each committed event is in the stream exactly once', {
  skip: await natsSkip(),
}, async () => {
  const run = randomBytes(4).toString('hex')
  const stream = `UE_TEST_${run}`
  const subjectPrefix = `ue-test-${run}`
  const store = new InMemoryUserEngineStore({ migrated: true })
  const users = ['u1', 'u2', 'u3']
  for (const u of users) for (let c = 0; c < 2; c++) await commitEvents(store, 't1', u, 2)
  const committed = (await Promise.all(users.map((u) => store.outbox.listForAggregate('t1', u)))).flat()

  const jsp = new JetStreamPublisher({ servers: NATS_URL, stream, subjectPrefix, duplicateWindowMs: 60_000 })
  const nc = await connect({ servers: NATS_URL })
  try {
    // The first publish of each user's first event "loses its acknowledgement": stored by the broker, but the
    // relay sees an error and publishes it again. The broker must drop the second copy.
    const lostAck = new Set(users.map((u) => committed.find((e) => e.aggregateId === u)!.id))
    const flaky: Publisher = {
      publish: async (event) => {
        await jsp.publish(event)
        if (lostAck.delete(event.id)) throw new Error('acknowledgement lost')
      },
    }
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: flaky,
      batchSize: 4,
      backoff: { baseMs: 0, maxMs: 0 },
      onError: () => {},
    })
    const result = await relay.drainOnce()
    assert.equal(result.published, committed.length)
    assert.equal(result.retried, users.length)

    // A republish of an already delivered id, twice, inside the window: still one copy.
    await jsp.publish(committed[0]!)
    await jsp.publish(committed[0]!)

    const jsm = await jetstreamManager(nc)
    const info = await jsm.streams.info(stream)
    assert.equal(info.config.duplicate_window, 60_000 * 1_000_000)
    assert.equal(info.state.messages, committed.length)

    const consumer = await jetstream(nc).consumers.get(stream)
    const seen: PublishedEvent[] = []
    const messages = await consumer.fetch({ max_messages: committed.length + 10, expires: 1000 })
    for await (const m of messages) {
      const event = m.json<PublishedEvent>()
      assert.equal(m.headers?.get('Nats-Msg-Id'), event.id)
      assert.equal(m.headers?.get(EVENT_HEADERS.tenant), 't1')
      assert.equal(m.headers?.get(EVENT_HEADERS.aggregateId), event.aggregateId)
      assert.equal(m.headers?.get(EVENT_HEADERS.sequence), String(event.sequence))
      assert.equal(m.subject, `${subjectPrefix}.t1.x`)
      seen.push(event)
    }
    assert.deepEqual(seen.map((e) => e.id).sort(), committed.map((e) => e.id).sort())
    // Per-user order holds in the stream too.
    for (const u of users) {
      assert.deepEqual(
        seen.filter((e) => e.aggregateId === u).map((e) => e.id),
        committed.filter((e) => e.aggregateId === u).map((e) => e.id),
      )
    }
  } finally {
    await jsp.close()
    const jsm = await jetstreamManager(nc)
    await jsm.streams.delete(stream).catch(() => {})
    await nc.close()
  }
})

test('JetStreamPublisher fails a publish whose subject no stream covers', {
  skip: await natsSkip(),
}, async () => {
  const run = randomBytes(4).toString('hex')
  const jsp = new JetStreamPublisher({
    servers: NATS_URL,
    stream: `UE_TEST_${run}`,
    subjectPrefix: `ue-test-${run}`,
    subject: () => `ue-nowhere-${run}.x`,
    timeoutMs: 1000,
  })
  const nc = await connect({ servers: NATS_URL })
  try {
    const store = new InMemoryUserEngineStore({ migrated: true })
    await commitEvents(store, 't1', 'u1')
    const [event] = await store.outbox.listForAggregate('t1', 'u1')
    // Nobody answers the subject, yet the server does: the event's failed attempt, not an outage.
    await assert.rejects(jsp.publish(event!), (e: unknown) => {
      assert.ok(isUserEngineError(e, 'PUBLISH_FAILED'), String(e))
      assert.equal(isBrokerUnreachable(e), false)
      assert.deepEqual(e.details, { reason: 'no-stream', stream: `UE_TEST_${run}` })
      assert.match(e.message, /no stream takes the event's subject: stream UE_TEST_\w+ does not cover it/)
      assert.ok(!e.message.includes('ue-nowhere'), 'the message does not quote the subject')
      return true
    })
    assert.equal(jsp.connected, true)
  } finally {
    await jsp.close()
    await (await jetstreamManager(nc)).streams.delete(`UE_TEST_${run}`).catch(() => {})
    await nc.close()
  }
})

test('createJetStreamRelay fails fast while NATS is unreachable; a relay started on a JetStreamPublisher waits for it', {
  skip: natsServerSkip(),
}, async () => {
  const port = await freePort()
  const token = `tok-${randomBytes(4).toString('hex')}`
  const servers = `nats://${token}@127.0.0.1:${port}`
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1', 3)
  const started = Date.now()
  await assert.rejects(
    createJetStreamRelay({ outbox: store.outbox, jetstream: { servers }, onError: () => {} }),
    (e: unknown) => isBrokerUnreachable(e) && !inspect(e, { depth: 20 }).includes(token),
  )
  assert.ok(Date.now() - started < 10_000, 'failed fast')
  // A bad relay option is refused before any connection is tried.
  await assert.rejects(
    createJetStreamRelay({ outbox: store.outbox, jetstream: { servers }, batchSize: 0 }),
    (e: unknown) => isUserEngineError(e, 'VALIDATION'),
  )

  const run = randomBytes(4).toString('hex')
  const publisher = new JetStreamPublisher({
    servers,
    stream: `UE_LATE_${run}`,
    subjectPrefix: `ue-late-${run}`,
  })
  const errors: unknown[] = []
  const relay = new OutboxRelay({
    outbox: store.outbox,
    publisher,
    brokerRetry: { baseMs: 20, maxMs: 100 },
    pollIntervalMs: 20,
    onError: (e) => errors.push(e),
    metrics: false,
  })
  relay.start()
  let server: AuthNatsServer | undefined
  try {
    await waitFor(() => errors.length > 0, 10_000, 'the outage reported')
    assert.equal((await relay.progress()).broker, 'down')
    server = await AuthNatsServer.start({ token }, port)
    await waitFor(async () => (await store.outbox.lag()).pending === 0, 30_000, 'the events published')
    assert.equal((await store.outbox.listForAggregate('t1', 'u1')).filter((e) => e.attempts > 0).length, 0)
  } finally {
    await relay.close()
    await server?.stop()
  }
})

test('close() returns within the publish timeout when the broker stops answering (a partition, a frozen server)', {
  skip: await natsSkip(),
  timeout: 60_000,
}, async () => {
  const { proxy, publisher: jsp, event, cleanup } = await publisherBehindProxy('frozen', 500)
  try {
    await jsp.publish(event)
    proxy.freeze()
    const started = Date.now()
    await jsp.close()
    // The drain waits up to the publish timeout (500 ms), then the connection is closed without it.
    assert.ok(Date.now() - started < 5_000, `close() took ${Date.now() - started} ms on a frozen broker`)
  } finally {
    await cleanup()
  }
})
