import { randomBytes } from 'node:crypto'
import { ValidationError } from '../domain/errors.js'
import { type Logger, silentLogger } from '../domain/logger.js'
import {
  assertFunction,
  assertId,
  assertOptionalBoolean,
  assertPositiveInt,
  optionsObject,
} from '../domain/validation.js'
import { MAX_PURGE_AGE_MS } from '../store/outbox-checks.js'
import type { OutboxAccess } from '../store/store.js'
import { defaultOnError } from './describe-error.js'
import type { MeterLike } from './metrics.js'
import type { Publisher } from './publisher.js'

export interface BackoffOptions {
  /** Delay after the first failure; doubles with every further attempt. Default 500. */
  readonly baseMs?: number
  /** Cap on the delay. Default 60000. */
  readonly maxMs?: number
}

export interface RelayOptions {
  readonly outbox: OutboxAccess
  readonly publisher: Publisher
  /** Lease owner id; unique per relay instance. Default `relay_<random>`. */
  readonly owner?: string
  /** Most events the relay holds at once (claimed, not yet settled); a claim tops it up. Default 2000. */
  readonly batchSize?: number
  /** Most events of one aggregate taken in one claim (its ready prefix). Default 100. */
  readonly perAggregate?: number
  /** How long a claim is held. MUST exceed the time to publish what one claim takes. Default 30000. */
  readonly leaseMs?: number
  /** Failed attempts after which an event is dead and blocks its aggregate. Default 10. */
  readonly maxAttempts?: number
  readonly backoff?: BackoffOptions
  /**
   * Sleep between claims when nothing was claimable (start loop only). With a store that wakes the relay on
   * commit (`outbox.subscribe`), this is only the fallback. Default 1000.
   */
  readonly pollIntervalMs?: number
  /** Publishes in flight at once, each for a different aggregate (one aggregate publishes in order). Default 32. */
  readonly publishConcurrency?: number
  /** Published events older than this are deleted by the start loop; undefined keeps them forever. */
  readonly retentionMs?: number
  /** Rows deleted per purge statement, so a purge never holds a long lock. Default 1000. */
  readonly purgeBatchSize?: number
  /** How often the start loop purges. Default 60000. */
  readonly purgeIntervalMs?: number
  readonly onProgress?: (progress: RelayProgress) => void
  /** How often the start loop reports progress (and refreshes the lag metrics). Default 10000. */
  readonly progressIntervalMs?: number
  /**
   * Errors of the start loop (store unreachable, broker unreachable, a throwing onProgress). The loop keeps
   * running. Default: one line on stderr with the error's name, code and message; never an event payload.
   * A broker outage is reported once when it starts (and logged when it ends), not once per probe.
   */
  readonly onError?: (error: unknown) => void
  /** Source of jitter in [0, 1); injectable for tests. Default Math.random. */
  readonly random?: () => number
  /** Claim at once when the store signals a commit with events (`outbox.subscribe`), besides polling. Default true. */
  readonly wakeOnCommit?: boolean
  /** While the broker is unreachable: the pause before each probe, doubling from baseMs to maxMs. Default 250 / 5000. */
  readonly brokerRetry?: BackoffOptions
  /** Where the relay logs (start, stop, broker outages, store errors). Default: nothing. */
  readonly logger?: Logger
  /**
   * OpenTelemetry metrics (docs/outbox.md lists them): a Meter; 'auto' (default) for `@opentelemetry/api`'s
   * global meter when that optional peer is installed; false for none.
   */
  readonly metrics?: MeterLike | 'auto' | false
}

/** Counts since the relay was created, plus the outbox's current lag. */
export interface RelayProgress {
  readonly owner: string
  /** Events this relay published and acknowledged. */
  readonly published: number
  /** Failed attempts that left the event pending for a later retry. */
  readonly retried: number
  /** Failed attempts that made the event dead. */
  readonly dead: number
  /** Events this relay published or failed after its lease had lapsed: someone else owns them now. */
  readonly lostLeases: number
  /** Claimed events given back unpublished (stop, the lease about to lapse, the broker unreachable). */
  readonly released: number
  /** Published events purged under `retentionMs`. */
  readonly purged: number
  /** Pending events in the whole outbox (all tenants). */
  readonly pending: number
  /** Dead events in the whole outbox, waiting for an operator. */
  readonly deadInOutbox: number
  readonly oldestPendingAgeMs: number
  /** `down` while publishes pause because the broker cannot be reached. */
  readonly broker: 'up' | 'down'
  /** How long the current broker outage has lasted; 0 while the broker is up. */
  readonly brokerDownMs: number
  /** Events this relay holds right now (claimed, not yet settled). */
  readonly held: number
}

export interface DrainResult {
  readonly published: number
  readonly retried: number
  readonly dead: number
  readonly lostLeases: number
  readonly released: number
}

/** Every relay option with its default applied, checked once (VALIDATION) when the relay is built. */
export interface ResolvedRelayOptions {
  readonly outbox: OutboxAccess
  readonly publisher: Publisher
  readonly owner: string
  readonly batchSize: number
  readonly perAggregate: number
  readonly leaseMs: number
  readonly maxAttempts: number
  readonly backoff: { readonly baseMs: number; readonly maxMs: number }
  readonly brokerRetry: { readonly baseMs: number; readonly maxMs: number }
  readonly pollIntervalMs: number
  readonly publishConcurrency: number
  readonly retentionMs: number | undefined
  readonly purgeBatchSize: number
  readonly purgeIntervalMs: number
  readonly progressIntervalMs: number
  readonly onProgress: ((progress: RelayProgress) => void) | undefined
  readonly onError: (error: unknown) => void
  readonly random: () => number
  readonly wakeOnCommit: boolean
  readonly logger: Logger
  readonly metrics: MeterLike | 'auto' | false
}

const RELAY_OPTION_KEYS = [
  'outbox',
  'publisher',
  'owner',
  'batchSize',
  'perAggregate',
  'leaseMs',
  'maxAttempts',
  'backoff',
  'pollIntervalMs',
  'publishConcurrency',
  'retentionMs',
  'purgeBatchSize',
  'purgeIntervalMs',
  'onProgress',
  'progressIntervalMs',
  'onError',
  'random',
  'wakeOnCommit',
  'brokerRetry',
  'logger',
  'metrics',
]

const hasFunctions = (value: unknown, names: readonly string[]): boolean =>
  typeof value === 'object' &&
  value !== null &&
  names.every((n) => typeof (value as Record<string, unknown>)[n] === 'function')

function backoffOptions(value: unknown, field: string, defaults: { baseMs: number; maxMs: number }) {
  const b = optionsObject(value, field, ['baseMs', 'maxMs'])
  const baseMs = b.baseMs ?? defaults.baseMs
  const maxMs = b.maxMs ?? defaults.maxMs
  if (
    typeof baseMs !== 'number' ||
    typeof maxMs !== 'number' ||
    !(baseMs >= 0) ||
    !(maxMs >= baseMs) ||
    !Number.isFinite(maxMs)
  ) {
    throw new ValidationError(`${field} needs 0 <= baseMs <= maxMs`, { details: { field } })
  }
  return { baseMs, maxMs }
}

function optionalFunction<T>(value: unknown, field: string): T | undefined {
  if (value !== undefined) assertFunction(value, field)
  return value as T | undefined
}

/**
 * Every option checked once, when the relay is built: unknown keys, wrong types and out-of-range numbers are
 * VALIDATION here, not a TypeError in the first drain (a publisher without publish() would otherwise fail
 * every event until it is dead).
 */
export function resolveRelayOptions(options: RelayOptions): ResolvedRelayOptions {
  if (options === undefined) {
    throw new ValidationError('OutboxRelay options must be an object', { details: { field: 'options' } })
  }
  const given = optionsObject(options, 'OutboxRelay options', RELAY_OPTION_KEYS)
  if (!hasFunctions(given.outbox, ['claim', 'settle', 'lag'])) {
    throw new ValidationError('outbox must be an OutboxAccess (store.outbox)', {
      details: { field: 'outbox' },
    })
  }
  if (!hasFunctions(given.publisher, ['publish'])) {
    throw new ValidationError('publisher must be an object with a publish(event) method', {
      details: { field: 'publisher' },
    })
  }
  const owner = given.owner ?? `relay_${randomBytes(8).toString('hex')}`
  assertId(owner, 'owner')
  const metrics = given.metrics ?? 'auto'
  if (
    metrics !== 'auto' &&
    metrics !== false &&
    !hasFunctions(metrics, ['createCounter', 'createHistogram'])
  ) {
    throw new ValidationError("metrics must be 'auto', false or an OpenTelemetry Meter", {
      details: { field: 'metrics' },
    })
  }
  const logger = given.logger ?? silentLogger
  if (!hasFunctions(logger, ['log'])) {
    throw new ValidationError('logger must be an object with a log(level, message, fields) method', {
      details: { field: 'logger' },
    })
  }
  assertOptionalBoolean(given.wakeOnCommit, 'wakeOnCommit')
  const retentionMs = given.retentionMs
  if (
    retentionMs !== undefined &&
    (typeof retentionMs !== 'number' || !(retentionMs >= 0 && retentionMs <= MAX_PURGE_AGE_MS))
  ) {
    throw new ValidationError(`retentionMs must be a number of ms from 0 to ${MAX_PURGE_AGE_MS}`, {
      details: { field: 'retentionMs' },
    })
  }
  const o: ResolvedRelayOptions = {
    outbox: given.outbox as OutboxAccess,
    publisher: given.publisher as Publisher,
    owner,
    batchSize: (given.batchSize ?? 2000) as number,
    perAggregate: (given.perAggregate ?? 100) as number,
    leaseMs: (given.leaseMs ?? 30_000) as number,
    maxAttempts: (given.maxAttempts ?? 10) as number,
    backoff: backoffOptions(given.backoff, 'backoff', { baseMs: 500, maxMs: 60_000 }),
    brokerRetry: backoffOptions(given.brokerRetry, 'brokerRetry', { baseMs: 250, maxMs: 5000 }),
    pollIntervalMs: (given.pollIntervalMs ?? 1000) as number,
    publishConcurrency: (given.publishConcurrency ?? 32) as number,
    retentionMs,
    purgeBatchSize: (given.purgeBatchSize ?? 1000) as number,
    purgeIntervalMs: (given.purgeIntervalMs ?? 60_000) as number,
    progressIntervalMs: (given.progressIntervalMs ?? 10_000) as number,
    onProgress: optionalFunction(given.onProgress, 'onProgress'),
    onError: optionalFunction(given.onError, 'onError') ?? defaultOnError,
    random: optionalFunction(given.random, 'random') ?? Math.random,
    wakeOnCommit: (given.wakeOnCommit ?? true) as boolean,
    logger: logger as Logger,
    metrics: metrics as MeterLike | 'auto' | false,
  }
  assertPositiveInt(o.batchSize, 'batchSize', 10_000)
  assertPositiveInt(o.perAggregate, 'perAggregate', 10_000)
  assertPositiveInt(o.leaseMs, 'leaseMs', 2_147_483_647)
  assertPositiveInt(o.maxAttempts, 'maxAttempts', 2_147_483_647)
  assertPositiveInt(o.publishConcurrency, 'publishConcurrency', 10_000)
  assertPositiveInt(o.purgeBatchSize, 'purgeBatchSize', 100_000)
  assertPositiveInt(o.pollIntervalMs, 'pollIntervalMs', 86_400_000)
  assertPositiveInt(o.progressIntervalMs, 'progressIntervalMs', 86_400_000)
  assertPositiveInt(o.purgeIntervalMs, 'purgeIntervalMs', 86_400_000)
  return o
}
