import { UsageError } from './usage-error.js'

/** An integer flag from 1 to `max`; undefined when absent. */
export function positiveIntFlag(value: unknown, name: string, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw new UsageError(`${name} must be an integer from 1 to ${max}`)
  return n
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** A duration flag: `500ms`, `30s`, `5m`, `1h` or plain milliseconds; undefined when absent. */
export function durationFlag(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  const match = typeof value === 'string' ? /^(\d+)(ms|s|m|h)?$/.exec(value) : null
  const ms = match ? Number(match[1]) * UNITS[match[2] ?? 'ms']! : Number.NaN
  if (!Number.isSafeInteger(ms) || ms < 10 || ms > 86_400_000) {
    throw new UsageError(`${name} must be a duration from 10ms to 24h (e.g. 30s, 5m)`)
  }
  return ms
}

/**
 * `--query-timeout` (or USER_ENGINE_QUERY_TIMEOUT): a duration, or `off`/`0` for none; undefined when absent
 * (the store's default then applies).
 */
export function queryTimeoutFlag(value: unknown, name: string): number | undefined {
  if (value === 'off' || value === '0') return 0
  return durationFlag(value, name)
}

/**
 * Runs `work` with a signal that SIGINT or SIGTERM aborts, its reason the signal's name (the work then
 * finishes what it has in flight and returns), and removes the handlers afterwards. The first signal removes
 * them, so a second one ends the process as usual.
 */
export async function untilSignal<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController()
  const dispose = () => {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
  const on = (name: NodeJS.Signals) => () => {
    dispose()
    controller.abort(name)
  }
  const onInt = on('SIGINT')
  const onTerm = on('SIGTERM')
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  try {
    return await work(controller.signal)
  } finally {
    dispose()
  }
}
