import { ErrorCode, UserEngineError } from '../../domain/errors.js'
import { type Logger, lineLogger } from '../../domain/logger.js'
import { describeError } from '../../outbox/describe-error.js'
import type { JetStreamPublisher, JetStreamPublisherOptions } from '../../outbox/nats/jetstream-publisher.js'
import { isBrokerUnreachable } from '../../outbox/publisher.js'
import { OutboxRelay } from '../../outbox/relay.js'
import {
  type DrainResult,
  type RelayOptions,
  type RelayProgress,
  type ResolvedRelayOptions,
  resolveRelayOptions,
} from '../../outbox/relay-options.js'
import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { redactUrl } from '../shared/open-store.js'
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

const progressText = (p: RelayProgress) =>
  `relay: published ${p.published}, retried ${p.retried}, dead ${p.dead}, lost leases ${p.lostLeases}, ` +
  `pending ${p.pending}, oldest pending ${p.oldestPendingAgeMs} ms` +
  (p.broker === 'down' ? `, broker unreachable for ${Math.round(p.brokerDownMs / 1000)} s` : '')

const progressFields = (p: RelayProgress) => ({
  published: p.published,
  retried: p.retried,
  dead: p.dead,
  lostLeases: p.lostLeases,
  released: p.released,
  purged: p.purged,
  pending: p.pending,
  deadInOutbox: p.deadInOutbox,
  oldestPendingAgeMs: p.oldestPendingAgeMs,
  broker: p.broker,
  brokerDownMs: p.brokerDownMs,
  held: p.held,
})

/** What makes a progress line news: any counter, the backlog, the dead count or the broker's state. */
const fingerprint = (p: RelayProgress) =>
  [
    p.published,
    p.retried,
    p.dead,
    p.lostLeases,
    p.released,
    p.purged,
    p.pending,
    p.deadInOutbox,
    p.broker,
  ].join()

/** SIGINT or SIGTERM as an abort whose reason is the signal's name; a second signal ends the process as usual. */
function stopSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController()
  const on = (name: NodeJS.Signals) => () => {
    dispose()
    controller.abort(name)
  }
  const onInt = on('SIGINT')
  const onTerm = on('SIGTERM')
  const dispose = () => {
    process.off('SIGINT', onInt)
    process.off('SIGTERM', onTerm)
  }
  process.on('SIGINT', onInt)
  process.on('SIGTERM', onTerm)
  return { signal: controller.signal, dispose }
}

/** Resolves true when `signal` aborts, false after `ms` (never, without `ms`). */
function aborted(signal: AbortSignal, ms?: number): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = ms === undefined ? undefined : setTimeout(() => finish(false), ms)
    const finish = (value: boolean) => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(value)
    }
    const onAbort = () => finish(true)
    signal.addEventListener('abort', onAbort)
  })
}

/**
 * The publisher for `--nats`: credentials in the URLs become the connection's, and a URL the NATS client
 * could not read is a usage error (exit 2) naming it redacted.
 */
function natsPublisher(
  Publisher: typeof JetStreamPublisher,
  options: JetStreamPublisherOptions & { servers: string[] },
  source: string,
): JetStreamPublisher {
  try {
    return new Publisher(options)
  } catch (error) {
    if (!(error instanceof UserEngineError) || error.details.field !== 'servers') throw error
    const index = error.details.index
    const server = typeof index === 'number' ? options.servers[index] : undefined
    throw new UsageError(
      server === undefined
        ? `${source}: ${error.message}`
        : `${source}: ${redactUrl(server) || 'an empty entry'} is not a NATS server URL ([nats://][user:pass@ or token@]host[:port], percent-encoded)`,
    )
  }
}

/**
 * Connects to NATS, waiting out a broker that cannot be reached as a running relay waits out an outage (a
 * pause doubling over brokerRetry, logged when it starts and once per progress interval): a relay started
 * before NATS, or during its outage, must not crash-loop. Any other failure (credentials refused, a stream
 * that cannot be prepared) throws. Resolves false when a signal came first.
 */
async function connectWhenReachable(
  publisher: JetStreamPublisher,
  signal: AbortSignal,
  { brokerRetry, progressIntervalMs }: Pick<ResolvedRelayOptions, 'brokerRetry' | 'progressIntervalMs'>,
  logger: Logger,
): Promise<boolean> {
  const since = Date.now()
  let pauseMs = brokerRetry.baseMs
  let loggedAt: number | undefined
  // A connect that hangs (a host that drops packets) ends with the client's timeout, or with a signal.
  const stopped = aborted(signal).then(() => false)
  for (;;) {
    try {
      if (!(await Promise.race([publisher.connect().then(() => true), stopped]))) return false
      if (loggedAt !== undefined) {
        logger.log('info', 'relay: broker reachable: starting', { waitedMs: Date.now() - since })
      }
      return true
    } catch (error) {
      if (!isBrokerUnreachable(error)) throw error
      const now = Date.now()
      if (loggedAt === undefined || now - loggedAt >= progressIntervalMs) {
        loggedAt = now
        logger.log('warn', 'relay: waiting for the broker: NATS unreachable at start-up; retrying', {
          waitedMs: now - since,
          retryInMs: pauseMs,
          error: describeError(error),
        })
      }
      if (await aborted(signal, pauseMs)) return false
      pauseMs = Math.min(brokerRetry.maxMs, Math.max(1, pauseMs * 2))
    }
  }
}

/**
 * The relay's progress once it stopped. The store may be what failed (a stop during a database outage): then
 * the last progress reported stands in, and the failure is logged, not thrown; the stop itself was clean.
 */
async function finalProgress(
  relay: OutboxRelay,
  lastReported: RelayProgress | null,
  logger: Logger,
): Promise<{ progress: RelayProgress | null; stale: boolean }> {
  try {
    return { progress: await relay.progress(), stale: false }
  } catch (error) {
    logger.log('warn', 'relay: the final progress report failed; the summary is the last one reported', {
      error: describeError(error),
    })
    return { progress: lastReported, stale: true }
  }
}

/**
 * Publishes committed outbox events to NATS JetStream until SIGINT/SIGTERM (then finishes the publishes in
 * flight and releases what it has not published), or drains once with --once (a signal ends the drain the
 * same way). While NATS cannot be reached at start-up the relay waits for it (--once fails instead). Progress,
 * outages and errors go to stderr as text or JSON lines with a timestamp and level; the final summary to
 * stdout.
 */
export async function relayCommand({ store, flags, out, env }: CommandContext): Promise<ExitCode> {
  const s = relaySettings(flags, env)
  const nats = s.nats
  if (typeof nats !== 'string') throw new UsageError(`relay needs --nats URL (or ${relayEnvName('nats')})`)
  const format = (s['log-format'] as 'text' | 'json' | undefined) ?? (out.json ? 'json' : 'text')
  // Through the command's stderr (the process's, or a test's), one line at a time.
  const logger: Logger = lineLogger(format, (line) => out.progress(line.replace(/\n$/, '')))
  const num = (name: string) => (typeof s[name] === 'number' ? (s[name] as number) : undefined)
  const str = (name: string) => (typeof s[name] === 'string' ? (s[name] as string) : undefined)
  const defined = <T extends object>(o: T): T =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
  const stream = str('stream')
  // Loaded here, so only the relay command needs the NATS client installed. Built before anything else is
  // asked of the store: a malformed --nats is a usage error whatever the schema's state.
  const { JetStreamPublisher } = await import('../../outbox/nats/index.js')
  const publisher = natsPublisher(
    JetStreamPublisher,
    defined({
      servers: nats.split(',').map((u) => u.trim()),
      stream,
      subjectPrefix: str('subject-prefix'),
      replicas: num('replicas'),
      duplicateWindowMs: num('duplicate-window'),
      timeoutMs: num('publish-timeout'),
    }),
    flags.nats !== undefined ? '--nats' : relayEnvName('nats'),
  )
  if (!(await store.readiness()).ready) {
    // Typed, so --json prints it as every other command does ({"error":{"code":"SCHEMA_NOT_READY",...}}).
    throw new UserEngineError(
      ErrorCode.SCHEMA_NOT_READY,
      'the schema is not migrated; run: user-engine migrate',
      {
        details: {},
      },
    )
  }
  logger.log('info', `relay: ${store.kind} store -> ${redactUrl(nats)} stream ${stream ?? 'USER_ENGINE'}`, {
    store: store.kind,
    nats: redactUrl(nats),
    stream: stream ?? 'USER_ENGINE',
  })
  const backoff = defined({ baseMs: num('backoff-base'), maxMs: num('backoff-max') })
  const brokerRetry = defined({ baseMs: num('broker-retry-base'), maxMs: num('broker-retry-max') })
  const idleEvery = num('idle-progress-interval') ?? 300_000
  let lastLine = ''
  let lastAt = 0
  let lastReported: RelayProgress | null = null
  const relayOptions: RelayOptions = defined({
    outbox: store.outbox,
    publisher,
    owner: str('owner'),
    batchSize: num('batch-size'),
    perAggregate: num('per-aggregate'),
    publishConcurrency: num('publish-concurrency'),
    leaseMs: num('lease'),
    maxAttempts: num('max-attempts'),
    pollIntervalMs: num('poll-interval'),
    retentionMs: num('retention'),
    purgeBatchSize: num('purge-batch-size'),
    purgeIntervalMs: num('purge-interval'),
    progressIntervalMs: num('progress-interval') ?? 10_000,
    wakeOnCommit: s.wake !== 'poll',
    ...(Object.keys(backoff).length > 0 ? { backoff } : {}),
    ...(Object.keys(brokerRetry).length > 0 ? { brokerRetry } : {}),
    logger,
    // Errors are logged by the relay itself, with their context.
    onError: () => {},
    onProgress: (p: RelayProgress) => {
      lastReported = p
      // Idle progress is news only now and then: nothing changed since the last line.
      const now = Date.now()
      const f = fingerprint(p)
      if (f === lastLine && now - lastAt < idleEvery) return
      lastLine = f
      lastAt = now
      logger.log(p.broker === 'down' ? 'warn' : 'info', progressText(p), progressFields(p))
    },
  })
  // The relay owns the publisher: relay.close() disconnects it, whatever path ends the command.
  const relay = new OutboxRelay(relayOptions)
  const stop = stopSignals()
  try {
    if (s.once) {
      // One-shot: a broker that cannot be reached fails it (exit 1) instead of waiting.
      await publisher.connect()
      return await drainOnce(relay, store, stop.signal, out, logger)
    }
    const since = Date.now()
    if (!(await connectWhenReachable(publisher, stop.signal, resolveRelayOptions(relayOptions), logger))) {
      const waitedMs = Date.now() - since
      logger.log('info', `relay: ${String(stop.signal.reason)}: stopped while waiting for the broker`, {
        signal: String(stop.signal.reason),
        waitedMs,
      })
      out.result(
        { owner: relay.owner, published: 0, broker: 'down', waitedMs, stoppedWaitingForBroker: true },
        `relay: stopped while waiting for the broker (${Math.round(waitedMs / 1000)} s): published 0`,
      )
      return ExitCode.OK
    }
    relay.start()
    await aborted(stop.signal)
    logger.log('info', `relay: ${String(stop.signal.reason)}: finishing the batch in flight`, {
      signal: String(stop.signal.reason),
    })
    await relay.stop()
    const { progress: p, stale } = await finalProgress(relay, lastReported, logger)
    if (p === null) {
      out.result(
        { owner: relay.owner, stale: true },
        'relay: stopped; no progress to report (the store could not be reached)',
      )
    } else {
      if (!stale) logger.log('info', progressText(p), progressFields(p))
      out.result(
        stale ? { ...p, stale: true } : p,
        `${progressText(p)}${stale ? ' (the last report: the final one failed)' : ''}`,
      )
    }
    return ExitCode.OK
  } finally {
    stop.dispose()
    await relay.close()
  }
}

/** `--once`: drains what is claimable now; a signal ends the drain early, releasing what is unpublished. */
async function drainOnce(
  relay: OutboxRelay,
  store: CommandContext['store'],
  signal: AbortSignal,
  out: CommandContext['out'],
  logger: Logger,
): Promise<ExitCode> {
  const stopEarly = () => {
    logger.log('info', `relay: ${String(signal.reason)}: finishing the publishes in flight`, {
      signal: String(signal.reason),
    })
    void relay.stop()
  }
  let result: DrainResult = { published: 0, retried: 0, dead: 0, lostLeases: 0, released: 0 }
  // A signal while connecting ends the drain before it starts.
  if (!signal.aborted) {
    signal.addEventListener('abort', stopEarly)
    try {
      result = await relay.drainOnce()
    } finally {
      signal.removeEventListener('abort', stopEarly)
    }
  }
  const early = signal.aborted
  const lag = await store.outbox.lag().catch((error: unknown) => {
    // What the drain did is settled already; only the summary's backlog figures are missing.
    logger.log('warn', 'relay: the final lag query failed', { error: describeError(error) })
    return null
  })
  out.result(
    {
      ...result,
      pending: lag?.pending ?? null,
      deadInOutbox: lag?.dead ?? null,
      oldestPendingAgeMs: lag?.oldestPendingAgeMs ?? null,
      stoppedEarly: early,
    },
    `relay: ${early ? 'stopped early by a signal' : 'drained once'}: published ${result.published}, retried ${result.retried}, dead ${result.dead}, ` +
      (lag === null
        ? 'backlog unknown (the store could not be reached)'
        : `${lag.pending} still pending, ${lag.dead} dead in outbox`),
  )
  return ExitCode.OK
}
