// Client connections are terminated, then the PostgreSQL server crashes (every server process SIGKILLed)
// while registrations and a relay run, stays
// down a few seconds and restarts with crash recovery: the host process survives, every call in the outage
// fails fast with STORE_UNAVAILABLE, the same store and relay carry on once the server is back, no
// acknowledged registration is lost, and every committed event reaches the stream once, in order.
// Run by `npm run test:faults`, not `npm test`.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { UserEngine } from '../../src/engine/index.js'
import { createKeyring, generateKey } from '../../src/engine/keyring.js'
import { OutboxRelay } from '../../src/outbox/index.js'
import { JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { allPages } from '../../src/testing/shared/fixtures.js'
import { NatsFixture, natsServerSkip, sleep } from './nats-servers.js'
import { PostgresServer, postgresServerSkip } from './postgres-server.js'
import { assertExactlyOnceInOrder, readStream, waitForDrain } from './verify.js'

const OUTAGE_MS = 5_000
const WORKERS = 8
const skip = postgresServerSkip() || natsServerSkip()

let server: PostgresServer
let nats: NatsFixture
let store: UserEngineStore

before(async () => {
  if (skip) return
  server = new PostgresServer()
  await server.init()
  await server.start()
  store = await createNodePostgresStore({ connectionString: server.url })
  await store.migrate()
  nats = new NatsFixture()
})
after(async () => {
  if (skip) return
  await store?.close()
  await server?.dispose()
  await nats?.dispose()
})

type Outcome = 'ok' | 'unknown' | 'refused'

test('a crashed and restarted PostgreSQL: fast typed failures, the same store and relay recover, nothing acknowledged is lost', {
  skip,
  timeout: 180_000,
}, async () => {
  const node = await nats.single()
  const engine = new UserEngine({
    store,
    keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
    passwordHashing: { memoryCost: 64, timeCost: 1, parallelism: 1 },
  })
  const tenant = await engine.createTenant('Crash')
  const publisher = new JetStreamPublisher({
    servers: node.url,
    stream: 'FAULTS_PG_CRASH',
    subjectPrefix: 'faults-pg-crash',
    timeoutMs: 2000,
  })
  await publisher.connect()
  const relayErrors: unknown[] = []
  const relay = new OutboxRelay({
    outbox: store.outbox,
    publisher,
    pollIntervalMs: 200,
    metrics: false,
    onError: (e) => relayErrors.push(e),
  })
  relay.start()

  // Each registration's outcome by email; the slowest failure, to show nothing hangs on a dead server.
  const outcomes = new Map<string, Outcome>()
  const codes = new Map<string, number>()
  let slowestFailureMs = 0
  let stopped = false
  let n = 0
  const worker = async (w: number) => {
    while (!stopped) {
      const email = `w${w}-${n++}@example.com`
      const startedAt = Date.now()
      try {
        await engine.registerUser(tenant.id, { email })
        outcomes.set(email, 'ok')
      } catch (error) {
        const e = error as { code?: string; message?: string; details?: { outcome?: string } }
        codes.set(String(e.code), (codes.get(String(e.code)) ?? 0) + 1)
        assert.equal(e.code, 'STORE_UNAVAILABLE', `a registration in the outage failed with ${e.code}`)
        outcomes.set(email, e.details?.outcome === 'unknown' ? 'unknown' : 'refused')
        slowestFailureMs = Math.max(slowestFailureMs, Date.now() - startedAt)
        await sleep(50)
      }
    }
  }
  const workers = Array.from({ length: WORKERS }, (_, i) => worker(i))
  try {
    await sleep(2000)
    const before = [...outcomes.values()].filter((o) => o === 'ok').length
    assert.ok(before > 0, 'nothing registered before the crash')

    // Killed connections first (an operator's pg_terminate_backend, a failover proxy): the server stays up,
    // every client connection is cut; the pool replaces them and registrations go on.
    const killed = await server.terminateClients()
    assert.ok(killed > 0, 'no client connection to terminate')
    const afterKill = [...outcomes.values()].filter((o) => o === 'ok').length
    await sleep(1000)
    assert.ok(
      [...outcomes.values()].filter((o) => o === 'ok').length > afterKill,
      'registrations did not go on after their connections were terminated',
    )

    await server.crash()
    await sleep(OUTAGE_MS / 2)
    await assert.rejects(
      store.readiness(),
      { code: 'STORE_UNAVAILABLE' },
      'readiness while the server is down',
    )
    await sleep(OUTAGE_MS / 2)
    const duringOk = [...outcomes.values()].filter((o) => o === 'ok').length

    await server.start()
    const upAt = Date.now()
    // The same store object serves again once the server accepts connections.
    let recoveredMs = -1
    while (Date.now() - upAt < 30_000) {
      if ([...outcomes.values()].filter((o) => o === 'ok').length > duringOk) {
        recoveredMs = Date.now() - upAt
        break
      }
      await sleep(100)
    }
    assert.ok(recoveredMs >= 0, 'registrations did not resume within 30 s of the restart')
    assert.equal((await store.readiness()).ready, true)
    await sleep(1000)
    stopped = true
    await Promise.all(workers)

    // Durable: every acknowledged registration is there; one refused before it was sent is not.
    let lost = 0
    let present = 0
    for (const [email, outcome] of outcomes) {
      const found = (await engine.findUserByEmail(tenant.id, email)) !== null
      if (outcome === 'ok' && !found) lost++
      if (outcome === 'refused' && found) present++
    }
    assert.equal(lost, 0, `${lost} acknowledged registrations were lost in the crash`)
    assert.ok(slowestFailureMs < 15_000, `a failing call took ${slowestFailureMs} ms`)

    await waitForDrain(store, 60_000)
    const users = (await allPages((cursor) => store.listUsers(tenant.id, { limit: 100, cursor })))
      .flat()
      .map((u) => u.id)
    const stored = await readStream([node.url], 'FAULTS_PG_CRASH')
    const { committed } = await assertExactlyOnceInOrder(store, tenant.id, users, stored)
    const count = (o: Outcome) => [...outcomes.values()].filter((x) => x === o).length
    process.stderr.write(
      `# crash: ${count('ok')} registrations acknowledged (0 lost), ${count('unknown')} of unknown outcome, ` +
        `${count('refused')} refused (${present} of them present), failures ${JSON.stringify(Object.fromEntries(codes))}, ` +
        `slowest failure ${slowestFailureMs} ms, serving again ${recoveredMs} ms after the restart; ` +
        `${committed} events committed, ${stored.length} in the stream, ${relayErrors.length} relay onError reports\n`,
    )
    assert.equal(present, 0, 'a registration refused before it was sent was applied')
  } finally {
    stopped = true
    await Promise.all(workers)
    await relay.close()
  }
})
