import { randomBytes } from 'node:crypto'
import { ValidationError } from '../domain/errors.js'
import type { OutboxEntry } from '../domain/records.js'
import { assertId, assertPositiveInt } from '../domain/validation.js'
import type { OutboxAccess } from '../store/store.js'
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
  /** Events claimed per round trip. Default 100. */
  readonly batchSize?: number
  /** How long a claim is held. MUST exceed the time to publish one batch. Default 30000. */
  readonly leaseMs?: number
  /** Failed attempts after which an event is dead and blocks its aggregate. Default 10. */
  readonly maxAttempts?: number
  readonly backoff?: BackoffOptions
  /** Sleep between claims when nothing was claimable (start loop only). Default 1000. */
  readonly pollIntervalMs?: number
  /** Publishes in flight at once inside one batch (events of a batch belong to different aggregates). Default 32. */
  readonly publishConcurrency?: number
  /** Published events older than this are deleted by the start loop; undefined keeps them forever. */
  readonly retentionMs?: number
  /** Rows deleted per purge statement, so a purge never holds a long lock. Default 1000. */
  readonly purgeBatchSize?: number
  /** How often the start loop purges. Default 60000. */
  readonly purgeIntervalMs?: number
  readonly onProgress?: (progress: RelayProgress) => void
  /** How often the start loop reports progress. Default 10000. */
  readonly progressIntervalMs?: number
  /**
   * Errors of the start loop (store unreachable, a throwing onProgress). The loop keeps running. Default: one
   * line on stderr with the error's name, code and message; never an event payload.
   */
  readonly onError?: (error: unknown) => void
  /** Source of jitter in [0, 1); injectable for tests. Default Math.random. */
  readonly random?: () => number
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
  /** Claimed events given back unpublished (stop, or the lease about to lapse before their turn). */
  readonly released: number
  /** Published events purged under `retentionMs`. */
  readonly purged: number
  /** Pending events in the whole outbox (all tenants). */
  readonly pending: number
  /** Dead events in the whole outbox, waiting for an operator. */
  readonly deadInOutbox: number
  readonly oldestPendingAgeMs: number
}

export interface DrainResult {
  readonly published: number
  readonly retried: number
  readonly dead: number
  readonly lostLeases: number
  readonly released: number
}

interface Counters {
  published: number
  retried: number
  dead: number
  lostLeases: number
  released: number
}

const zero = (): Counters => ({ published: 0, retried: 0, dead: 0, lostLeases: 0, released: 0 })

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

/** An error as text for `lastError` and logs: name, code and message only, bounded. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const head = typeof code === 'string' || typeof code === 'number' ? `${error.name} ${code}` : error.name
    return `${head}: ${error.message}`.slice(0, 300)
  }
  return `non-error thrown: ${typeof error}`
}

function defaultOnError(error: unknown): void {
  process.stderr.write(`user-engine relay: ${describeError(error)}\n`)
}

/**
 * Moves committed outbox events to a publisher: claim by state (never a cursor), publish, acknowledge only
 * what was published while the lease held. Delivery is at least once; per aggregate it is in order, because
 * the store only lets a relay claim the head of an aggregate's sequence.
 */
export class OutboxRelay {
  readonly owner: string
  readonly #outbox: OutboxAccess
  readonly #publisher: Publisher
  readonly #batchSize: number
  readonly #leaseMs: number
  readonly #maxAttempts: number
  readonly #backoff: { baseMs: number; maxMs: number }
  readonly #pollIntervalMs: number
  readonly #concurrency: number
  readonly #retentionMs: number | undefined
  readonly #purgeBatchSize: number
  readonly #purgeIntervalMs: number
  readonly #progressIntervalMs: number
  readonly #onProgress: ((progress: RelayProgress) => void) | undefined
  readonly #onError: (error: unknown) => void
  readonly #random: () => number

  readonly #totals = zero()
  #purged = 0
  #stopping = false
  #loop: Promise<void> | null = null
  readonly #active = new Set<Promise<unknown>>()
  #wake: (() => void) | null = null

  constructor(options: RelayOptions) {
    this.#outbox = options.outbox
    this.#publisher = options.publisher
    this.owner = options.owner ?? `relay_${randomBytes(8).toString('hex')}`
    assertId(this.owner, 'owner')
    this.#batchSize = options.batchSize ?? 100
    this.#leaseMs = options.leaseMs ?? 30_000
    this.#maxAttempts = options.maxAttempts ?? 10
    this.#backoff = { baseMs: options.backoff?.baseMs ?? 500, maxMs: options.backoff?.maxMs ?? 60_000 }
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000
    this.#concurrency = options.publishConcurrency ?? 32
    this.#retentionMs = options.retentionMs
    this.#purgeBatchSize = options.purgeBatchSize ?? 1000
    this.#purgeIntervalMs = options.purgeIntervalMs ?? 60_000
    this.#progressIntervalMs = options.progressIntervalMs ?? 10_000
    this.#onProgress = options.onProgress
    this.#onError = options.onError ?? defaultOnError
    this.#random = options.random ?? Math.random
    assertPositiveInt(this.#batchSize, 'batchSize', 10_000)
    assertPositiveInt(this.#leaseMs, 'leaseMs')
    assertPositiveInt(this.#maxAttempts, 'maxAttempts')
    assertPositiveInt(this.#concurrency, 'publishConcurrency')
    assertPositiveInt(this.#purgeBatchSize, 'purgeBatchSize', 100_000)
    if (this.#backoff.baseMs < 0 || this.#backoff.maxMs < this.#backoff.baseMs) {
      throw new ValidationError('backoff needs 0 <= baseMs <= maxMs', { details: { field: 'backoff' } })
    }
    if (this.#retentionMs !== undefined && !(this.#retentionMs >= 0)) {
      throw new ValidationError('retentionMs must be >= 0', { details: { field: 'retentionMs' } })
    }
  }

  /** True between `start()` and the end of `stop()`. */
  get running(): boolean {
    return this.#loop !== null
  }

  /**
   * Claims and publishes until nothing is claimable right now (events backing off or leased elsewhere are
   * left for later). Store errors are thrown; publish errors are recorded on the event.
   */
  async drainOnce(): Promise<DrainResult> {
    return this.#track(this.#drain())
  }

  /** Runs the relay until `stop()`: drain, sleep `pollIntervalMs` when idle, purge and report on their intervals. */
  start(): void {
    if (this.#loop) return
    this.#stopping = false
    this.#loop = this.#run()
  }

  /**
   * Lets the publishes in flight finish (and acknowledges or fails them), releases claimed events whose
   * publish had not started, reports progress one last time, and resolves.
   */
  async stop(): Promise<void> {
    this.#stopping = true
    this.#wake?.()
    await this.#loop
    await Promise.allSettled([...this.#active])
    this.#loop = null
    this.#stopping = false
  }

  /** `stop()`, then closes the publisher. For relays that own their publisher (createJetStreamRelay). */
  async close(): Promise<void> {
    await this.stop()
    await this.#publisher.close?.()
  }

  /** Deletes published events older than `retentionMs` in bounded statements; returns how many. */
  async purgeOnce(maxBatches = 100): Promise<number> {
    if (this.#retentionMs === undefined) return 0
    let total = 0
    for (let i = 0; i < maxBatches && !this.#stopping; i++) {
      const n = await this.#outbox.purgePublished(this.#retentionMs, this.#purgeBatchSize)
      total += n
      if (n < this.#purgeBatchSize) break
    }
    this.#purged += total
    return total
  }

  /** Counts so far plus the outbox's lag (one store query). */
  async progress(): Promise<RelayProgress> {
    const lag = await this.#outbox.lag()
    return {
      owner: this.owner,
      ...this.#totals,
      purged: this.#purged,
      pending: lag.pending,
      deadInOutbox: lag.dead,
      oldestPendingAgeMs: lag.oldestPendingAgeMs,
    }
  }

  async #track<T>(work: Promise<T>): Promise<T> {
    this.#active.add(work)
    try {
      return await work
    } finally {
      this.#active.delete(work)
    }
  }

  async #drain(): Promise<DrainResult> {
    const result = zero()
    while (!this.#stopping) {
      const before = result.published + result.retried + result.dead
      const claimed = await this.#batch(result)
      // A batch that settled nothing (every lease lapsed or was released) would be claimed again at once:
      // stop rather than spin; start() keeps retrying on its poll interval.
      if (claimed === 0 || result.published + result.retried + result.dead === before) break
    }
    return result
  }

  /** One claim, publish and settle. Returns how many events were claimed. */
  async #batch(into: Counters): Promise<number> {
    const claimedAt = Date.now()
    const events = await this.#outbox.claim({
      owner: this.owner,
      limit: this.#batchSize,
      leaseMs: this.#leaseMs,
    })
    if (events.length === 0) return 0
    // Do not start a publish the lease may not cover: another relay could take the event over meanwhile and
    // we would publish it twice for nothing. Measured from before the claim, so on the safe side.
    const deadline = claimedAt + this.#leaseMs - Math.min(1000, this.#leaseMs / 10)
    const published: string[] = []
    const failed: { event: OutboxEntry; error: unknown }[] = []
    const unstarted: string[] = []

    let next = 0
    const worker = async () => {
      while (next < events.length) {
        const event = events[next++]!
        if (this.#stopping || Date.now() >= deadline) {
          unstarted.push(event.id)
          continue
        }
        try {
          await this.#publisher.publish(event)
          published.push(event.id)
        } catch (error) {
          failed.push({ event, error })
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, events.length) }, worker))

    const add = (key: keyof Counters, n: number) => {
      into[key] += n
      this.#totals[key] += n
    }
    if (published.length > 0) {
      const acked = await this.#outbox.acknowledge(this.owner, published)
      add('published', acked.length)
      add('lostLeases', published.length - acked.length)
    }
    for (const { event, error } of failed) {
      const status = await this.#outbox.fail({
        owner: this.owner,
        eventId: event.id,
        error: describeError(error),
        maxAttempts: this.#maxAttempts,
        backoffMs: backoffDelay(event.attempts + 1, this.#backoff, this.#random),
      })
      add(status === null ? 'lostLeases' : status === 'dead' ? 'dead' : 'retried', 1)
    }
    if (unstarted.length > 0) add('released', await this.#outbox.release(this.owner, unstarted))
    return events.length
  }

  async #run(): Promise<void> {
    let lastProgress = Date.now()
    let lastPurge = 0
    while (!this.#stopping) {
      let idle = true
      try {
        const settled = zero()
        const claimed = await this.#track(this.#batch(settled))
        idle = claimed === 0 || settled.published + settled.retried + settled.dead === 0
      } catch (error) {
        this.#onError(error)
      }
      const now = Date.now()
      if (this.#retentionMs !== undefined && now - lastPurge >= this.#purgeIntervalMs) {
        lastPurge = now
        await this.purgeOnce().catch((error: unknown) => this.#onError(error))
      }
      if (this.#onProgress && now - lastProgress >= this.#progressIntervalMs) {
        lastProgress = now
        await this.#report()
      }
      if (idle) await this.#sleep(this.#pollIntervalMs)
    }
    if (this.#onProgress) await this.#report()
  }

  async #report(): Promise<void> {
    try {
      this.#onProgress?.(await this.progress())
    } catch (error) {
      this.#onError(error)
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = () => {
        this.#wake = null
        done()
      }
    })
  }
}
