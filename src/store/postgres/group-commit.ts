import type { CommitPlan } from '../commit-plan.js'

/**
 * Most units of work one group commit sends. Each unit is a subtransaction that writes, so it takes a
 * subtransaction id; a backend caches 64 of them (PGPROC_MAX_CACHED_SUBXIDS), and past that every other
 * backend's snapshots must look subtransactions up in pg_subtrans. 32 stays well inside the cache (see
 * docs/performance.md for what larger batches measured).
 */
export const MAX_GROUP_COMMIT_BATCH = 32

/**
 * How the committer sends: `one` commits a plan alone (today's statement); `many` sends several as one
 * statement and returns, per plan, null (committed) or the error its caller gets. `many` never throws.
 */
export interface GroupCommitSender {
  one(plan: CommitPlan): Promise<void>
  many(plans: readonly CommitPlan[]): Promise<ReadonlyArray<unknown | null>>
}

export interface GroupCommitOptions {
  /** Most plans per statement. Default MAX_GROUP_COMMIT_BATCH. */
  readonly maxBatch?: number
  /** Most statements in flight at once. */
  readonly maxInFlight: number
  /**
   * For an error a statement got before it was sent (no connection could be had: the database is down or
   * frozen), the error each commit still queued gets at once, instead of waiting its turn to meet the same
   * outage one connect timeout later; undefined keeps them queued.
   */
  readonly outage?: (error: unknown) => unknown | undefined
}

interface Waiting {
  readonly plan: CommitPlan
  readonly keys: readonly string[]
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

/**
 * What a plan locks: every record it writes, and every identifier value it claims (the unique index makes a
 * second claimant wait). Two batches in flight at once never share one; a plan that shares one with a batch
 * in flight waits for it in the queue. A value an identifier change releases is not in the plan, so two
 * batches swapping values could still deadlock: Postgres then fails one unit, and the store resends it alone.
 */
export function lockKeysOf(plan: CommitPlan): string[] {
  const keys: string[] = []
  for (const w of plan.writes) {
    keys.push(`r\u0000${plan.tenantId}\u0000${w.type}\u0000${w.id}`)
    if (w.type === 'identifier' && w.op !== 'delete') {
      keys.push(`i\u0000${plan.tenantId}\u0000${String(w.payload.kind)}\u0000${String(w.payload.value)}`)
    }
  }
  return keys
}

/**
 * Group commit without a timer: a commit that finds a statement slot free (`maxInFlight`) goes out as soon as
 * the promise jobs running now have settled, with every commit they queued; commits that become ready while
 * every slot is busy queue, and go together, in arrival order, as one statement when a slot frees; commits
 * gathered while several slots are free are shared evenly among them. A lone caller therefore waits for
 * nothing but that turn of the job queue; under load each statement (and its WAL flush) carries up to
 * `maxBatch` commits. A queued plan that touches a row or identifier value of a
 * statement in flight stays queued until that statement returns (and so do later plans touching the same),
 * so one key's plans apply in arrival order and statements in flight do not wait on each other's rows.
 */
export class GroupCommitter {
  readonly #queue: Waiting[] = []
  readonly #sender: GroupCommitSender
  readonly #maxBatch: number
  readonly #maxInFlight: number
  readonly #outage: ((error: unknown) => unknown | undefined) | undefined
  /** Each statement in flight, with the keys its plans lock. */
  readonly #inFlight = new Map<Promise<void>, ReadonlySet<string>>()
  /** The send scheduled by #schedule, until it runs. */
  #scheduled: Promise<void> | undefined

  constructor(sender: GroupCommitSender, options: GroupCommitOptions) {
    this.#sender = sender
    this.#maxBatch = options.maxBatch ?? MAX_GROUP_COMMIT_BATCH
    this.#maxInFlight = options.maxInFlight
    this.#outage = options.outage
  }

  /** Resolves once the plan's commit is durable; rejects with exactly the error a commit of its own gets. */
  commit(plan: CommitPlan): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ plan, keys: this.#maxInFlight > 1 ? lockKeysOf(plan) : [], resolve, reject })
      this.#schedule()
    })
  }

  /** Resolves when every queued commit has been sent and answered. */
  async drain(): Promise<void> {
    while (this.#scheduled !== undefined || this.#inFlight.size > 0) {
      await this.#scheduled
      await Promise.all(this.#inFlight.keys())
    }
  }

  /**
   * A commit that finds a slot free is sent once the promise jobs running now have settled, not at once: the
   * callers a statement's answer resumes reach their next commits in those jobs, and they then leave as one
   * statement instead of the first alone and the rest behind it. No timer: a lone caller waits one turn of
   * the job queue (a process.nextTick queued from a promise job runs after every promise job queued
   * meanwhile, which is how DataLoader gathers its loads).
   */
  #schedule(): void {
    if (this.#scheduled !== undefined || this.#inFlight.size >= this.#maxInFlight) return
    this.#scheduled = new Promise<void>((resolve) => {
      queueMicrotask(() =>
        process.nextTick(() => {
          this.#scheduled = undefined
          this.#next()
          resolve()
        }),
      )
    })
  }

  #next(): void {
    while (this.#inFlight.size < this.#maxInFlight && this.#queue.length > 0) {
      // Shared evenly among the free slots, so that the server applies them on as many backends at once.
      const free = this.#maxInFlight - this.#inFlight.size
      const batch = this.#take(Math.min(this.#maxBatch, Math.ceil(this.#queue.length / free)))
      if (batch.length === 0) return
      const keys = new Set(batch.flatMap((w) => w.keys))
      const sent: Promise<void> = this.#send(batch).then(() => {
        this.#inFlight.delete(sent)
        // Plans that queued meanwhile have waited already: they go now.
        this.#next()
      })
      this.#inFlight.set(sent, keys)
    }
  }

  /** The next batch of at most `most`, in queue order, leaving plans that share a key with a statement in flight. */
  #take(most: number): Waiting[] {
    if (this.#inFlight.size === 0) return this.#queue.splice(0, most)
    const busy = new Set<string>()
    for (const keys of this.#inFlight.values()) for (const k of keys) busy.add(k)
    const batch: Waiting[] = []
    const left: Waiting[] = []
    for (const w of this.#queue) {
      if (batch.length < most && !w.keys.some((k) => busy.has(k))) batch.push(w)
      else {
        left.push(w)
        // A later plan on the same key must not overtake this one.
        for (const k of w.keys) busy.add(k)
      }
    }
    this.#queue.splice(0, this.#queue.length, ...left)
    return batch
  }

  async #send(batch: readonly Waiting[]): Promise<void> {
    if (batch.length === 1) {
      const [only] = batch as [Waiting]
      try {
        await this.#sender.one(only.plan)
        only.resolve()
      } catch (error) {
        only.reject(error)
        this.#failQueuedOn(error)
      }
      return
    }
    let outcomes: ReadonlyArray<unknown | null>
    try {
      outcomes = await this.#sender.many(batch.map((w) => w.plan))
    } catch (error) {
      // A bug in the sender, not a database outcome: every caller learns it, none hangs.
      for (const w of batch) w.reject(error)
      return
    }
    batch.forEach((w, i) => {
      const outcome = outcomes[i]
      if (outcome === null) w.resolve()
      else w.reject(outcome)
    })
    const failed = outcomes.find((o) => o !== null)
    if (failed !== undefined) this.#failQueuedOn(failed)
  }

  /** After a statement met an outage before it was sent, the commits queued meanwhile fail now (none was sent). */
  #failQueuedOn(error: unknown): void {
    if (this.#outage === undefined || this.#outage(error) === undefined) return
    for (const w of this.#queue.splice(0)) w.reject(this.#outage(error))
  }
}
