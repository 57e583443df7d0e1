// Relay drain rate from a Postgres server into JetStream, next to raw JetStream publishing of the same
// messages with the same number in flight, measured in the same run.
// tsx bench/relay.ts [--json] [--events N]
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import type { OutboxEntry } from '../src/domain/records.js'
import { OutboxRelay } from '../src/outbox/index.js'
import { JetStreamPublisher } from '../src/outbox/nats/index.js'
import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import type { UserEngineStore } from '../src/store/store.js'
import { createTestDatabase, NATS_URL } from '../test/support/services.js'
import { type BenchResult, formatResults } from './measure.js'

export interface RelayBenchOptions {
  /** Events drained per configuration. Default 2000. */
  readonly events?: number
  readonly batchSizes?: readonly number[]
  readonly relayCounts?: readonly number[]
  /** Events per user: claims take only each user's head, so this bounds how much one claim can take. Default 4. */
  readonly eventsPerUser?: number
  readonly publishConcurrency?: number
  readonly natsUrl?: string
  readonly log?: (line: string) => void
}

async function seed(store: UserEngineStore, tenantId: string, events: number, perUser: number) {
  await store.transaction(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name: tenantId, status: 'active' }, { mustNotExist: true })
  })
  const users = Math.ceil(events / perUser)
  let next = 0
  const writer = async () => {
    while (next < users) {
      const userId = `u${next++}`
      for (let v = 0; v < perUser; v++) {
        await store.transaction(tenantId, async (tx) => {
          tx.putUser(
            { id: userId, status: 'active' },
            v === 0 ? { mustNotExist: true } : { expectedVersion: v },
          )
          tx.enqueue({
            type: 'bench.event',
            userId,
            payload: { n: v, note: 'a small payload like most events' },
          })
        })
      }
    }
  }
  await Promise.all(Array.from({ length: 16 }, writer))
}

async function pool(
  items: readonly OutboxEntry[],
  concurrency: number,
  fn: (e: OutboxEntry) => Promise<void>,
) {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

export async function runRelayBench(options: RelayBenchOptions = {}): Promise<BenchResult[]> {
  const events = options.events ?? 2000
  const perUser = options.eventsPerUser ?? 4
  const concurrency = options.publishConcurrency ?? 32
  const servers = options.natsUrl ?? NATS_URL
  const log = options.log ?? (() => {})
  const run = randomBytes(4).toString('hex')
  const stream = `UE_BENCH_${run}`
  const subjectPrefix = `ue-bench-${run}`
  const results: BenchResult[] = []

  const db = await createTestDatabase('ue_bench_relay')
  const store = await createNodePostgresStore({ connectionString: db.url })
  const nc = await connect({ servers })
  const publishers: JetStreamPublisher[] = []
  const newPublisher = async () => {
    const p = new JetStreamPublisher({ servers, stream, subjectPrefix })
    await p.connect()
    publishers.push(p)
    return p
  }
  try {
    await store.migrate()
    let config = 0
    for (const batchSize of options.batchSizes ?? [1, 100, 500]) {
      for (const relayCount of options.relayCounts ?? [1, 2]) {
        const tenantId = `bench${config++}`
        const name = `relay Postgres->JetStream batch=${batchSize} relays=${relayCount}`
        log(`${name}: seeding ${events} events`)
        await seed(store, tenantId, events, perUser)

        const sent: OutboxEntry[] = []
        const relays = await Promise.all(
          Array.from({ length: relayCount }, async () => {
            const p = await newPublisher()
            return new OutboxRelay({
              outbox: store.outbox,
              batchSize,
              publishConcurrency: concurrency,
              publisher: {
                publish: async (e) => {
                  await p.publish(e)
                  sent.push(e)
                },
              },
            })
          }),
        )
        let started = performance.now()
        while ((await store.outbox.lag()).pending > 0) await Promise.all(relays.map((r) => r.drainOnce()))
        const relaySecs = (performance.now() - started) / 1000

        // Same messages, same in-flight count, new ids so the broker's dedup does not drop them.
        const raw = await newPublisher()
        const inFlight = Math.min(batchSize, concurrency) * relayCount
        started = performance.now()
        await pool(sent, inFlight, (e) => raw.publish({ ...e, id: `${e.id}r` }))
        const rawSecs = (performance.now() - started) / 1000

        const opsPerSec = Math.round(sent.length / relaySecs)
        const baselineOpsPerSec = Math.round(sent.length / rawSecs)
        const result = {
          name,
          opsPerSec,
          baselineOpsPerSec,
          ratio: Math.round((opsPerSec / baselineOpsPerSec) * 100) / 100,
        }
        log(
          `${name}: ${opsPerSec} events/s; raw JetStream (${inFlight} in flight) ${baselineOpsPerSec} msg/s; ratio ${result.ratio.toFixed(2)}`,
        )
        results.push(result)
        // Keep the claim query's table as small as in a steady state with retention.
        while ((await store.outbox.purgePublished(0, 100_000)) > 0) {}
      }
    }
  } finally {
    await Promise.all(publishers.map((p) => p.close()))
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {})
    await nc.close()
    await store.close()
    await db.drop()
  }
  return results
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { json: { type: 'boolean', default: false }, events: { type: 'string', default: '2000' } },
  })
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const results = await runRelayBench({ events: Number(values.events), log })
  if (values.json) process.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`)
  else process.stdout.write(`${formatResults(results)}\n`)
}
