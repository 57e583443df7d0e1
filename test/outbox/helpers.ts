import { randomBytes } from 'node:crypto'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import type { JsonValue } from '../../src/domain/records.js'
import { JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { recordUserChange } from '../../src/store/change-user.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { FreezingProxy } from '../support/freezing-proxy.js'
import { NATS_URL } from '../support/services.js'

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Creates the tenant unless it exists (stores refuse commits into a missing tenant). */
export async function ensureTenant(store: UserEngineStore, tenantId: string): Promise<void> {
  if (await store.getTenant(tenantId)) return
  await store.transaction(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name: tenantId, status: 'active' }, { mustNotExist: true })
  })
}

/**
 * Commits one unit of work on a user (creating the tenant and user at first), emitting `count` events.
 * Returns the user's new version.
 */
export async function commitEvents(
  store: UserEngineStore,
  tenantId: string,
  userId: string,
  count = 1,
  payload: { readonly [key: string]: JsonValue } = {},
): Promise<number> {
  await ensureTenant(store, tenantId)
  const events = Array.from({ length: count }, () => ({ type: 'x', payload }))
  return store.transaction(tenantId, async (tx) => {
    const user = await tx.getUser(userId)
    return (await recordUserChange(tx, userId, user, { status: 'active', events })).version
  })
}

/** Polls `check` until it returns true or the timeout passes. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
  what = 'condition',
) {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** A promise with its resolver, for publishers a test holds open. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

/**
 * A JetStreamPublisher on its own stream, reaching the test NATS server through a FreezingProxy, with one
 * committed event to publish. `cleanup()` unfreezes and closes the proxy and deletes the stream.
 */
export async function publisherBehindProxy(name: string, timeoutMs: number) {
  const nats = new URL(NATS_URL)
  const proxy = new FreezingProxy({ host: nats.hostname, port: Number(nats.port || 4222) })
  await proxy.start()
  const run = randomBytes(4).toString('hex')
  const stream = `UE_${name.toUpperCase()}_${run}`
  const publisher = new JetStreamPublisher({
    servers: `nats://127.0.0.1:${proxy.port}`,
    stream,
    subjectPrefix: `ue-${name}-${run}`,
    timeoutMs,
  })
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1', 1)
  const [event] = await store.outbox.listForAggregate('t1', 'u1')
  const cleanup = async () => {
    proxy.unfreeze()
    await proxy.close()
    const nc = await connect({ servers: NATS_URL })
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {})
    await nc.close()
  }
  return { proxy, publisher, event: event!, cleanup }
}
