import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { sleep } from '../../src/testing/shared/expect.js'
import { commitEvents } from '../outbox/helpers.js'
import {
  createTestDatabase,
  NATS_URL,
  natsSkip,
  postgresSkip,
  type TestDatabase,
} from '../support/services.js'
import { runCli, startCli } from './run-cli.js'

const skip = (await postgresSkip()) || (await natsSkip())

/** `count` commits of one event for each of `users` users in one tenant; returns the event ids. */
async function commitUserEvents(store: UserEngineStore, tenantId: string, users: number, count: number) {
  const ids: string[] = []
  for (let u = 0; u < users; u++) {
    for (let v = 0; v < count; v++) await commitEvents(store, tenantId, `u${u}`)
    ids.push(...(await store.outbox.listForAggregate(tenantId, `u${u}`)).map((e) => e.id))
  }
  return ids
}

/** `relay` with its own stream and subject prefix. */
const relayArgs = (url: string, stream: string, prefix: string) => [
  'relay',
  '--database-url',
  url,
  '--nats',
  NATS_URL,
  '--stream',
  stream,
  '--subject-prefix',
  prefix,
]

describe('user-engine relay and outbox commands (Postgres server, NATS)', { skip }, () => {
  let db: TestDatabase
  let store: UserEngineStore
  let nc: NatsConnection
  const run = randomBytes(4).toString('hex')
  const streams: string[] = []

  before(async () => {
    db = await createTestDatabase('ue_relay_cli', LATEST_SCHEMA_VERSION)
    store = await createNodePostgresStore({ connectionString: db.url })
    nc = await connect({ servers: NATS_URL })
  })
  after(async () => {
    const jsm = await jetstreamManager(nc)
    for (const s of streams) await jsm.streams.delete(s).catch(() => undefined)
    await nc.close()
    await store.close()
    await db.drop()
  })

  async function streamIds(stream: string, expected: number): Promise<string[]> {
    const consumer = await jetstream(nc).consumers.get(stream)
    const ids: string[] = []
    const messages = await consumer.fetch({ max_messages: expected + 10, expires: 1500 })
    for await (const m of messages) ids.push(m.headers?.get('Nats-Msg-Id') ?? '')
    return ids
  }

  test('--once drains every committed event into the stream, each exactly once, and exits 0', async () => {
    const tenant = `t_once_${run}`
    const ids = await commitUserEvents(store, tenant, 5, 4)
    const stream = `UE_CLI_ONCE_${run}`
    streams.push(stream)
    const args = relayArgs(db.url, stream, `ue-cli-once-${run}`)
    const r = await runCli([...args, '--once', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).published, ids.length)
    assert.equal(JSON.parse(r.stdout).pending, 0)
    // A second drain publishes nothing new.
    const again = await runCli([...args, '--once', '--json'])
    assert.equal(JSON.parse(again.stdout).published, 0)
    assert.deepEqual((await streamIds(stream, ids.length)).sort(), [...ids].sort())
  })

  // Spawned: a signal is only real for a process of its own.
  test('runs until SIGTERM, then finishes its batch and exits 0', async () => {
    const tenant = `t_term_${run}`
    const ids = await commitUserEvents(store, tenant, 3, 3)
    const stream = `UE_CLI_TERM_${run}`
    streams.push(stream)
    const { child, done } = startCli(relayArgs(db.url, stream, `ue-cli-term-${run}`))
    // Wait (bounded) until the relay has published everything, then stop it as an orchestrator would.
    const deadline = Date.now() + 60_000
    while ((await store.outbox.lag()).pending > 0 && Date.now() < deadline) await sleep(100)
    assert.equal((await store.outbox.lag()).pending, 0)
    child.kill('SIGTERM')
    const { code, stderr } = await done
    assert.equal(code, 0, stderr)
    assert.match(stderr, /SIGTERM: finishing the batch in flight/)
    assert.match(stderr, /relay: published \d+/)
    assert.deepEqual((await streamIds(stream, ids.length)).sort(), [...ids].sort())
  })

  test('--once stops early on SIGTERM: what it published is acknowledged, the rest released, exit 0', async () => {
    const tenant = `t_once_term_${run}`
    const users = 50
    for (let u = 0; u < users; u++) await commitEvents(store, tenant, `u${u}`, 200)
    const total = users * 200
    const stream = `UE_CLI_ONCE_TERM_${run}`
    streams.push(stream)
    const args = relayArgs(db.url, stream, `ue-cli-once-term-${run}`)
    const { child, done } = startCli([...args, '--once', '--json'])
    const deadline = Date.now() + 60_000
    while ((await store.outbox.lag()).pending === total && Date.now() < deadline) await sleep(10)
    child.kill('SIGTERM')
    const { code, stdout, stderr } = await done
    assert.equal(code, 0, stderr)
    const result = JSON.parse(stdout)
    assert.equal(result.stoppedEarly, true, 'the drain was still running when the signal came')
    assert.ok(result.published > 0 && result.published < total, stdout)
    const events = (
      await Promise.all(
        Array.from({ length: users }, (_, u) => store.outbox.listForAggregate(tenant, `u${u}`)),
      )
    ).flat()
    const published = events.filter((e) => e.status === 'published')
    assert.equal(published.length, result.published)
    assert.deepEqual(
      events.filter((e) => e.status !== 'published' && (e.status !== 'pending' || e.leaseOwner !== null)),
      [],
      'nothing is left leased',
    )
    assert.deepEqual((await streamIds(stream, total)).sort(), published.map((e) => e.id).sort())
    // Released, not leased: a second drain publishes the rest at once.
    const rest = await runCli([...args, '--once', '--json'])
    assert.equal(JSON.parse(rest.stdout).published, total - result.published, rest.stderr)
    assert.equal(JSON.parse(rest.stdout).pending, 0)
  })

  test('outbox retry and discard act on a dead event only', async () => {
    const tenant = `t_dead_${run}`
    const [first, second] = await commitUserEvents(store, tenant, 1, 2)
    const [claimed] = await store.outbox.claim({ owner: 'operator-test', limit: 1, leaseMs: 60_000 })
    assert.equal(claimed?.id, first)
    assert.equal(
      await store.outbox.fail({
        owner: 'operator-test',
        eventId: first!,
        error: 'broker down',
        maxAttempts: 1,
        backoffMs: 0,
      }),
      'dead',
    )

    const notDead = await runCli(['outbox', 'discard', '--event', second!, '--database-url', db.url])
    assert.equal(notDead.code, 1)
    assert.match(notDead.stdout, /no dead event/)

    const retried = await runCli(['outbox', 'retry', '--event', first!, '--database-url', db.url, '--json'])
    assert.equal(retried.code, 0, retried.stderr)
    assert.equal(JSON.parse(retried.stdout).changed, true)
    assert.equal((await store.outbox.get(first!))?.status, 'pending')

    await store.outbox.claim({ owner: 'operator-test', limit: 1, leaseMs: 60_000 })
    await store.outbox.fail({
      owner: 'operator-test',
      eventId: first!,
      error: 'broker down',
      maxAttempts: 1,
      backoffMs: 0,
    })
    const discarded = await runCli(['outbox', 'discard', '--event', first!, '--database-url', db.url])
    assert.equal(discarded.code, 0, discarded.stderr)
    assert.equal((await store.outbox.get(first!))?.status, 'discarded')
    // The user's next event is now the head of its sequence.
    const [next] = await store.outbox.claim({ owner: 'operator-test', limit: 10, leaseMs: 60_000 })
    assert.equal(next?.id, second)

    const usage = await runCli(['outbox', 'retry', '--database-url', db.url])
    assert.equal(usage.code, 2)
  })
})
