// A NATS outage of 60 s while commits continue: the relay pauses (no attempt counted, nothing dead), reports
// the outage, and drains by itself when the broker is back; every event is in the stream once, in order.
// Long: run by `npm run test:faults`, not `npm test`.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { ErrorCode, UserEngineError } from '../../src/domain/errors.js'
import { OutboxRelay, type RelayProgress } from '../../src/outbox/index.js'
import { JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { createTestDatabase, postgresSkip, type TestDatabase } from '../support/services.js'
import { NatsFixture, natsServerSkip, sleep } from './nats-servers.js'
import { assertExactlyOnceInOrder, readStream, startCommitting, waitForDrain } from './verify.js'

const OUTAGE_MS = Number(process.env.USER_ENGINE_FAULT_OUTAGE_MS ?? 60_000)
const skip = natsServerSkip() || (await postgresSkip())

let db: TestDatabase
let store: UserEngineStore
let nats: NatsFixture

before(async () => {
  if (skip) return
  db = await createTestDatabase('ue_faults_outage')
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

test(`a ${OUTAGE_MS / 1000} s broker outage while commits continue: paused, reported, resumed, nothing lost or repeated`, {
  skip,
  timeout: OUTAGE_MS + 180_000,
}, async () => {
  const node = await nats.single()
  const tenantId = `t_${randomBytes(4).toString('hex')}`
  await store.transaction(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name: tenantId, status: 'active' }, { mustNotExist: true })
  })
  const users = Array.from({ length: 20 }, (_, i) => `u${i}`)
  const publisher = new JetStreamPublisher({
    servers: node.url,
    stream: 'FAULTS_OUTAGE',
    subjectPrefix: 'faults-outage',
    // The outage plus the drain after it stay inside the window, so a publish whose ack was lost at the
    // moment the broker went down is dropped as a duplicate when it is sent again.
    duplicateWindowMs: OUTAGE_MS + 120_000,
    timeoutMs: 2000,
  })
  await publisher.connect()
  const errors: unknown[] = []
  const progress: RelayProgress[] = []
  const relay = new OutboxRelay({
    outbox: store.outbox,
    publisher,
    pollIntervalMs: 200,
    progressIntervalMs: 500,
    brokerRetry: { baseMs: 100, maxMs: 2000 },
    metrics: false,
    onError: (e) => errors.push(e),
    onProgress: (p) => progress.push(p),
  })
  const committer = startCommitting(store, tenantId, users, 40)
  relay.start()
  try {
    await sleep(3000)
    assert.ok((await relay.progress()).published > 0, 'nothing published before the outage')

    await node.stop('SIGTERM')
    const downAt = Date.now()
    await sleep(OUTAGE_MS)
    const during = await relay.progress()
    assert.equal(during.broker, 'down', 'the relay does not report the broker down')
    assert.ok(during.brokerDownMs >= OUTAGE_MS - 10_000, `outage reported for ${during.brokerDownMs} ms`)
    assert.ok(during.pending > 0, 'commits did not continue during the outage')
    const publishedDuring = during.published

    await node.start()
    const upAt = Date.now()
    await sleep(3000)
    await committer.stop()
    await waitForDrain(store, 90_000)
    const drainedMs = Date.now() - upAt
    const final = await relay.progress()
    assert.equal(final.broker, 'up', 'the relay did not resume')
    assert.ok(final.published > publishedDuring, 'nothing published after the broker came back')
    assert.equal(final.dead, 0, 'an event went dead during the outage')
    assert.equal(final.retried, 0, 'the outage counted attempts against events')
    assert.equal(final.deadInOutbox, 0)

    // Reported through onError (once per outage) and the progress line.
    const outageErrors = errors.filter(
      (e) =>
        e instanceof UserEngineError &&
        e.code === ErrorCode.PUBLISH_FAILED &&
        e.details.reason === 'unreachable',
    )
    assert.ok(outageErrors.length >= 1, 'the outage never reached onError')
    assert.ok(outageErrors.length <= 3, `the outage was reported ${outageErrors.length} times`)
    assert.ok(
      progress.some((p) => p.broker === 'down'),
      'no progress report showed the broker down',
    )
    // No attempt was burnt on any event.
    for (const userId of users) {
      for (const e of await store.outbox.listForAggregate(tenantId, userId)) {
        assert.equal(e.attempts, 0, `event ${e.id} has ${e.attempts} attempts`)
      }
    }
    const stored = await readStream([node.url], 'FAULTS_OUTAGE')
    const { committed } = await assertExactlyOnceInOrder(store, tenantId, users, stored)
    assert.equal(committer.failures, 0)
    process.stderr.write(
      `# outage ${Math.round((upAt - downAt) / 1000)} s: ${committed} events committed, ${stored.length} in the stream, ` +
        `drained ${drainedMs} ms after the broker returned, ${outageErrors.length} onError report(s)\n`,
    )
  } finally {
    await committer.stop()
    await relay.close()
  }
})
