/**
 * Delay before attempt `failures + 1`: exponential (`baseMs * 2^(failures-1)`, capped at `maxMs`) with "equal
 * jitter" (half fixed, half random), so relays that failed together do not retry in lockstep, while the delay
 * still grows.
 */
export function backoffDelay(
  failures: number,
  options: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const exp = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, failures - 1))
  return Math.round(exp / 2 + random() * (exp / 2))
}
