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
