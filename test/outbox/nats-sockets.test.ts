// A dial the NATS client gives up before the server's INFO line (a broker that accepts TCP and never answers:
// frozen, or a proxy in front of a dead one) must not leave its socket open: @nats-io/transport-node 3.4
// kept it, so a service's process never exited after close(), and each retry or reconnect added one more.
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { test } from 'node:test'
import { isUserEngineError } from '../../src/domain/errors.js'
import type { OutboxEntry } from '../../src/domain/records.js'
import { isBrokerUnreachable } from '../../src/outbox/index.js'
import { createJetStreamRelay, JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import type { FreezingProxy } from '../support/freezing-proxy.js'
import { socketsTo } from '../support/open-sockets.js'
import { natsSkip } from '../support/services.js'
import { commitEvents, publisherBehindProxy, sleep, waitFor } from './helpers.js'

/** Accepts connections and never writes a byte. */
async function silentBroker(): Promise<{ server: Server; port: number; accepted: Socket[] }> {
  const accepted: Socket[] = []
  const server = createServer((s) => {
    s.on('error', () => {})
    accepted.push(s)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0, accepted }
}

test('a connect to a broker that never answers fails and leaves no socket open, however often it is retried', async () => {
  const broker = await silentBroker()
  const store = new InMemoryUserEngineStore({ migrated: true })
  const servers = `nats://127.0.0.1:${broker.port}`
  try {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const publisher = new JetStreamPublisher({ servers, timeoutMs: 300 })
      await assert.rejects(publisher.connect(), (e: unknown) => isBrokerUnreachable(e))
      await publisher.close()
      await assert.rejects(
        createJetStreamRelay({
          outbox: store.outbox,
          jetstream: { servers, timeoutMs: 300 },
          onError: () => {},
        }),
        (e: unknown) => isBrokerUnreachable(e),
      )
      await waitFor(
        () => socketsTo(broker.port) === 0,
        2_000,
        `attempt ${attempt}: the given-up sockets closed`,
      )
    }
    assert.equal(broker.accepted.length, 6, 'every attempt reached the broker')
    await waitFor(
      () => broker.accepted.every((s) => s.destroyed || s.readableEnded),
      2_000,
      'the broker saw them go',
    )
  } finally {
    for (const s of broker.accepted) s.destroy()
    await new Promise<void>((resolve) => broker.server.close(() => resolve()))
  }
})

/**
 * Publishes once, then the broker goes away and what answers on its port accepts connections and never
 * speaks; resolves once the publisher has seen the disconnect (it is reconnecting from then on).
 */
async function frozenAfterPublishing(
  proxy: FreezingProxy,
  publisher: JetStreamPublisher,
  event: OutboxEntry,
): Promise<void> {
  await publisher.publish(event)
  proxy.freeze()
  proxy.cut()
  await waitFor(() => !publisher.connected, 5_000, 'the disconnect seen')
}

test('a broker that freezes while the publisher reconnects: close() leaves no socket open', {
  skip: await natsSkip(),
  timeout: 60_000,
}, async () => {
  const { proxy, publisher, event, cleanup } = await publisherBehindProxy('sockets', 300)
  try {
    await frozenAfterPublishing(proxy, publisher, event)
    // Several reconnect dials time out meanwhile (each gives up after 300 ms).
    await sleep(2_000)
    await publisher.close()
    await waitFor(() => socketsTo(proxy.port) === 0, 3_000, 'no socket to the frozen broker after close()')
  } finally {
    await cleanup()
  }
})

test('close() while a reconnect dial waits on a frozen broker returns at once: no drain on a connection that is down', {
  skip: await natsSkip(),
  timeout: 60_000,
}, async () => {
  // A publish timeout of 5 s: the old close() drained the down connection for all of it, and the dial in
  // flight kept its socket after that.
  const { proxy, publisher, event, cleanup } = await publisherBehindProxy('down', 5_000)
  try {
    await frozenAfterPublishing(proxy, publisher, event)
    await sleep(1_500)
    const started = Date.now()
    await publisher.close()
    assert.ok(Date.now() - started < 2_000, `close() took ${Date.now() - started} ms`)
    await waitFor(() => socketsTo(proxy.port) === 0, 1_000, 'the dial in flight released')
  } finally {
    await cleanup()
  }
})

test('close() during the first connect to a broker that never answers ends that connect now, not after its timeout', async () => {
  const broker = await silentBroker()
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1', 1)
  const [event] = await store.outbox.listForAggregate('t1', 'u1')
  const publisher = new JetStreamPublisher({ servers: `nats://127.0.0.1:${broker.port}`, timeoutMs: 10_000 })
  try {
    // The first publish connects; the broker takes the connection and never sends its INFO line.
    const publishing = publisher.publish(event!).then(
      () => 'published',
      (e: unknown) => (isBrokerUnreachable(e) || isUserEngineError(e) ? 'failed' : String(e)),
    )
    await waitFor(() => broker.accepted.length === 1, 5_000, 'the dial reached the broker')
    const started = Date.now()
    await publisher.close()
    assert.equal(await publishing, 'failed')
    // Before, the connect ran to its 10 s timeout, holding a timer and the process.
    assert.ok(Date.now() - started < 2_000, `the connect ended ${Date.now() - started} ms after close()`)
    await waitFor(() => socketsTo(broker.port) === 0, 1_000, 'the abandoned dial released')
  } finally {
    for (const s of broker.accepted) s.destroy()
    await new Promise<void>((resolve) => broker.server.close(() => resolve()))
  }
})
