import { randomBytes } from 'node:crypto'
import { ValidationError } from '../domain/errors.js'
import { type Logger, silentLogger } from '../domain/logger.js'
import { assertId, assertPositiveInt } from '../domain/validation.js'
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

export function resolveRelayOptions(options: RelayOptions): ResolvedRelayOptions {
  const owner = options.owner ?? `relay_${randomBytes(8).toString('hex')}`
  assertId(owner, 'owner')
  const o: ResolvedRelayOptions = {
    outbox: options.outbox,
    publisher: options.publisher,
    owner,
    batchSize: options.batchSize ?? 2000,
    perAggregate: options.perAggregate ?? 100,
    leaseMs: options.leaseMs ?? 30_000,
    maxAttempts: options.maxAttempts ?? 10,
    backoff: { baseMs: options.backoff?.baseMs ?? 500, maxMs: options.backoff?.maxMs ?? 60_000 },
    brokerRetry: { baseMs: options.brokerRetry?.baseMs ?? 250, maxMs: options.brokerRetry?.maxMs ?? 5000 },
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    publishConcurrency: options.publishConcurrency ?? 32,
    retentionMs: options.retentionMs,
    purgeBatchSize: options.purgeBatchSize ?? 1000,
    purgeIntervalMs: options.purgeIntervalMs ?? 60_000,
    progressIntervalMs: options.progressIntervalMs ?? 10_000,
    onProgress: options.onProgress,
    onError: options.onError ?? defaultOnError,
    random: options.random ?? Math.random,
    wakeOnCommit: options.wakeOnCommit ?? true,
    logger: options.logger ?? silentLogger,
    metrics: options.metrics ?? 'auto',
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
  for (const [field, b] of [
    ['backoff', o.backoff],
    ['brokerRetry', o.brokerRetry],
  ] as const) {
    if (!(b.baseMs >= 0) || !(b.maxMs >= b.baseMs) || !Number.isFinite(b.maxMs)) {
      throw new ValidationError(`${field} needs 0 <= baseMs <= maxMs`, { details: { field } })
    }
  }
  if (o.retentionMs !== undefined && !(o.retentionMs >= 0)) {
    throw new ValidationError('retentionMs must be >= 0', { details: { field: 'retentionMs' } })
  }
  return o
}
