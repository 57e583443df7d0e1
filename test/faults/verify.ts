import assert from 'node:assert/strict'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import type { OutboxEntry } from '../../src/domain/records.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { sleep } from './nats-servers.js'

export interface StoredEvent {
  readonly streamSeq: number
  readonly id: string
  readonly aggregateId: string
  readonly sequence: number
  readonly position: number
}

/** Every message of `stream`, in stream order, as the events they carry. */
export async function readStream(servers: string[], stream: string): Promise<StoredEvent[]> {
  const nc = await connect({ servers })
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 })
    const info = await jsm.streams.info(stream)
    const out: StoredEvent[] = []
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq })
      if (!m) continue
      const body = m.json<{ id: string; aggregateId: string; sequence: number; position: number }>()
      out.push({
        streamSeq: seq,
        id: body.id,
        aggregateId: body.aggregateId,
        sequence: body.sequence,
        position: body.position,
      })
    }
    return out
  } finally {
    await nc.close()
  }
}

/** Every committed event of `users` in the stream exactly once, each user's in (sequence, position) order. */
export async function assertExactlyOnceInOrder(
  store: UserEngineStore,
  tenantId: string,
  users: readonly string[],
  stored: readonly StoredEvent[],
): Promise<{ committed: number; duplicates: number }> {
  const seen = new Map<string, number>()
  for (const m of stored) seen.set(m.id, (seen.get(m.id) ?? 0) + 1)
  const duplicates = [...seen.values()].filter((n) => n > 1).length
  let committed = 0
  for (const userId of users) {
    const events: OutboxEntry[] = await store.outbox.listForAggregate(tenantId, userId)
    committed += events.length
    const missing = events.filter((e) => !seen.has(e.id))
    assert.equal(missing.length, 0, `${missing.length} events of ${userId} never reached the stream`)
    const inStream = stored.filter((m) => m.aggregateId === userId).map((m) => m.id)
    assert.deepEqual(
      inStream,
      events.map((e) => e.id),
      `the stream does not hold ${userId}'s events once each in order`,
    )
    assert.ok(
      events.every((e) => e.status === 'published'),
      `an event of ${userId} is not published`,
    )
  }
  assert.equal(duplicates, 0, 'an event is in the stream more than once')
  return { committed, duplicates }
}

/**
 * Commits one event per commit at about `perSecond`, round-robin over `users` (each user's commits one after
 * another), until `stop()`; commits that fail (none should) are counted.
 */
export function startCommitting(
  store: UserEngineStore,
  tenantId: string,
  users: readonly string[],
  perSecond: number,
) {
  let stopped = false
  let commits = 0
  let failures = 0
  const versions = new Map<string, number>()
  const run = (async () => {
    let i = 0
    const started = Date.now()
    while (!stopped) {
      const userId = users[i % users.length]!
      if (!versions.has(userId)) versions.set(userId, (await store.getUser(tenantId, userId))?.version ?? 0)
      const v = versions.get(userId)!
      try {
        await store.transaction(tenantId, async (tx) => {
          tx.putUser(
            { id: userId, status: 'active' },
            v === 0 ? { mustNotExist: true } : { expectedVersion: v },
          )
          tx.enqueue({ type: 'fault.event', userId, payload: { n: v } })
        })
        versions.set(userId, v + 1)
        commits++
      } catch {
        failures++
      }
      i++
      const due = started + (i * 1000) / perSecond
      const wait = due - Date.now()
      if (wait > 0) await sleep(wait)
    }
  })()
  return {
    get commits() {
      return commits
    },
    get failures() {
      return failures
    },
    async stop() {
      stopped = true
      await run
    },
  }
}

/** Waits until the outbox has no pending event, or throws after `timeoutMs`. */
export async function waitForDrain(store: UserEngineStore, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const lag = await store.outbox.lag()
    if (lag.pending === 0) return
    if (Date.now() > deadline) throw new Error(`${lag.pending} events still pending after ${timeoutMs} ms`)
    await sleep(200)
  }
}
