// stop() during drainOnce() ends the drain early (the CLI's `relay --once` calls it on SIGINT/SIGTERM):
// the publish in flight settles, the events not yet published are released rather than left leased, and the
// drain resolves with what it did. Before, stop() returned at once and the drain went on to the end.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { OutboxRelay } from '../../src/outbox/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { commitEvents, waitFor } from './helpers.js'

test('stop() ends a drain early: the publish in flight settles, the rest is released', async () => {
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1', 5)
  let started = 0
  let finish = () => {}
  const relay = new OutboxRelay({
    outbox: store.outbox,
    // One aggregate's events publish one after another; each waits for the test to let it finish.
    publisher: {
      publish: () =>
        new Promise<void>((resolve) => {
          started++
          finish = resolve
        }),
    },
  })
  const drain = relay.drainOnce()
  await waitFor(() => started === 1, 5000, 'the first publish')
  const stopped = relay.stop()
  finish()
  const result = await drain
  await stopped
  assert.equal(started, 1, 'no publish starts after stop()')
  assert.equal(result.published, 1)
  const events = await store.outbox.listForAggregate('t1', 'u1')
  assert.deepEqual(
    events.map((e) => [e.status, e.leaseOwner]),
    [['published', null], ...Array.from({ length: 4 }, () => ['pending', null])],
  )
  // The relay can drain again afterwards, to the end.
  finish = () => {}
  const again = new OutboxRelay({ outbox: store.outbox, publisher: { publish: async () => {} } })
  assert.equal((await again.drainOnce()).published, 4)
  const rest = await relay.drainOnce().then(
    (r) => r.published,
    () => -1,
  )
  assert.equal(rest, 0, 'the stopped relay drains again (nothing is left)')
})
