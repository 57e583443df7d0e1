import pg from 'pg'

/** One measured figure: the subject's throughput next to its baseline's, measured in the same run. */
export interface BenchResult {
  readonly name: string
  readonly opsPerSec: number
  readonly baselineOpsPerSec: number
  readonly ratio: number
}

/** Runs `op` from `concurrency` workers for `durationMs`; returns operations per second. */
export async function throughput(
  op: (i: number) => Promise<unknown>,
  concurrency: number,
  durationMs: number,
): Promise<number> {
  let count = 0
  const started = performance.now()
  const deadline = started + durationMs
  const worker = async () => {
    while (performance.now() < deadline) {
      await op(count++)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return count / ((performance.now() - started) / 1000)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/**
 * Alternates baseline and subject for `rounds` rounds (so drift in machine load hits both alike) and
 * compares the medians. Timings here are noisy; the ratio is the figure, never a bare time.
 */
export async function compare(
  name: string,
  subject: (i: number) => Promise<unknown>,
  baseline: (i: number) => Promise<unknown>,
  options: { concurrency: number; durationMs: number; rounds: number },
): Promise<BenchResult> {
  const s: number[] = []
  const b: number[] = []
  // Warm both paths (JIT, connections, plans) before measuring.
  await throughput(baseline, options.concurrency, Math.min(300, options.durationMs))
  await throughput(subject, options.concurrency, Math.min(300, options.durationMs))
  for (let r = 0; r < options.rounds; r++) {
    b.push(await throughput(baseline, options.concurrency, options.durationMs))
    s.push(await throughput(subject, options.concurrency, options.durationMs))
  }
  const opsPerSec = Math.round(median(s))
  const baselineOpsPerSec = Math.round(median(b))
  return {
    name,
    opsPerSec,
    baselineOpsPerSec,
    ratio: Math.round((opsPerSec / baselineOpsPerSec) * 100) / 100,
  }
}

export function formatResults(results: readonly BenchResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length))
  return results
    .map(
      (r) =>
        `${r.name.padEnd(width)}  ${String(r.opsPerSec).padStart(7)} ops/s  baseline ${String(r.baselineOpsPerSec).padStart(7)} ops/s  ratio ${r.ratio.toFixed(2)}`,
    )
    .join('\n')
}

const poolClients = new WeakMap<pg.Pool, Set<pg.PoolClient>>()

/**
 * A pool for a bench on a database the bench drops afterwards. An idle connection that fails emits 'error' on
 * the pool, which would crash the process unhandled; `endPool` waits for every connection to close.
 */
export function benchPool(connectionString: string, max: number, settings: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ ...settings, connectionString, max })
  pool.on('error', () => {})
  const clients = new Set<pg.PoolClient>()
  pool.on('connect', (client) => {
    clients.add(client)
    client.once('end', () => clients.delete(client))
  })
  poolClients.set(pool, clients)
  return pool
}

/**
 * Ends a pool from `benchPool` and resolves once each of its connections has closed: `pool.end()` resolves
 * while they are still closing, and a `DROP DATABASE ... WITH (FORCE)` then terminates them (57P01).
 */
export async function endPool(pool: pg.Pool): Promise<void> {
  const clients = [...(poolClients.get(pool) ?? [])]
  const closed = clients.map((c) => new Promise((resolve) => c.once('end', resolve)))
  await pool.end()
  // Bounded, so a connection that never reports its end cannot hang the bench.
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise((resolve) => {
    timer = setTimeout(resolve, 10_000)
  })
  await Promise.race([Promise.all(closed), limit])
  clearTimeout(timer)
}
