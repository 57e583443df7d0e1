// The relay's settle queue: drain() must return only once nothing is in flight, so that relay.stop()
// resolves after its last acknowledgements and releases are in the store, as docs/outbox.md says.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SettleQueue } from '../../src/outbox/settle-queue.js'
import type { OutboxAccess, SettleItem, SettleOptions } from '../../src/store/store.js'

/** An outbox whose settle statements each take `ms`, recording which items each one carried and when it ended. */
function slowOutbox(ms: number) {
  const statements: Array<{ items: string[]; done: boolean }> = []
  const outbox = {
    settle: async (options: SettleOptions) => {
      const statement = { items: options.items.map((i) => i.eventId), done: false }
      statements.push(statement)
      await new Promise((resolve) => setTimeout(resolve, ms))
      statement.done = true
      return new Map(options.items.map((i) => [i.eventId, 'published']))
    },
  } as unknown as OutboxAccess
  return { outbox, statements }
}

const item = (n: number): SettleItem => ({ tenantId: 'tn_1', eventId: `ev_${n}`, outcome: 'published' })

test('drain() waits for the statement in flight and for the one it would start, then sends what is left', async () => {
  const { outbox, statements } = slowOutbox(30)
  let stopping = false
  const settled: string[] = []
  const queue = new SettleQueue({
    outbox,
    owner: 'relay_1',
    maxAttempts: 5,
    enough: 1,
    urgent: () => stopping,
    settled: (items) => settled.push(...items.map((i) => i.eventId)),
    wake: () => {},
  })
  queue.add(item(1)) // goes at once (enough: 1)
  assert.equal(queue.inFlight, true)
  queue.add(item(2)) // waits behind it: the next statement
  stopping = true // as relay.stop() does; the statement in flight, ending, would start the next at once
  const draining = queue.drain()
  queue.add(item(3)) // a release added while stopping
  await draining
  assert.equal(queue.inFlight, false, 'a settle statement is still running after drain() resolved')
  assert.ok(
    statements.every((s) => s.done),
    'drain() resolved before every settle statement ended',
  )
  assert.deepEqual(settled.sort(), ['ev_1', 'ev_2', 'ev_3'])
  assert.equal(queue.idle, true)
})
