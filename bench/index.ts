// npm run bench [-- --json] [--duration MS] [--rounds N] [--only store|pglite|commit|relay|reads|sessions]
//   [--reads-users N] [--sessions N,N]
// Prints throughput ratios against baselines measured in the same run. Not a test: nothing here passes or fails.
// `reads` seeds a tenant of 1 000 000 users (--reads-users) on the server first, and `sessions` fills the table to
// 1 000 000 sessions (--sessions), so they run only when asked for.
import { parseArgs } from 'node:util'
import { natsSkip, postgresSkip } from '../test/support/services.js'
import { type BenchResult, formatResults } from './measure.js'
import { runStoreBench } from './store-bench.js'

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    duration: { type: 'string', default: '1500' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' },
    // Session table sizes for the sessions bench (the server); PGlite measures the first only.
    sessions: { type: 'string', default: '10000,1000000' },
    'reads-users': { type: 'string', default: '1000000' },
  },
})
const durationMs = Number(values.duration)
const rounds = Number(values.rounds)
const log = (line: string) => process.stderr.write(`${line}\n`)
const wants = (part: string) => values.only === undefined || values.only === part
const results: BenchResult[] = []
const skipped: string[] = []
const latencies: unknown[] = []

if (wants('store')) {
  const reason = await postgresSkip()
  if (reason) skipped.push(reason)
  else
    results.push(
      ...(await runStoreBench({ target: 'postgres', durationMs, rounds, concurrencies: [1, 8], log })),
      ...(await runStoreBench({ target: 'postgres-async', durationMs, rounds, concurrencies: [1, 8], log })),
      ...(await runStoreBench({
        target: 'postgres-unprepared',
        durationMs,
        rounds,
        concurrencies: [1, 8],
        log,
      })),
    )
}
if (wants('pglite')) {
  results.push(...(await runStoreBench({ target: 'pglite', durationMs, rounds, concurrencies: [1, 8], log })))
}
if (wants('commit')) {
  const { formatCommitFigures, runGroupCommitBench } = await import('./group-commit.js')
  const reason = await postgresSkip()
  const targets = reason ? (['pglite'] as const) : (['postgres', 'pglite'] as const)
  if (reason) skipped.push(reason)
  for (const target of targets) {
    const gc = await runGroupCommitBench({ target, durationMs, rounds, concurrencies: [1, 8, 32], log })
    results.push(...gc.results)
    latencies.push(...gc.figures)
    log(formatCommitFigures(gc.figures))
  }
}
if (values.only === 'sessions') {
  const { runSessionBench } = await import('./sessions.js')
  const sizes = String(values.sessions)
    .split(',')
    .map(Number)
    .filter((n) => Number.isSafeInteger(n) && n > 0)
  const reason = await postgresSkip()
  if (reason) skipped.push(reason)
  else {
    results.push(
      ...(await runSessionBench({
        target: 'postgres',
        sizes,
        durationMs,
        rounds,
        concurrencies: [1, 8],
        log,
      })),
    )
  }
  results.push(
    ...(await runSessionBench({
      target: 'pglite',
      sizes: sizes.slice(0, 1),
      durationMs,
      rounds,
      concurrencies: [1],
      log,
    })),
  )
}
if (wants('relay')) {
  const reason = (await postgresSkip()) || (await natsSkip())
  if (reason) skipped.push(reason)
  else {
    const { runRelayBench } = await import('./relay.js')
    const relay = await runRelayBench({ log })
    results.push(...relay.results)
    if (relay.latency) latencies.push(relay.latency)
  }
}

if (values.only === 'reads') {
  const reason = await postgresSkip()
  if (reason) skipped.push(reason)
  else {
    const { runReadsBench } = await import('./reads-bench.js')
    results.push(
      ...(await runReadsBench({
        durationMs,
        rounds,
        concurrencies: [1, 8],
        largeUsers: Number(values['reads-users']),
        log,
      })),
    )
  }
}

if (values.json) process.stdout.write(`${JSON.stringify({ results, latencies, skipped }, null, 2)}\n`)
else {
  process.stdout.write(`${formatResults(results)}\n`)
  for (const l of latencies) process.stdout.write(`${JSON.stringify(l)}\n`)
  for (const s of skipped) process.stdout.write(`skipped: ${s}\n`)
}
