import { withDeadline } from '../../domain/deadline.js'
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
import { untilSignal } from '../shared/flags.js'
import { redactUrl } from '../shared/open-store.js'
import { UsageError } from '../shared/usage-error.js'
import { relayEnvName, relaySettings } from './relay-settings.js'

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
 * could not read is a usage error (exit 2) naming it redacted, as are a malformed stream name or subject prefix.
 */
function natsPublisher(
  Publisher: typeof JetStreamPublisher,
  options: JetStreamPublisherOptions & { servers: string[] },
  source: string,
): JetStreamPublisher {
  try {
    return new Publisher(options)
  } catch (error) {
    if (!(error instanceof UserEngineError) || error.code !== 'VALIDATION') throw error
    if (error.details.field === 'stream') throw new UsageError(`--stream: ${error.message}`)
    if (error.details.field === 'subjectPrefix') throw new UsageError(`--subject-prefix: ${error.message}`)
    if (error.details.field !== 'servers') throw error
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

const FINAL_PROGRESS_MS = 2000

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
    // Bounded: a database that stopped answering would hold the exit for a connect timeout (10 s) or more.
    const progress = await withDeadline(
      relay.progress(),
      FINAL_PROGRESS_MS,
      () => new Error(`no answer within ${FINAL_PROGRESS_MS} ms`),
    )
    return { progress, stale: false }
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
  try {
    return await untilSignal(async (signal) => {
      if (s.once) {
        // One-shot: a broker that cannot be reached fails it (exit 1) instead of waiting.
        await publisher.connect()
        return await drainOnce(relay, store, signal, out, logger)
      }
      const since = Date.now()
      if (!(await connectWhenReachable(publisher, signal, resolveRelayOptions(relayOptions), logger))) {
        const waitedMs = Date.now() - since
        logger.log('info', `relay: ${String(signal.reason)}: stopped while waiting for the broker`, {
          signal: String(signal.reason),
          waitedMs,
        })
        out.result(
          { owner: relay.owner, published: 0, broker: 'down', waitedMs, stoppedWaitingForBroker: true },
          `relay: stopped while waiting for the broker (${Math.round(waitedMs / 1000)} s): published 0`,
        )
        return ExitCode.OK
      }
      relay.start()
      await aborted(signal)
      logger.log('info', `relay: ${String(signal.reason)}: finishing the batch in flight`, {
        signal: String(signal.reason),
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
    })
  } finally {
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
