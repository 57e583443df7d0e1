// A 3-node JetStream cluster on loopback (real nats-server processes), a stream with 3 replicas: the stream
// leader is killed (SIGKILL) mid-drain while commits continue, and every committed event ends in the stream
// exactly once, in per-user order. Run by `npm run test:faults`, not `npm test`.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { OutboxRelay } from '../../src/outbox/index.js'
import { JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { createTestDatabase, postgresSkip, type TestDatabase } from '../support/services.js'
import { NatsFixture, natsServerSkip, sleep } from './nats-servers.js'
import { assertExactlyOnceInOrder, readStream, startCommitting, waitForDrain } from './verify.js'

const skip = natsServerSkip() || (await postgresSkip())
const STREAM = 'FAULTS_CLUSTER'

let db: TestDatabase
let store: UserEngineStore
let nats: NatsFixture

before(async () => {
  if (skip) return
  db = await createTestDatabase('ue_faults_cluster')
  store = await createNodePostgresStore({ connectionString: db.url })
  await store.migrate()
  nats = new NatsFixture()
})
after(async () => {
  if (skip) return
  await nats?.dispose()
  await store?.close()
  await db?.drop()
})

async function streamLeader(servers: string[]): Promise<string | undefined> {
  const nc = await connect({ servers })
  try {
    const info = await (await jetstreamManager(nc, { timeout: 5000 })).streams.info(STREAM)
    return info.cluster?.leader
  } finally {
    await nc.close()
  }
}

test('killing the stream leader of a 3-node cluster mid-drain loses and repeats nothing', {
  skip,
  timeout: 240_000,
}, async () => {
  const nodes = await nats.cluster(3)
  const servers = nodes.map((n) => n.url)
  const tenantId = `t_${randomBytes(4).toString('hex')}`
  await store.transaction(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name: tenantId, status: 'active' }, { mustNotExist: true })
  })
  const users = Array.from({ length: 30 }, (_, i) => `u${i}`)
  // A backlog to drain: 30 users x 30 events.
  const backlog = startCommitting(store, tenantId, users, 2000)
  while (backlog.commits < 900) await sleep(50)
  await backlog.stop()

  const publisher = new JetStreamPublisher({
    servers,
    stream: STREAM,
    subjectPrefix: 'faults-cluster',
    replicas: 3,
    duplicateWindowMs: 300_000,
    timeoutMs: 2000,
  })
  await publisher.connect()
  const leader = await streamLeader(servers)
  const victim = nodes.find((n) => n.name === leader)
  assert.ok(victim, `no stream leader among the nodes (${leader})`)

  let published = 0
  const relay = new OutboxRelay({
    outbox: store.outbox,
    metrics: false,
    pollIntervalMs: 200,
    brokerRetry: { baseMs: 100, maxMs: 1000 },
    // Small claims, so the drain is still going when the leader dies.
    batchSize: 50,
    perAggregate: 5,
    publishConcurrency: 8,
    onError: () => {},
    publisher: {
      publish: async (e) => {
        await publisher.publish(e)
        published++
      },
      whenReachable: (signal) => publisher.whenReachable(signal),
    },
  })
  const committer = startCommitting(store, tenantId, users, 50)
  relay.start()
  try {
    while (published < 300) await sleep(10)
    await victim.stop('SIGKILL')
    const killedAt = published
    const survivors = nodes.filter((n) => n !== victim).map((n) => n.url)
    await sleep(5000)
    await committer.stop()
    await waitForDrain(store, 120_000)
    const p = await relay.progress()
    assert.ok(p.published > killedAt, 'nothing published after the leader died')
    assert.equal(p.dead, 0, 'an event went dead')
    assert.equal(p.deadInOutbox, 0)
    // The JetStream API can time out while the cluster settles after the kill: ask again for up to 30 s.
    let newLeader: string | undefined
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(1000)) {
      newLeader = await streamLeader(survivors).catch(() => undefined)
      if (newLeader && newLeader !== victim.name) break
    }
    assert.ok(newLeader && newLeader !== victim.name, `no new stream leader (${newLeader})`)

    const stored = await readStream(survivors, STREAM)
    const { committed } = await assertExactlyOnceInOrder(store, tenantId, users, stored)
    assert.equal(committer.failures, 0, 'commits failed')
    assert.ok(committer.commits > 0, 'no commits while the leader died')
    process.stderr.write(
      `# leader ${victim.name} killed after ${killedAt} publishes; new leader ${newLeader}; ${committed} events ` +
        `committed, ${stored.length} in the stream; relay retried ${p.retried}, released ${p.released}\n`,
    )
  } finally {
    await committer.stop()
    await relay.close()
    await publisher.close()
  }
})
