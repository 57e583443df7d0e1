// No responders on a publish, told apart: a NATS server that answers but has no stream for the subject (the
// event's failed attempt: counted, backed off, dead after maxAttempts) against JetStream that does not answer
// at all (an outage: paused, no attempt counted). Either way the relay must not loop against the store.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import type { OutboxEntry } from '../../src/domain/records.js'
import { isBrokerUnreachable, OutboxRelay } from '../../src/outbox/index.js'
import { createJetStreamRelay, JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { NATS_SERVER_BIN } from '../faults/nats-servers.js'
import { ServerProcess } from '../support/server-process.js'
import { freePort, NATS_URL, natsSkip } from '../support/services.js'
import { natsServerSkip } from './auth-nats-server.js'
import { commitEvents, sleep, waitFor } from './helpers.js'

/** The store's outbox with its claims counted. */
function countingClaims(store: InMemoryUserEngineStore) {
  const counter = { claims: 0 }
  const claim = store.outbox.claim.bind(store.outbox)
  store.outbox.claim = (options) => {
    counter.claims++
    return claim(options)
  }
  return counter
}

/** Waits for the user's first event to be dead; says how it was last seen when it does not get there. */
async function deadEvent(store: InMemoryUserEngineStore, userId: string): Promise<OutboxEntry> {
  for (const until = Date.now() + 15_000; ; await sleep(20)) {
    const [event] = await store.outbox.listForAggregate('t1', userId)
    if (event?.status === 'dead') return event
    if (Date.now() > until) {
      throw new Error(
        `the event of ${userId} is not dead: ${event?.status}, ${event?.attempts} attempts, ${event?.lastError}`,
      )
    }
  }
}

test('a stream that does not cover the subject: failed attempts, dead after maxAttempts, claims bounded', {
  skip: await natsSkip(),
}, async () => {
  const run = randomBytes(4).toString('hex')
  const stream = `UE_NOCOVER_${run}`
  const nc = await connect({ servers: NATS_URL })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: stream, subjects: [`ue-nocover-${run}.>`] })
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1')
  const counter = countingClaims(store)
  const errors: unknown[] = []
  const relay = await createJetStreamRelay({
    outbox: store.outbox,
    // The relay's subjects are outside the stream's.
    jetstream: { servers: NATS_URL, stream, subjectPrefix: `ue-elsewhere-${run}` },
    maxAttempts: 3,
    backoff: { baseMs: 50, maxMs: 100 },
    pollIntervalMs: 20,
    metrics: false,
    onError: (e) => errors.push(e),
  })
  relay.start()
  try {
    const dead = await deadEvent(store, 'u1')
    assert.equal(dead.attempts, 3)
    assert.match(dead.lastError ?? '', /PUBLISH_FAILED/)
    assert.match(
      dead.lastError ?? '',
      new RegExp(`no stream takes the event's subject: stream ${stream} does not cover it`),
    )
    const p = await relay.progress()
    assert.deepEqual([p.broker, p.retried, p.dead, p.released], ['up', 2, 1, 0])
    assert.deepEqual(errors, [], 'no outage was reported')
    // Three attempts and the polls around them (every 20 ms), not a claim per microtask.
    const claims = counter.claims
    await sleep(500)
    assert.ok(counter.claims - claims <= 40, `${counter.claims - claims} claims in 500 ms once dead`)
    assert.ok(counter.claims < 200, `${counter.claims} claims in all`)
  } finally {
    await relay.close()
    await jsm.streams.delete(stream).catch(() => {})
    await nc.close()
  }
})

test('a stream deleted while the relay runs: its events fail as attempts (stream does not exist), then go dead', {
  skip: await natsSkip(),
}, async () => {
  const run = randomBytes(4).toString('hex')
  const stream = `UE_DELETED_${run}`
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1')
  const relay = await createJetStreamRelay({
    outbox: store.outbox,
    jetstream: { servers: NATS_URL, stream, subjectPrefix: `ue-deleted-${run}` },
    maxAttempts: 2,
    backoff: { baseMs: 20, maxMs: 40 },
    pollIntervalMs: 20,
    metrics: false,
    onError: () => {},
  })
  const nc = await connect({ servers: NATS_URL })
  const jsm = await jetstreamManager(nc)
  relay.start()
  try {
    await waitFor(async () => (await store.outbox.lag()).pending === 0, 10_000, 'the first event published')
    await jsm.streams.delete(stream)
    await commitEvents(store, 't1', 'u2')
    const dead = await deadEvent(store, 'u2')
    assert.equal(dead.attempts, 2)
    assert.match(dead.lastError ?? '', new RegExp(`stream ${stream} does not exist`))
    assert.equal((await relay.progress()).broker, 'up')
  } finally {
    await relay.close()
    await jsm.streams.delete(stream).catch(() => {})
    await nc.close()
  }
})

test('JetStream that does not answer (a server without it): an outage, paused between probes, no attempt counted', {
  skip: natsServerSkip(),
}, async () => {
  const port = await freePort()
  const server = new ServerProcess('nats-server (no JetStream)')
  const servers = `nats://127.0.0.1:${port}`
  await server.start(
    NATS_SERVER_BIN,
    ['-a', '127.0.0.1', '-p', String(port)],
    async () => {
      const nc = await connect({ servers, reconnect: false, timeout: 500 })
      await nc.close()
    },
    15_000,
  )
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1', 2)
  const [event] = await store.outbox.listForAggregate('t1', 'u1')
  const publisher = new JetStreamPublisher({ servers, ensureStream: false, timeoutMs: 1000 })
  let relay: OutboxRelay | undefined
  try {
    await publisher.connect()
    await assert.rejects(publisher.publish(event!), (e: unknown) => isBrokerUnreachable(e))
    // Connected, yet its publishes fail as unreachable: not "reachable" for a paused relay.
    const abort = new AbortController()
    const answered = await Promise.race([
      publisher.whenReachable(abort.signal).then(() => 'reachable'),
      sleep(200).then(() => 'waiting'),
    ])
    abort.abort()
    assert.equal(answered, 'waiting')

    const counter = countingClaims(store)
    const errors: unknown[] = []
    relay = new OutboxRelay({
      outbox: store.outbox,
      publisher,
      brokerRetry: { baseMs: 100, maxMs: 400 },
      pollIntervalMs: 20,
      metrics: false,
      onError: (e) => errors.push(e),
    })
    relay.start()
    await sleep(2000)
    const p = await relay.progress()
    assert.deepEqual([p.broker, p.retried, p.dead], ['down', 0, 0])
    // Pauses of 100, 200, 400, 400, ... ms: about 7 probes in 2 s.
    assert.ok(counter.claims >= 2 && counter.claims <= 15, `${counter.claims} claims in 2 s of outage`)
    assert.equal(errors.length, 1, 'the outage is reported once')
    for (const e of await store.outbox.listForAggregate('t1', 'u1')) assert.equal(e.attempts, 0)
  } finally {
    await relay?.stop()
    await publisher.close()
    await server.stop('SIGKILL')
  }
})
