// Group commit: engine.registerUser with group commit on and off against hand-written node-postgres
// (BEGIN + 5 INSERT + COMMIT) and against a one-row INSERT (one statement, one WAL flush: the floor of a
// durable commit per call), at 1, 8 and 32 callers, with p50/p99 latency per call. PGlite too (in memory).
// `npm run bench -- --only commit`. Ratios against baselines measured in the same run; nothing passes or fails.
import { loadavg } from 'node:os'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { newId } from '../src/domain/ids.js'
import { createKeyring, generateKey } from '../src/engine/keyring.js'
import { UserEngine } from '../src/engine/user-engine.js'
import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import { createPgliteDriver } from '../src/store/postgres/pglite.js'
import { PostgresUserEngineStore } from '../src/store/postgres/postgres-store.js'
import { createTestDatabase } from '../test/support/services.js'
import type { BenchResult } from './measure.js'

const INSERT_RECORD = `INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
  VALUES ($1, $2, $3, $4, 1, $5, now(), now())`
const INSERT_AUDIT = `INSERT INTO user_engine_audit (tenant_id, id, occurred_at, action, user_id, data) VALUES ($1, $2, now(), $3, $4, $5)`
const INSERT_EVENT = `INSERT INTO user_engine_outbox (tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at, available_at)
  VALUES ($1, $2, 'user', $3, 1, 0, 'user.registered', $4, now(), now())`

type Query = (sql: string, params?: unknown[]) => Promise<unknown>

/** The same rows registerUser writes, the ordinary way: 7 round trips, one commit. */
async function handWritten(
  tx: (fn: (q: Query) => Promise<void>) => Promise<void>,
  tenantId: string,
  email: string,
) {
  const userId = newId('usr')
  await tx(async (q) => {
    await q(INSERT_RECORD, [tenantId, 'user', userId, userId, JSON.stringify({ status: 'active' })])
    await q(INSERT_RECORD, [
      tenantId,
      'identifier',
      newId('idn'),
      userId,
      JSON.stringify({ kind: 'email', value: email, verified: false }),
    ])
    await q(INSERT_RECORD, [tenantId, 'profile', userId, userId, JSON.stringify({ attributes: {} })])
    await q(INSERT_AUDIT, [tenantId, newId('aud'), 'user.registered', userId, JSON.stringify({})])
    await q(INSERT_EVENT, [tenantId, newId('evt'), userId, JSON.stringify({ userId })])
  })
}

interface Sample {
  opsPerSec: number
  latenciesMs: number[]
}

/** `concurrency` workers calling `op` for `durationMs`; throughput and every call's latency. */
async function run(op: () => Promise<unknown>, concurrency: number, durationMs: number): Promise<Sample> {
  const latenciesMs: number[] = []
  const started = performance.now()
  const deadline = started + durationMs
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now()
      await op()
      latenciesMs.push(performance.now() - t0)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { opsPerSec: latenciesMs.length / ((performance.now() - started) / 1000), latenciesMs }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN

export interface CommitFigures {
  readonly target: string
  readonly callers: number
  /** Per subject: median ops/s over the rounds, p50 and p99 latency (ms) over every measured call. */
  readonly subjects: Record<string, { opsPerSec: number; p50Ms: number; p99Ms: number }>
}

/** Rounds alternate the subjects so load drift hits all alike; the medians are compared. */
async function measure(
  subjects: Record<string, () => Promise<unknown>>,
  callers: number,
  durationMs: number,
  rounds: number,
): Promise<CommitFigures['subjects']> {
  const names = Object.keys(subjects)
  for (const n of names) await run(subjects[n]!, callers, Math.min(300, durationMs))
  const rates: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
  const latencies: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
  for (let r = 0; r < rounds; r++) {
    for (const n of names) {
      const s = await run(subjects[n]!, callers, durationMs)
      rates[n]!.push(s.opsPerSec)
      latencies[n]!.push(...s.latenciesMs)
    }
  }
  return Object.fromEntries(
    names.map((n) => {
      const sorted = latencies[n]!.sort((a, b) => a - b)
      return [
        n,
        { opsPerSec: median(rates[n]!), p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99) },
      ]
    }),
  )
}

const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100

/** BenchResult rows: each engine variant against each baseline; p50/p99 go to `figures`. */
function toResults(f: CommitFigures): BenchResult[] {
  const rows: BenchResult[] = []
  const s = f.subjects
  for (const engine of ['group commit on', 'group commit off']) {
    for (const base of ['hand-written transaction', 'one-row insert']) {
      const e = s[engine]
      const b = s[base]
      if (!e || !b) continue
      rows.push({
        name: `${f.target} register-user (${engine}) vs ${base} c=${f.callers}`,
        opsPerSec: Math.round(e.opsPerSec),
        baselineOpsPerSec: Math.round(b.opsPerSec),
        ratio: ratio(e.opsPerSec, b.opsPerSec),
      })
    }
  }
  return rows
}

export interface CommitBenchOptions {
  readonly target: 'postgres' | 'pglite'
  readonly durationMs: number
  readonly rounds: number
  readonly concurrencies: readonly number[]
  readonly log: (line: string) => void
}

export async function runGroupCommitBench(
  options: CommitBenchOptions,
): Promise<{ results: BenchResult[]; figures: CommitFigures[] }> {
  const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } })
  let n = 0
  const email = () => `gc-${process.pid}-${n++}@example.com`
  const figures: CommitFigures[] = []
  const cleanup: Array<() => Promise<void>> = []
  try {
    let subjectsFor: (tenantId: string) => Record<string, () => Promise<unknown>>
    let engineOn: UserEngine
    if (options.target === 'pglite') {
      const db = new PGlite()
      cleanup.push(() => db.close())
      const on = await PostgresUserEngineStore.open(await createPgliteDriver({ db }), { groupCommit: true })
      const off = await PostgresUserEngineStore.open(await createPgliteDriver({ db }), { groupCommit: false })
      cleanup.unshift(
        () => on.close(),
        () => off.close(),
      )
      await on.migrate()
      await off.migrate()
      engineOn = new UserEngine({ store: on, keyring })
      const engineOff = new UserEngine({ store: off, keyring })
      subjectsFor = (tenantId) => ({
        'hand-written transaction': () =>
          handWritten((fn) => db.transaction((tx) => fn((sql, p) => tx.query(sql, p))), tenantId, email()),
        'one-row insert': () => db.query(INSERT_AUDIT, [tenantId, newId('aud'), 'bench.one_row', null, '{}']),
        'group commit on': () => engineOn.registerUser(tenantId, { email: email() }),
        'group commit off': () => engineOff.registerUser(tenantId, { email: email() }),
      })
    } else {
      const database = await createTestDatabase('ue_bench_gc')
      cleanup.push(() => database.drop())
      // Pools of 8 on every side, as in the measurement: 32 callers queue for connections alike.
      const pool = () => {
        const p = new pg.Pool({ connectionString: database.url, max: 8 })
        // Dropping the database ends a connection a late NOTIFY still holds: not an outcome of the bench.
        p.on('error', () => undefined)
        cleanup.unshift(() => p.end())
        return p
      }
      const baseline = pool()
      const on = await createNodePostgresStore({ pool: pool(), groupCommit: true })
      const off = await createNodePostgresStore({ pool: pool(), groupCommit: false })
      cleanup.unshift(
        () => on.close(),
        () => off.close(),
      )
      await on.migrate()
      engineOn = new UserEngine({ store: on, keyring })
      const engineOff = new UserEngine({ store: off, keyring })
      const tx = async (fn: (q: Query) => Promise<void>) => {
        const client = await baseline.connect()
        try {
          await client.query('BEGIN')
          await fn((sql, p) => client.query(sql, p))
          await client.query('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined)
          throw error
        } finally {
          client.release()
        }
      }
      subjectsFor = (tenantId) => ({
        'hand-written transaction': () => handWritten(tx, tenantId, email()),
        'one-row insert': () =>
          baseline.query(INSERT_AUDIT, [tenantId, newId('aud'), 'bench.one_row', null, '{}']),
        'group commit on': () => engineOn.registerUser(tenantId, { email: email() }),
        'group commit off': () => engineOff.registerUser(tenantId, { email: email() }),
      })
    }
    const tenant = await engineOn.createTenant('bench')
    const subjects = subjectsFor(tenant.id)
    for (const c of options.concurrencies) {
      const load = () => loadavg()[0]!.toFixed(2)
      options.log(`bench: ${options.target} group commit, ${c} caller(s), load average ${load()}`)
      figures.push({
        target: options.target,
        callers: c,
        subjects: await measure(subjects, c, options.durationMs, options.rounds),
      })
      options.log(`bench: ${options.target} group commit, ${c} caller(s) done, load average ${load()}`)
    }
  } finally {
    for (const f of cleanup) await f().catch(() => undefined)
  }
  return { results: figures.flatMap(toResults), figures }
}

/** p50/p99 per subject, and group commit on against off (ratios: lower latency is better). */
export function formatCommitFigures(figures: readonly CommitFigures[]): string {
  const lines = ['target    callers  subject                    ops/s     p50 ms   p99 ms']
  for (const f of figures) {
    for (const [name, s] of Object.entries(f.subjects)) {
      lines.push(
        `${f.target.padEnd(9)} ${String(f.callers).padStart(7)}  ${name.padEnd(25)} ${String(Math.round(s.opsPerSec)).padStart(6)}  ${s.p50Ms.toFixed(2).padStart(8)} ${s.p99Ms.toFixed(2).padStart(8)}`,
      )
    }
    const on = f.subjects['group commit on']
    const off = f.subjects['group commit off']
    if (on && off) {
      lines.push(
        `${''.padEnd(18)}  on/off: ops ${ratio(on.opsPerSec, off.opsPerSec).toFixed(2)}, p50 ${ratio(on.p50Ms, off.p50Ms).toFixed(2)}, p99 ${ratio(on.p99Ms, off.p99Ms).toFixed(2)}`,
      )
    }
  }
  return lines.join('\n')
}
