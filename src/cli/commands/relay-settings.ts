// The relay command's flags: each also an environment variable (USER_ENGINE_RELAY_<FLAG>), parsed and
// checked into RelayOptions before anything connects.

import type { CommandContext } from '../shared/command.js'
import { UsageError } from '../shared/usage-error.js'

type Kind = 'string' | 'count' | 'duration' | 'boolean' | 'choice'

interface RelayFlag {
  readonly kind: Kind
  /** What it sets, for --help and docs/outbox.md. */
  readonly help: string
  readonly choices?: readonly string[]
  /** Bounds of a count or duration (ms). */
  readonly min?: number
  readonly max?: number
}

const DAY_MS = 86_400_000

/**
 * Every relay setting, as a flag and as an environment variable (`USER_ENGINE_RELAY_` + the flag in upper
 * snake case: `--batch-size` is `USER_ENGINE_RELAY_BATCH_SIZE`). A flag wins over its variable. Durations
 * take milliseconds or a unit: `500ms`, `30s`, `5m`, `2h`, `7d`.
 */
export const RELAY_FLAGS: Readonly<Record<string, RelayFlag>> = {
  nats: {
    kind: 'string',
    help: 'NATS server URL(s), comma-separated; credentials as nats://user:pass@host or nats://token@host (required)',
  },
  stream: { kind: 'string', help: 'JetStream stream (default USER_ENGINE)' },
  'subject-prefix': { kind: 'string', help: 'first subject token(s) (default user-engine)' },
  replicas: {
    kind: 'count',
    min: 1,
    max: 5,
    help: 'stream replicas, on create or update (default 1 on create)',
  },
  'duplicate-window': {
    kind: 'duration',
    min: 100,
    max: 7 * DAY_MS,
    help: "stream's duplicate window, on create or update (default 2m on create)",
  },
  'publish-timeout': { kind: 'duration', min: 1, max: 600_000, help: 'wait for one broker ack (default 5s)' },
  owner: { kind: 'string', help: 'lease owner id, unique per relay (default random)' },
  'batch-size': { kind: 'count', min: 1, max: 10_000, help: 'events held at once (default 500)' },
  'per-aggregate': {
    kind: 'count',
    min: 1,
    max: 10_000,
    help: "one aggregate's events per claim (default 100)",
  },
  'publish-concurrency': { kind: 'count', min: 1, max: 10_000, help: 'publishes in flight (default 32)' },
  lease: { kind: 'duration', min: 1, max: 2_147_483_647, help: 'claim lease (default 30s)' },
  'max-attempts': { kind: 'count', min: 1, max: 1_000_000, help: 'failed attempts before dead (default 10)' },
  'backoff-base': {
    kind: 'duration',
    min: 0,
    max: DAY_MS,
    help: 'delay after the first failure (default 500ms)',
  },
  'backoff-max': {
    kind: 'duration',
    min: 0,
    max: DAY_MS,
    help: 'cap on the failure delay (default 60s, or --backoff-base when higher)',
  },
  'broker-retry-base': {
    kind: 'duration',
    min: 0,
    max: DAY_MS,
    help: 'first pause while the broker is unreachable (default 250ms)',
  },
  'broker-retry-max': {
    kind: 'duration',
    min: 0,
    max: DAY_MS,
    help: 'longest pause while the broker is unreachable (default 5s, or --broker-retry-base when higher)',
  },
  'poll-interval': { kind: 'duration', min: 1, max: DAY_MS, help: 'poll when idle (default 1s)' },
  wake: {
    kind: 'choice',
    choices: ['notify', 'poll'],
    help: 'notify: LISTEN for commits, poll as fallback; poll: poll only (default notify)',
  },
  retention: {
    kind: 'duration',
    min: 0,
    max: 3650 * DAY_MS,
    help: 'purge published events older than this; 0 purges them once published (default: keep them)',
  },
  'purge-batch-size': {
    kind: 'count',
    min: 1,
    max: 100_000,
    help: 'rows per purge statement (default 1000)',
  },
  'purge-interval': { kind: 'duration', min: 1, max: DAY_MS, help: 'how often to purge (default 1m)' },
  'progress-interval': { kind: 'duration', min: 1, max: DAY_MS, help: 'progress line period (default 10s)' },
  'idle-progress-interval': {
    kind: 'duration',
    min: 1,
    max: DAY_MS,
    help: 'while nothing changes, one progress line per (default 5m)',
  },
  'log-format': {
    kind: 'choice',
    choices: ['text', 'json'],
    help: 'stderr lines (default text; json with --json)',
  },
  once: { kind: 'boolean', help: 'drain what is claimable now, then exit' },
}

/** The parseArgs option spec of the relay command. */
export const RELAY_OPTIONS: Record<string, { type: 'string' | 'boolean' }> = Object.fromEntries(
  Object.entries(RELAY_FLAGS).map(([name, f]) => [
    name,
    { type: f.kind === 'boolean' ? 'boolean' : 'string' },
  ]),
)

export const relayEnvName = (flag: string) => `USER_ENGINE_RELAY_${flag.toUpperCase().replace(/-/g, '_')}`

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS }

/** Resolves the relay settings from flags, then the environment; a malformed value is a usage error. */
export function relaySettings(
  flags: CommandContext['flags'],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Readonly<Record<string, string | number | boolean>> {
  const out: Record<string, string | number | boolean> = {}
  for (const [name, f] of Object.entries(RELAY_FLAGS)) {
    const flag = flags[name]
    const fromEnv = env[relayEnvName(name)]
    const source = flag !== undefined ? `--${name}` : relayEnvName(name)
    const raw = flag !== undefined ? flag : fromEnv === '' ? undefined : fromEnv
    if (raw === undefined || raw === false) continue
    if (f.kind === 'boolean') {
      if (raw === true || raw === 'true' || raw === '1') out[name] = true
      else if (raw !== 'false' && raw !== '0') throw new UsageError(`${source} must be true or false`)
      continue
    }
    if (typeof raw !== 'string') throw new UsageError(`${source} takes a value`)
    if (f.kind === 'string') {
      if (raw.trim() === '') throw new UsageError(`${source} is empty`)
      out[name] = raw
    } else if (f.kind === 'choice') {
      if (!f.choices?.includes(raw)) throw new UsageError(`${source} must be one of ${f.choices?.join(', ')}`)
      out[name] = raw
    } else {
      const m = f.kind === 'duration' ? /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim()) : /^(\d+)$/.exec(raw.trim())
      const value = m ? Number(m[1]) * (UNITS[m[2] ?? 'ms'] ?? 1) : Number.NaN
      if (
        !Number.isSafeInteger(value) ||
        value < (f.min ?? 0) ||
        value > (f.max ?? Number.MAX_SAFE_INTEGER)
      ) {
        const unit = f.kind === 'duration' ? ' ms (or 500ms, 30s, 5m, 2h, 7d)' : ''
        throw new UsageError(`${source} must be an integer from ${f.min ?? 0} to ${f.max}${unit}`)
      }
      out[name] = value
    }
  }
  // A base above its cap is the operator's contradiction (exit 2); a base alone above the default cap
  // raises the cap to it, so `--backoff-base 2m` means what it says.
  for (const [base, max, defaultMax] of [
    ['backoff-base', 'backoff-max', 60_000],
    ['broker-retry-base', 'broker-retry-max', 5000],
  ] as const) {
    const b = out[base]
    if (typeof b !== 'number') continue
    if (typeof out[max] === 'number' && b > (out[max] as number)) {
      throw new UsageError(`--${base} must not exceed --${max}`)
    }
    if (out[max] === undefined && b > defaultMax) out[max] = b
  }
  return out
}
