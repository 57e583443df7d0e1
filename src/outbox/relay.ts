// Long on purpose: one state machine (claim, per-aggregate workers, outage pause) whose fields every part
// reads; its options, settle statements, backoff and error text live in files of their own.
import { withDeadline } from '../domain/deadline.js'
import { ErrorCode, UserEngineError, ValidationError } from '../domain/errors.js'
import type { OutboxEntry } from '../domain/records.js'
import type { OutboxLag, OutboxSubscription, SettleItem } from '../store/store.js'
import { backoffDelay } from './backoff.js'
import { describeError } from './describe-error.js'
import { loadMeter, type RelayInstruments, relayInstruments } from './metrics.js'
import { isBrokerUnreachable } from './publisher.js'
import {
  type DrainResult,
  type RelayOptions,
  type RelayProgress,
  type ResolvedRelayOptions,
  resolveRelayOptions,
} from './relay-options.js'
import { SettleQueue } from './settle-queue.js'
import { FailureRun, STORE_REPORT_INTERVAL_MS, StoreOutage } from './store-outage.js'

interface Counters {
  published: number
  retried: number
  dead: number
  lostLeases: number
  released: number
}

const zero = (): Counters => ({ published: 0, retried: 0, dead: 0, lostLeases: 0, released: 0 })

/** One claimed event in a relay's hands, with the time after which it must not be published. */
interface Held {
  readonly event: OutboxEntry
  readonly deadline: number
}

/** An aggregate whose events this relay holds: published one after another, in order. */
interface Aggregate {
  readonly key: string
  readonly queue: Held[]
  /** The last event claimed: where a continuation claim goes on. */
  last: OutboxEntry
  /** A worker is publishing its events. */
  working: boolean
  /** Waiting in line for a worker. */
  queued: boolean
  /** Its last claim took all it asked for: more may be ready behind `last`. */
  more: boolean
  /** Publishing stopped (a failure, a release): nothing more of it is published in this hold. */
  aborted: boolean
  /** Continuations that came back empty while a settle of ours ran beside them (at most one is retried). */
  emptyRaces: number
}

/** Most aggregates one claim starts from their heads (see #claim). */
const MOST_NEW_AGGREGATES = 500

const aggregateKey = (e: OutboxEntry) => `${e.tenantId}\u0000${e.aggregateType}\u0000${e.aggregateId}`

/**
 * Moves committed outbox events to a publisher: claim by state (never a cursor), publish, acknowledge only
 * what was published while the lease held. Delivery is at least once, and in order per aggregate.
 *
 * How it keeps up with the broker: a claim takes each aggregate's ready prefix (up to `perAggregate`), a
 * worker per aggregate publishes its events one after another while up to `publishConcurrency` aggregates
 * publish at once, the next claim (continuing the aggregates in hand, and starting new ones) runs while
 * publishes are in flight, and acknowledgements, failures and releases are settled in one statement per
 * round. A commit wakes it (`outbox.subscribe`); polling is the fallback.
 *
 * Broker outages: a publish rejected as unreachable (`isBrokerUnreachable`) pauses the relay. Its events are
 * given back without counting an attempt, the outage is reported once to `onError` and shows in progress
 * (`broker: 'down'`), and the relay probes with one aggregate at growing intervals (or when the publisher
 * says it reconnected) until a publish goes through. Nothing else ends a pause: each probe costs the store
 * a claim and a release.
 */
export class OutboxRelay {
  readonly owner: string
  readonly #o: ResolvedRelayOptions

  readonly #totals = zero()
  #purged = 0
  #stopping = false
  #draining: Promise<DrainResult> | null = null
  #loop: Promise<void> | null = null
  /** One drain or start loop at a time: they share the relay's hands. */
  #busy = false

  readonly #aggregates = new Map<string, Aggregate>()
  /** Aggregates waiting for a worker, in arrival order. */
  readonly #line: Aggregate[] = []
  #workers = 0
  readonly #workerDone = new Set<Promise<void>>()
  /** Events claimed and not yet settled. */
  #held = 0
  /** The last events of aggregates let go of, until settled: their settle makes the next event a head. */
  readonly #freeing = new Set<string>()
  readonly #settles: SettleQueue
  /** The start loop's progress and purge intervals. */
  readonly #timers: ReturnType<typeof setInterval>[] = []
  /** Worth starting new aggregates from their heads: woken, polled, a slot freed, or the last claim filled. */
  #wantHeads = true
  /** Times something asked for a claim from the heads (a wake, a poll, a finished aggregate). */
  #wakes = 0
  /** The last claim asked for new aggregates (so an empty answer means nothing is claimable). */
  #askedHeads = false
  #kick: (() => void) | null = null
  #kicked = false

  /**
   * Set while publishes pause: since when, the error that started it, the next pause length, whether the
   * pause is over (a probe may go), and whether the publisher's reconnect signal ended the last pause.
   */
  #outage: {
    since: number
    error: unknown
    pauseMs: number
    paused: boolean
    reconnected: boolean
  } | null = null
  #lastLag: OutboxLag | null = null
  /** Consecutive store failures: backoff and rate-limited reports while the database is away. */
  readonly #storeOutage: StoreOutage
  #instruments: RelayInstruments | null = null
  #metered = false

  /** Every option is checked here (VALIDATION): see resolveRelayOptions. */
  constructor(options: RelayOptions) {
    this.#o = resolveRelayOptions(options)
    this.owner = this.#o.owner
    this.#settles = new SettleQueue({
      outbox: this.#o.outbox,
      owner: this.owner,
      maxAttempts: this.#o.maxAttempts,
      enough: Math.min(100, Math.ceil(this.#o.batchSize / 4)),
      urgent: () => this.#stopping || this.#outage !== null,
      settled: (items, result) => this.#settled(items, result),
      wake: () => this.#signal(),
    })
    this.#storeOutage = new StoreOutage(this.#o.pollIntervalMs, this.#o.random)
  }

  /** True between `start()` and the end of `stop()`. */
  get running(): boolean {
    return this.#loop !== null
  }

  /**
   * Claims and publishes until nothing is claimable right now (events backing off or leased elsewhere are
   * left for later), settles everything, and resolves. Store errors are thrown; publish errors are recorded
   * on the event. When the broker turns out unreachable, the events in hand are given back (no attempt
   * counted) and the broker's error is thrown. `stop()` ends a drain early: the publishes in flight settle,
   * the events not yet published are released, and the drain resolves with what it did.
   */
  async drainOnce(): Promise<DrainResult> {
    if (this.#busy) throw new ValidationError('the relay is already draining or running', { details: {} })
    this.#busy = true
    const drain = this.#drain()
    this.#draining = drain
    try {
      return await drain
    } finally {
      this.#draining = null
      this.#busy = false
    }
  }

  async #drain(): Promise<DrainResult> {
    const before = { ...this.#totals }
    await this.#ensureInstruments()
    await this.#pump('drain')
    const outage = this.#outage
    if (outage) {
      this.#outage = null
      throw outage.error
    }
    return {
      published: this.#totals.published - before.published,
      retried: this.#totals.retried - before.retried,
      dead: this.#totals.dead - before.dead,
      lostLeases: this.#totals.lostLeases - before.lostLeases,
      released: this.#totals.released - before.released,
    }
  }

  /** Runs the relay until `stop()`: claim and publish, wake on commit or poll, purge and report on their intervals. */
  start(): void {
    if (this.#loop) return
    if (this.#busy) throw new ValidationError('the relay is already draining', { details: {} })
    this.#busy = true
    this.#stopping = false
    this.#loop = this.#run().finally(() => {
      this.#busy = false
    })
  }

  /**
   * Lets the publishes in flight finish (and acknowledges or fails them), releases claimed events whose
   * publish had not started, reports progress one last time, and resolves.
   */
  async stop(): Promise<void> {
    this.#stopping = true
    // Nothing of this relay keeps the process alive from here on, even behind a publish that never returns.
    for (const t of this.#timers.splice(0)) clearInterval(t)
    this.#signal()
    // A drain in progress ends early too, with what it published so far.
    await this.#draining?.catch(() => {})
    await this.#loop
    this.#loop = null
    this.#stopping = false
  }

  /** `stop()`, then closes the publisher. For relays that own their publisher (createJetStreamRelay). */
  async close(): Promise<void> {
    await this.stop()
    this.#instruments?.close()
    await this.#o.publisher.close?.()
  }

  /** Deletes published events older than `retentionMs` in bounded statements; returns how many. */
  async purgeOnce(maxBatches = 100): Promise<number> {
    if (this.#o.retentionMs === undefined) return 0
    let total = 0
    for (let i = 0; i < maxBatches && !this.#stopping; i++) {
      const n = await this.#o.outbox.purgePublished(this.#o.retentionMs, this.#o.purgeBatchSize)
      total += n
      if (n < this.#o.purgeBatchSize) break
    }
    this.#purged += total
    return total
  }

  /** Counts so far plus the outbox's lag (one store query). */
  async progress(): Promise<RelayProgress> {
    const lag = await this.#o.outbox.lag()
    this.#lastLag = lag
    return {
      owner: this.owner,
      ...this.#totals,
      purged: this.#purged,
      pending: lag.pending,
      deadInOutbox: lag.dead,
      oldestPendingAgeMs: lag.oldestPendingAgeMs,
      broker: this.#outage ? 'down' : 'up',
      brokerDownMs: this.#outage ? Date.now() - this.#outage.since : 0,
      held: this.#held,
    }
  }

  // ---- the loops ------------------------------------------------------------------------------------------

  async #run(): Promise<void> {
    await this.#ensureInstruments()
    this.#o.logger.log('info', 'relay started', {
      owner: this.owner,
      batchSize: this.#o.batchSize,
      perAggregate: this.#o.perAggregate,
      publishConcurrency: this.#o.publishConcurrency,
      leaseMs: this.#o.leaseMs,
    })
    let subscription: OutboxSubscription | null = null
    if (this.#o.wakeOnCommit && this.#o.outbox.subscribe) {
      try {
        subscription = await this.#o.outbox.subscribe(() => {
          this.#headsWanted()
          this.#signal()
        })
      } catch (error) {
        this.#reportError(error, 'waking on commit is off; polling')
      }
    }
    const timers = this.#timers
    // Progress and purges fail every interval while the database is away: reported as store errors are.
    const progressFailures = new FailureRun()
    const purgeFailures = new FailureRun()
    let reporting = false
    const report = async () => {
      if (reporting) return
      reporting = true
      try {
        const p = await this.progress()
        progressFailures.recovered()
        this.#o.onProgress?.(p)
      } catch (error) {
        if (progressFailures.failed(Date.now()))
          this.#reportError(error, repeatedFailure('progress failed', progressFailures))
      } finally {
        reporting = false
      }
    }
    if (this.#o.onProgress || this.#metered) timers.push(setInterval(report, this.#o.progressIntervalMs))
    let purging = false
    if (this.#o.retentionMs !== undefined) {
      const purge = async () => {
        if (purging) return
        purging = true
        try {
          await this.purgeOnce()
          purgeFailures.recovered()
        } catch (error) {
          if (purgeFailures.failed(Date.now()))
            this.#reportError(error, repeatedFailure('purge failed', purgeFailures))
        } finally {
          purging = false
        }
      }
      void purge()
      timers.push(setInterval(purge, this.#o.purgeIntervalMs))
    }
    try {
      await this.#pump('run')
    } finally {
      for (const t of timers.splice(0)) clearInterval(t)
      await subscription?.close().catch(() => {})
      if (this.#o.onProgress) await report()
      this.#o.logger.log('info', 'relay stopped', { owner: this.owner, ...this.#totals })
    }
  }

  /**
   * The one loop that talks to the store for the relay (settle, then claim), while workers publish. `drain`
   * ends when nothing is claimable and nothing is held; `run` ends at `stop()`.
   */
  async #pump(mode: 'drain' | 'run'): Promise<void> {
    this.#headsWanted()
    let lastClaimed = 0
    let progressAtClaim = -1
    const settled = () => this.#settles.idle
    try {
      while (!this.#stopping) {
        const failed = this.#settles.takeFailure()
        if (failed) {
          if (mode === 'drain') throw failed.error
          const { delayMs, report } = this.#storeOutage.failed(Date.now())
          if (report) this.#reportError(failed.error, this.#storeFailing('settling failed', delayMs))
          this.#settles.retryAfter(delayMs)
        }
        if (this.#outage && !this.#outage.paused) {
          // Publishes stopped; wait for the workers to give their events back, then pause or end.
          if (this.#workers > 0 || !settled()) {
            await this.#waitSignal(this.#o.pollIntervalMs)
            continue
          }
          if (mode === 'drain') return
          await this.#pause()
          continue
        }
        let claimed = -1
        try {
          if (mode === 'drain' && this.#aggregates.size === 0) {
            if (!settled()) {
              this.#settles.flushNow()
              await this.#waitSignal(this.#o.pollIntervalMs)
              continue
            }
            // Nothing moved since the last claim (every event released or lost): stop rather than spin.
            const progress = this.#totals.published + this.#totals.retried + this.#totals.dead
            if (lastClaimed > 0 && progress === progressAtClaim) return
            progressAtClaim = progress
            this.#headsWanted()
          }
          claimed = await this.#claim()
          if (claimed > 0) lastClaimed = claimed
          if (claimed >= 0 && this.#storeOutage.failures > 0) {
            const failures = this.#storeOutage.recovered()
            this.#o.logger.log('info', 'store reachable again', { owner: this.owner, failedRounds: failures })
          }
        } catch (error) {
          if (mode === 'drain') throw error
          const { delayMs, report } = this.#storeOutage.failed(Date.now())
          if (report) this.#reportError(error, this.#storeFailing('store error', delayMs))
          await this.#waitSignal(delayMs)
          continue
        }
        if (claimed > 0) continue
        if (mode === 'drain' && claimed === 0 && this.#askedHeads && this.#aggregates.size === 0 && settled())
          return
        if (!(await this.#waitSignal(this.#o.pollIntervalMs))) this.#headsWanted()
      }
    } finally {
      // Stopping (or a store error while draining): workers give back what they have not started.
      this.#stopping = true
      this.#signal()
      while (this.#workerDone.size > 0) await Promise.allSettled([...this.#workerDone])
      for (const a of [...this.#aggregates.values()]) this.#releaseRest(a)
      this.#aggregates.clear()
      this.#line.length = 0
      try {
        await this.#settles.drain()
      } catch (error) {
        if (mode === 'run') this.#reportError(error, 'settling on stop failed; the leases will lapse')
      }
      this.#held = 0
      this.#freeing.clear()
      if (mode === 'drain') this.#stopping = false
    }
  }

  /**
   * One claim: continuations for the aggregates in hand whose queue runs low, plus new aggregates from their
   * heads when worthwhile. Returns the events claimed, or -1 when no claim was worth making.
   */
  async #claim(): Promise<number> {
    const room = this.#o.batchSize - this.#held
    // Top up only once half the hand is free, so claims are few and large.
    if (room <= 0 || (this.#held > 0 && room < this.#o.batchSize / 2)) return -1
    const probing = this.#outage?.paused === true
    const continuing = [...this.#aggregates.values()].filter(
      (a) => a.more && !a.aborted && a.queue.length < Math.max(1, this.#o.perAggregate / 2),
    )
    const cursors = continuing.map((a) => ({ tenantId: a.last.tenantId, eventId: a.last.id }))
    // The aggregates this claim continues, as they are when it is sent.
    const sentFor = new Map(continuing.map((a) => [a.key, a]))
    // New aggregates at most MOST_NEW_AGGREGATES per claim: a claim reads 4 candidates per aggregate asked
    // for, and 8000 (room for 2000) made the planner scan the whole outbox instead of the due-order index
    // (claims of 20 ms instead of 4 while commits arrived, commit to publish 400 ms instead of 16).
    const newAggregates = probing
      ? this.#aggregates.size === 0
        ? 1
        : 0
      : this.#wantHeads
        ? Math.min(room, MOST_NEW_AGGREGATES)
        : 0
    if (cursors.length === 0 && newAggregates === 0) return -1
    const claimedAt = Date.now()
    const roundsBefore = this.#settles.rounds
    const wakesBefore = this.#wakes
    const flushingBefore = this.#settles.inFlight
    const events = await this.#o.outbox.claim({
      owner: this.owner,
      limit: probing ? Math.min(room, this.#o.perAggregate) : room,
      leaseMs: this.#o.leaseMs,
      perAggregate: this.#o.perAggregate,
      newAggregates,
      ...(cursors.length > 0 ? { continueAfter: cursors } : {}),
    })
    // Do not start a publish the lease may not cover: another relay could take the event over meanwhile and
    // it would go out twice for nothing. Measured from before the claim, so on the safe side.
    const deadline = claimedAt + this.#o.leaseMs - Math.min(1000, this.#o.leaseMs / 10)
    const counts = new Map<Aggregate, number>()
    /** Aggregates this claim started from their head: the rest of their events in it follow. */
    const startedNow = new Set<Aggregate>()
    let started = 0
    // Runs are taken whole, oldest first (by their first event's due time): a claim cut by its limit cut
    // only the last run. Marking just that one (with any tying with it) as having more keeps the next claim
    // from sending a continuation for every aggregate of a full claim of short runs.
    const runAt = new Map<Aggregate, string>()
    let lastRunAt = ''
    for (const event of events) {
      const key = aggregateKey(event)
      const current = this.#aggregates.get(key)
      const sent = sentFor.get(key)
      // Events follow what this relay holds only where the claim continued that very hold, still going: a
      // hold that stopped meanwhile (a failure, a release) must not be published around, and events from a
      // head claim for an aggregate still in hand mean an old hold lapsed. Either way they go back, except
      // the ones this relay still holds.
      let a: Aggregate | undefined
      if (sent !== undefined) a = sent === current && !sent.aborted ? sent : undefined
      else if (current !== undefined && startedNow.has(current)) a = current
      else if (current !== undefined && !current.aborted) {
        // An event this relay still holds, its lease lapsed (a publish of its aggregate hangs, or the line
        // for a worker was long): the claim renewed the lease, so keep it under the new deadline. Released,
        // it would be claimed and released again on every claim for as long as the publish hangs.
        const i = current.queue.findIndex((h) => h.event.id === event.id)
        if (i >= 0) {
          current.queue[i] = { event: current.queue[i]!.event, deadline }
          continue
        }
      } else if (current === undefined) {
        a = {
          key,
          queue: [],
          last: event,
          working: false,
          queued: false,
          more: false,
          aborted: false,
          emptyRaces: 0,
        }
        this.#aggregates.set(key, a)
        startedNow.add(a)
        started += 1
      }
      if (a === undefined) {
        this.#held += 1
        this.#settles.add({ tenantId: event.tenantId, eventId: event.id, outcome: 'released' })
        continue
      }
      a.queue.push({ event, deadline })
      a.last = event
      this.#held += 1
      const n = counts.get(a)
      counts.set(a, (n ?? 0) + 1)
      if (n === undefined && event.availableAt > lastRunAt) lastRunAt = event.availableAt
      if (n === undefined) runAt.set(a, event.availableAt)
    }
    const cut = events.length >= (probing ? Math.min(room, this.#o.perAggregate) : room)
    // A settle of ours ran beside the claim: it may have held the row a continuation had to lock, so an
    // empty continuation then says nothing about what is ready.
    const raced = flushingBefore || this.#settles.rounds !== roundsBefore || this.#settles.inFlight
    // Heads were asked for: worth asking again at once only if the claim filled what it asked (more may
    // wait), or something woke the relay meanwhile.
    if (newAggregates > 0 && started < newAggregates && !cut && this.#wakes === wakesBefore)
      this.#wantHeads = false
    for (const a of this.#aggregates.values()) {
      const n = counts.get(a)
      if (n !== undefined) {
        a.more = n >= this.#o.perAggregate || (cut && runAt.get(a) === lastRunAt)
        a.emptyRaces = 0
      } else if (sentFor.get(a.key) === a) {
        if (raced && a.emptyRaces === 0) a.emptyRaces = 1
        else {
          // Nothing follows it now; if something does later, a claim from the head finds it.
          a.more = false
          this.#headsWanted()
        }
      }
      if (a.queue.length > 0) this.#enqueue(a)
      else if (!a.working && !a.queued && !a.more) this.#aggregates.delete(a.key)
    }
    // New heads were asked for and more may be waiting only if the claim filled what it asked.
    this.#askedHeads = newAggregates > 0
    return events.length
  }

  // ---- workers --------------------------------------------------------------------------------------------

  #enqueue(a: Aggregate): void {
    if (a.working || a.queued) return
    a.queued = true
    this.#line.push(a)
    this.#startWorkers()
  }

  #startWorkers(): void {
    while (this.#workers < this.#o.publishConcurrency && this.#line.length > 0) {
      const a = this.#line.shift()!
      a.queued = false
      this.#workers += 1
      const done: Promise<void> = this.#work(a).finally(() => {
        this.#workers -= 1
        this.#workerDone.delete(done)
        this.#startWorkers()
        this.#signal()
      })
      this.#workerDone.add(done)
    }
  }

  /** Publishes one aggregate's events in order, at most perAggregate before yielding its slot. */
  async #work(a: Aggregate): Promise<void> {
    a.working = true
    try {
      for (let n = 0; n < this.#o.perAggregate && a.queue.length > 0; n++) {
        const held = a.queue[0]!
        if (this.#stopping || (this.#outage && !this.#outage.paused) || Date.now() >= held.deadline) {
          a.aborted = true
          break
        }
        const started = performance.now()
        try {
          // A publish may outlive its lease (the settle then finds the lease lost); one that has not
          // settled a lease length after that, at least 5 s, is taken as hung.
          await settleBefore(
            this.#o.publisher.publish(held.event),
            held.deadline + Math.max(this.#o.leaseMs, HUNG_PUBLISH_MIN_MS),
          )
        } catch (error) {
          a.queue.shift()
          a.aborted = true
          if (isBrokerUnreachable(error)) {
            this.#settles.add({ tenantId: held.event.tenantId, eventId: held.event.id, outcome: 'released' })
            this.#brokerDown(error)
          } else {
            this.#settles.add({
              tenantId: held.event.tenantId,
              eventId: held.event.id,
              outcome: 'failed',
              error: describeError(error),
              backoffMs: backoffDelay(held.event.attempts + 1, this.#o.backoff, this.#o.random),
            })
          }
          break
        }
        a.queue.shift()
        this.#instruments?.publishDuration(performance.now() - started)
        this.#instruments?.deliveryLatency(Date.now() - Date.parse(held.event.occurredAt))
        this.#brokerUp()
        this.#settles.add({ tenantId: held.event.tenantId, eventId: held.event.id, outcome: 'published' })
        if (a.more && a.queue.length < this.#o.perAggregate / 2) this.#signal()
      }
    } finally {
      a.working = false
      if (a.aborted) this.#releaseRest(a)
      if (a.queue.length > 0) this.#enqueue(a)
      else if (a.aborted || !a.more) {
        if (this.#aggregates.get(a.key) === a) this.#aggregates.delete(a.key)
        this.#freeing.add(a.last.id)
        this.#headsWanted()
      }
    }
  }

  /** Gives back every event of `a` not yet published, keeping the aggregate's order intact. */
  #releaseRest(a: Aggregate): void {
    a.aborted = true
    for (const held of a.queue.splice(0)) {
      this.#settles.add({ tenantId: held.event.tenantId, eventId: held.event.id, outcome: 'released' })
    }
  }

  /** Counts what a settle statement did, and frees the relay's hands. */
  #settled(items: readonly SettleItem[], result: ReadonlyMap<string, string>): void {
    const add = (key: keyof Counters, n = 1) => {
      this.#totals[key] += n
      this.#instruments?.count(key, n)
    }
    for (const item of items) {
      this.#held -= 1
      const status = result.get(item.eventId)
      if (status === 'published') add('published')
      else if (status === 'pending') add('retried')
      else if (status === 'dead') add('dead')
      else if (status === 'released') add('released')
      else if (item.outcome !== 'released') add('lostLeases')
    }
    if (this.#held < 0) this.#held = 0
    // Events committed behind an aggregate this relay let go of became heads only now: a claim from the
    // heads is worth it (a wake that came while they were unsettled found nothing). Acknowledgements of
    // aggregates still in hand free no head: asking then read the due events for nothing on every claim.
    let freed = false
    for (const item of items) {
      if (this.#freeing.delete(item.eventId) || item.outcome !== 'published') freed = true
    }
    if (freed) this.#headsWanted()
  }

  // ---- broker outages -------------------------------------------------------------------------------------

  #brokerDown(error: unknown): void {
    const outage = this.#outage
    if (outage === null) {
      this.#outage = {
        since: Date.now(),
        error,
        pauseMs: this.#o.brokerRetry.baseMs,
        paused: false,
        reconnected: false,
      }
      this.#o.logger.log(
        'warn',
        'broker unreachable: publishing paused, events given back without an attempt',
        {
          owner: this.owner,
          error: describeError(error),
        },
      )
      this.#reportError(error, null)
    } else if (outage.paused) {
      // A probe failed: pause again, longer.
      outage.paused = false
      outage.error = error
      outage.pauseMs = Math.min(this.#o.brokerRetry.maxMs, Math.max(1, outage.pauseMs * 2))
    }
    this.#signal()
  }

  #brokerUp(): void {
    const outage = this.#outage
    if (outage === null) return
    this.#outage = null
    this.#headsWanted()
    this.#o.logger.log('info', 'broker reachable again: publishing resumed', {
      owner: this.owner,
      downMs: Date.now() - outage.since,
    })
    this.#signal()
  }

  /**
   * Waits out one pause (or until the publisher says it reconnected), then lets one probe through. Only the
   * pause's end, that signal and `stop()` end it: commits, polls and settles wake the relay for work it cannot
   * do now, and each ended pause costs the store a claim and a release. A reconnect signal whose probe failed
   * again is not waited for in the next pause (a publisher that says "reachable" at once while its publishes
   * fail would otherwise make the relay probe without pausing).
   */
  async #pause(): Promise<void> {
    const outage = this.#outage
    if (!outage) return
    const until = Date.now() + outage.pauseMs
    const abort = new AbortController()
    let reconnected = false
    let signalled = () => {}
    // Settles only on a reconnect: a rejection, or the answer to the abort below, must not end the pause.
    const reachable = new Promise<void>((resolve) => {
      signalled = resolve
    })
    if (!outage.reconnected) {
      this.#o.publisher.whenReachable?.(abort.signal).then(
        () => {
          if (abort.signal.aborted) return
          reconnected = true
          signalled()
        },
        () => {},
      )
    }
    try {
      while (!this.#stopping && !reconnected && this.#outage === outage) {
        const left = until - Date.now()
        if (left <= 0) break
        await this.#waitSignal(left, reachable)
      }
    } finally {
      abort.abort()
    }
    if (this.#outage === outage) {
      outage.paused = true
      outage.reconnected = reconnected
    }
  }

  // ---- helpers --------------------------------------------------------------------------------------------

  async #ensureInstruments(): Promise<void> {
    if (this.#instruments) return
    const meter = await loadMeter(this.#o.metrics)
    this.#metered = meter !== null
    this.#instruments = relayInstruments(meter, this.owner, {
      brokerUp: () => this.#outage === null,
      lag: () => this.#lastLag,
    })
  }

  /** The log line of a reported store failure: what failed, the run's length so far, the next wait. */
  #storeFailing(what: string, delayMs: number): string {
    const n = this.#storeOutage.failures
    return n === 1
      ? `${what}; retrying in ${delayMs} ms`
      : `${what}; ${n} rounds failed in a row, retrying in ${delayMs} ms (reported at most every ${STORE_REPORT_INTERVAL_MS / 1000} s)`
  }

  #reportError(error: unknown, what: string | null): void {
    if (what !== null) this.#o.logger.log('error', what, { owner: this.owner, error: describeError(error) })
    try {
      this.#o.onError(error)
    } catch {
      // onError is the last resort; its own failure has nowhere to go.
    }
  }

  #headsWanted(): void {
    this.#wantHeads = true
    this.#wakes += 1
  }

  #signal(): void {
    this.#kicked = true
    this.#kick?.()
  }

  /** Resolves true when signalled (work to do, a wake, stop, `also`), false after `ms`. */
  #waitSignal(ms: number, also?: Promise<unknown>): Promise<boolean> {
    if (this.#kicked || this.#stopping) {
      this.#kicked = false
      return Promise.resolve(true)
    }
    return new Promise((resolve) => {
      let settled = false
      const kick = () => finish(true)
      const finish = (signalled: boolean) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (this.#kick === kick) this.#kick = null
        this.#kicked = false
        resolve(signalled)
      }
      const timer = setTimeout(() => finish(false), ms)
      this.#kick = kick
      also?.then(kick, kick)
    })
  }
}

/** The log line of a reported failure of a periodic task: what failed, and the run's length so far. */
function repeatedFailure(what: string, run: FailureRun): string {
  return run.failures === 1
    ? what
    : `${what}; ${run.failures} times in a row (reported at most every ${STORE_REPORT_INTERVAL_MS / 1000} s)`
}

/** The least time past its lease deadline that a publish may take before it is taken as hung. */
const HUNG_PUBLISH_MIN_MS = 5000

/**
 * A publish that has not settled by `deadline` fails as the event's attempt (by then its lease has lapsed,
 * so the store reports it lost): a publisher that never settles would otherwise hold `drainOnce()` and
 * `stop()` forever. A late success is the broker's to deduplicate, by the event id.
 */
function settleBefore(publishing: Promise<void> | unknown, deadline: number): Promise<void> {
  return withDeadline(
    Promise.resolve(publishing) as Promise<void>,
    deadline - Date.now(),
    () =>
      new UserEngineError(ErrorCode.PUBLISH_FAILED, 'the publish did not settle in time: taken as hung', {
        details: { timedOut: true },
      }),
  )
}
