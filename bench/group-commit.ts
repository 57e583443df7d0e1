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
const SQL_COMMIT = 'SELECT user_engine_commit($1, $2::jsonb, $3::jsonb, $4::jsonb, $5::timestamptz)'
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

/** A registration as registerUser's commit plan sends it in a batch: user, email, profile, audit, event. */
function registrationUnit(tenantId: string, value: string) {
  const userId = newId('usr')
  return {
    tenantId,
    now: new Date().toISOString(),
    writes: [
      { op: 'insert', type: 'user', id: userId, userId, payload: { status: 'active' } },
      {
        op: 'insert',
        type: 'identifier',
        id: newId('idn'),
        userId,
        payload: { kind: 'email', value, verified: false },
      },
      { op: 'insert', type: 'profile', id: userId, userId, payload: { attributes: {} } },
    ],
    audit: [
      {
        id: newId('aud'),
        action: 'user.registered',
        userId,
        actorId: null,
        requestId: null,
        ip: null,
        userAgent: null,
        data: { hasPassword: false },
      },
    ],
    events: [
      {
        id: newId('evt'),
        aggregateType: 'user',
        aggregateId: userId,
        type: 'user.registered',
        payload: { userId },
        sequence: 1,
        position: 0,
      },
    ],
  }
}

/**
 * The batch function alone, one connection, no WAL flush wait (synchronous_commit off): registrations per
 * second inside user_engine_commit_batch at schema 11 (a subtransaction and a statement per record for each
 * unit) and at 12 (set-based), batches of 8 and 32, alternating. Server work per unit, not what a caller sees.
 */
async function runBatchFunctionBench(
  options: CommitBenchOptions,
  email: () => string,
): Promise<BenchResult[]> {
  const results: BenchResult[] = []
  const subjects: Array<{ name: string; client: pg.Client; tenantId: string; drop: () => Promise<void> }> = []
  try {
    for (const version of [11, 12]) {
      const database = await createTestDatabase('ue_bench_gcfn', version)
      const client = new pg.Client({ connectionString: database.url })
      client.on('error', () => undefined)
      await client.connect()
      subjects.push({ name: `schema ${version}`, client, tenantId: newId('tnt'), drop: database.drop })
      const s = subjects.at(-1)!
      await client.query('SET synchronous_commit = off')
      await client.query(SQL_COMMIT, [
        s.tenantId,
        JSON.stringify([
          {
            op: 'insert',
            type: 'tenant',
            id: s.tenantId,
            userId: null,
            payload: { name: 'bench', status: 'active' },
          },
        ]),
        '[]',
        '[]',
        new Date().toISOString(),
      ])
    }
    for (const size of [8, 32]) {
      const rates: Record<string, number[]> = Object.fromEntries(subjects.map((s) => [s.name, []]))
      for (let round = 0; round <= options.rounds; round++) {
        for (const s of subjects) {
          let units = 0
          const started = performance.now()
          while (performance.now() - started < options.durationMs / 2) {
            const batch = Array.from({ length: size }, () => registrationUnit(s.tenantId, email()))
            const { rows } = await s.client.query(
              'SELECT unit_index FROM user_engine_commit_batch($1::jsonb)',
              [JSON.stringify(batch)],
            )
            if (rows.length > 0) throw new Error('a registration in the batch failed')
            units += size
          }
          // Round 0 warms both (plans, caches) and is not counted.
          if (round > 0) rates[s.name]!.push(units / ((performance.now() - started) / 1000))
        }
      }
      const [before, after] = subjects.map((s) => median(rates[s.name]!)) as [number, number]
      options.log(
        `bench: batch function alone, batches of ${size}: schema 11 ${Math.round(before)}/s, 12 ${Math.round(after)}/s`,
      )
      results.push({
        name: `postgres batch function alone (set-based, 12) vs unit by unit (11), batches of ${size}`,
        opsPerSec: Math.round(after),
        baselineOpsPerSec: Math.round(before),
        ratio: ratio(after, before),
      })
    }
  } finally {
    for (const s of subjects) {
      await s.client.end().catch(() => undefined)
      await s.drop().catch(() => undefined)
    }
  }
  return results
}

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
  const results = figures.flatMap(toResults)
  if (options.target === 'postgres') results.push(...(await runBatchFunctionBench(options, email)))
  return { results, figures }
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
