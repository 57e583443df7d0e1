// The relay from a Postgres server into JetStream, measured in one run:
// - drain rate of a backlog of 5000 users x 1 event and of 10 users x 500 events, each next to raw JetStream
//   publishing of the same messages with as many in flight as the relay can have (one per aggregate, at most
//   publishConcurrency), measured right after it: a warm-up round, then the median of 3 rounds;
// - latency from commit to publish acknowledged by the broker while commits arrive at 500 events/s.
// tsx bench/relay.ts [--json] [--latency-seconds N] [--rounds N]
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import pg from 'pg'
import type { OutboxEntry } from '../src/domain/records.js'
import { OutboxRelay, type RelayOptions } from '../src/outbox/index.js'
import { JetStreamPublisher } from '../src/outbox/nats/index.js'
import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import type { UserEngineStore } from '../src/store/store.js'
import { createTestDatabase, NATS_URL } from '../test/support/services.js'
import { type BenchResult, formatResults } from './measure.js'

export interface RelayBenchOptions {
  readonly natsUrl?: string
  /** Relay options under test (batchSize, perAggregate, publishConcurrency). */
  readonly relay?: Partial<RelayOptions>
  /** Measured rounds per backlog, after one warm-up round. Default 3. */
  readonly rounds?: number
  /** Seconds of commits at 500 events/s for the latency figure. Default 10; 0 skips it. */
  readonly latencySeconds?: number
  readonly log?: (line: string) => void
}

export interface LatencyResult {
  readonly name: string
  readonly eventsPerSec: number
  readonly events: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** `users` users, each with `perUser` commits of one event, from 16 writers. */
async function seed(store: UserEngineStore, tenantId: string, users: number, perUser: number) {
  await store.transaction(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name: tenantId, status: 'active' }, { mustNotExist: true })
  })
  // Users advance together (round-robin), as a busy system's commits interleave.
  const jobs: [string, number][] = []
  for (let v = 0; v < perUser; v++) for (let u = 0; u < users; u++) jobs.push([`u${u}`, v])
  const locks = new Map<string, Promise<void>>()
  let next = 0
  const writer = async () => {
    while (next < jobs.length) {
      const [userId, v] = jobs[next++]!
      const before = locks.get(userId) ?? Promise.resolve()
      const mine = before.then(() =>
        store.transaction(tenantId, async (tx) => {
          tx.putUser(
            { id: userId, status: 'active' },
            v === 0 ? { mustNotExist: true } : { expectedVersion: v },
          )
          tx.enqueue({
            type: 'bench.event',
            userId,
            payload: { n: v, note: 'a small payload like most events' },
          })
        }),
      )
      locks.set(userId, mine)
      await mine
    }
  }
  await Promise.all(Array.from({ length: 16 }, writer))
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>) {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0

export async function runRelayBench(
  options: RelayBenchOptions = {},
): Promise<{ results: BenchResult[]; latency: LatencyResult | null }> {
  const servers = options.natsUrl ?? NATS_URL
  const log = options.log ?? (() => {})
  const relayOptions = options.relay ?? {}
  const concurrency = relayOptions.publishConcurrency ?? 32
  const rounds = options.rounds ?? 3
  const run = randomBytes(4).toString('hex')
  const stream = `UE_BENCH_${run}`
  const subjectPrefix = `ue-bench-${run}`
  const results: BenchResult[] = []
  let latency: LatencyResult | null = null

  const db = await createTestDatabase('ue_bench_relay')
  const store = await createNodePostgresStore({ connectionString: db.url })
  const admin = new pg.Client({ connectionString: db.url })
  await admin.connect()
  const nc = await connect({ servers })
  const publisher = new JetStreamPublisher({ servers, stream, subjectPrefix })
  const raw = new JetStreamPublisher({ servers, stream, subjectPrefix })
  try {
    await store.migrate()
    await publisher.connect()
    await raw.connect()
    let config = 0
    for (const [users, perUser] of [
      [5000, 1],
      [10, 500],
    ] as const) {
      const tenantId = `bench${config++}`
      const name = `relay ${users} users x ${perUser} events`
      log(`${name}: seeding`)
      await seed(store, tenantId, users, perUser)
      // Fresh statistics: the shape on which head-only claims slowed down quadratically.
      await admin.query('ANALYZE user_engine_outbox')

      // One warm-up round, then `rounds` measured ones, each the relay draining the backlog and raw
      // publishing right after it; between rounds the backlog is put back (new event ids, so the broker's
      // dedup drops nothing) and the table vacuumed. Figures are the medians; the log shows the spread.
      const inFlight = Math.min(concurrency, users)
      const relayRates: number[] = []
      const rawRates: number[] = []
      const ratios: number[] = []
      for (let round = 0; round <= rounds; round++) {
        if (round > 0) {
          await admin.query(
            `UPDATE user_engine_outbox SET status = 'pending', published_at = NULL, lease_owner = NULL,
               lease_until = NULL, id = regexp_replace(id, '_r[0-9]+$', '') || '_r' || $2::text
             WHERE tenant_id = $1`,
            [tenantId, round],
          )
          await admin.query('VACUUM ANALYZE user_engine_outbox')
        }
        const sent: OutboxEntry[] = []
        const relay = new OutboxRelay({
          outbox: store.outbox,
          metrics: false,
          ...relayOptions,
          publisher: {
            publish: async (e) => {
              await publisher.publish(e)
              sent.push(e)
            },
          },
        })
        let started = performance.now()
        while ((await store.outbox.lag()).pending > 0) await relay.drainOnce()
        const relaySecs = (performance.now() - started) / 1000

        // The same messages, with as many in flight as the relay could have; new ids so dedup keeps them.
        started = performance.now()
        await pool(sent, inFlight, (e) => raw.publish({ ...e, id: `${e.id}r` }))
        const rawSecs = (performance.now() - started) / 1000
        if (round === 0) continue
        relayRates.push(sent.length / relaySecs)
        rawRates.push(sent.length / rawSecs)
        ratios.push(sent.length / relaySecs / (sent.length / rawSecs))
      }
      const opsPerSec = Math.round(median(relayRates))
      const baselineOpsPerSec = Math.round(median(rawRates))
      const ratio = Math.round(median(ratios) * 100) / 100
      const spread = (xs: number[], digits = 0) =>
        `${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}`
      log(
        `${name}: ${opsPerSec} events/s (${spread(relayRates)}); raw JetStream (${inFlight} in flight) ${baselineOpsPerSec} msg/s (${spread(rawRates)}); ratio ${ratio.toFixed(2)} (${spread(ratios, 2)}), median of ${rounds} rounds`,
      )
      results.push({ name, opsPerSec, baselineOpsPerSec, ratio })
      while ((await store.outbox.purgePublished(0, 100_000)) > 0) {}
    }

    const seconds = options.latencySeconds ?? 10
    if (seconds > 0) latency = await measureLatency(store, publisher, relayOptions, seconds, log)
  } finally {
    await publisher.close()
    await raw.close()
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {})
    await nc.close()
    await admin.end()
    await store.close()
    await db.drop()
  }
  return { results, latency }
}

/**
 * Commits at 500 events/s (50 users, a commit every 2 ms on a fixed schedule) into a running relay woken by
 * LISTEN/NOTIFY, and records each event's commit (occurredAt, taken as the commit starts) to its publish
 * acknowledged by the broker.
 */
async function measureLatency(
  store: UserEngineStore,
  publisher: JetStreamPublisher,
  relayOptions: Partial<RelayOptions>,
  seconds: number,
  log: (line: string) => void,
): Promise<LatencyResult> {
  const rate = 500
  const tenantId = 'latency'
  const users = 50
  await store.transaction(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name: tenantId, status: 'active' }, { mustNotExist: true })
  })
  const samples: number[] = []
  const relay = new OutboxRelay({
    outbox: store.outbox,
    metrics: false,
    ...relayOptions,
    publisher: {
      publish: async (e) => {
        await publisher.publish(e)
        samples.push(Date.now() - Date.parse(e.occurredAt))
      },
    },
  })
  relay.start()
  const versions = new Map<string, number>()
  const total = rate * seconds
  const started = performance.now()
  const inFlight = new Set<Promise<void>>()
  const chain = new Map<string, Promise<void>>()
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    const userId = `l${i % users}`
    const v = versions.get(userId) ?? 0
    versions.set(userId, v + 1)
    // One user's commits go one after another (each expects the version the previous one wrote).
    const previous = chain.get(userId) ?? Promise.resolve()
    const p: Promise<void> = previous
      .then(() =>
        store.transaction(tenantId, async (tx) => {
          tx.putUser(
            { id: userId, status: 'active' },
            v === 0 ? { mustNotExist: true } : { expectedVersion: v },
          )
          tx.enqueue({ type: 'bench.latency', userId, payload: { i } })
        }),
      )
      .finally(() => inFlight.delete(p))
    chain.set(userId, p)
    inFlight.add(p)
  }
  await Promise.all(inFlight)
  const deadline = Date.now() + 30_000
  while (samples.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  await relay.stop()
  const elapsed = (performance.now() - started) / 1000
  const sorted = [...samples].sort((a, b) => a - b)
  const result: LatencyResult = {
    name: `relay latency at ${rate} events/s`,
    eventsPerSec: Math.round(samples.length / elapsed),
    events: samples.length,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? 0,
  }
  log(
    `${result.name}: ${result.events} events, commit to publish acknowledged p50 ${result.p50Ms} ms, p90 ${result.p90Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms`,
  )
  return result
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      'latency-seconds': { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      'batch-size': { type: 'string' },
      'per-aggregate': { type: 'string' },
      'publish-concurrency': { type: 'string' },
    },
  })
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const relay: Partial<RelayOptions> = {
    ...(values['batch-size'] ? { batchSize: Number(values['batch-size']) } : {}),
    ...(values['per-aggregate'] ? { perAggregate: Number(values['per-aggregate']) } : {}),
    ...(values['publish-concurrency'] ? { publishConcurrency: Number(values['publish-concurrency']) } : {}),
  }
  const out = await runRelayBench({
    latencySeconds: Number(values['latency-seconds']),
    rounds: Number(values.rounds),
    relay,
    log,
  })
  if (values.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
  else {
    process.stdout.write(`${formatResults(out.results)}\n`)
    if (out.latency) process.stdout.write(`${JSON.stringify(out.latency)}\n`)
  }
}
