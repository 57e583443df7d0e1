import type { OutboxAccess, SettleItem } from '../store/store.js'

/** How long a few settled events wait for more before their statement goes out. */
const GATHER_MS = 20
/** Most items in one settle statement. */
const MOST_PER_STATEMENT = 5000

export interface SettleQueueOptions {
  readonly outbox: OutboxAccess
  readonly owner: string
  readonly maxAttempts: number
  /** Items worth a statement at once; fewer wait up to GATHER_MS for company. */
  readonly enough: number
  /** Send at once, without gathering (the relay is stopping or the broker is down). */
  readonly urgent: () => boolean
  /** What the store made of a statement's items: the status per event id (absent: the lease was lost). */
  readonly settled: (items: readonly SettleItem[], result: ReadonlyMap<string, string>) => void
  /** A statement finished (or failed): the relay's loop may have work. */
  readonly wake: () => void
}

/**
 * The relay's acknowledgements, failures and releases, sent as one settle statement per round beside the
 * claims: items added while a statement is in flight go in the next one. A failed statement keeps its items
 * (in order, in front) and holds the queue until its failure is taken.
 */
export class SettleQueue {
  readonly #o: SettleQueueOptions
  readonly #items: SettleItem[] = []
  #inFlight: Promise<void> | null = null
  #gather: ReturnType<typeof setTimeout> | undefined
  #retry: ReturnType<typeof setTimeout> | undefined
  #failure: { error: unknown } | null = null
  /** While drain() runs it sends everything itself; nothing else may start a statement. */
  #draining = false
  /** Statements started so far. */
  rounds = 0

  constructor(options: SettleQueueOptions) {
    this.#o = options
  }

  /** Nothing waiting and nothing in flight. */
  get idle(): boolean {
    return this.#inFlight === null && this.#items.length === 0
  }

  get inFlight(): boolean {
    return this.#inFlight !== null
  }

  add(item: SettleItem): void {
    this.#items.push(item)
    this.#start()
  }

  /** The failure of a statement, once; taking it lifts its hold on the queue. */
  takeFailure(): { error: unknown } | null {
    const failure = this.#failure
    this.#failure = null
    return failure
  }

  /** Sends again after `ms` (after a failure). */
  retryAfter(ms: number): void {
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => this.flushNow(), ms)
  }

  /** Sends what waits now, unless a statement is in flight or a failure holds the queue. */
  flushNow(): void {
    clearTimeout(this.#gather)
    this.#gather = undefined
    if (this.#draining || this.#inFlight !== null || this.#items.length === 0 || this.#failure !== null)
      return
    this.#inFlight = this.#send(false)
      .catch((error: unknown) => {
        this.#failure = { error }
      })
      .finally(() => {
        this.#inFlight = null
        this.#start()
        this.#o.wake()
      })
  }

  /**
   * Stops the timers, waits for the statement in flight, then sends everything left, items added meanwhile
   * too (throws if a statement fails). Resolves only once no statement is in flight: the statement in flight
   * would otherwise start the next one as it ends, and that one would still be running when the relay says
   * it has stopped. Afterwards the queue is empty and free of any failure, whatever happened.
   */
  async drain(): Promise<void> {
    clearTimeout(this.#retry)
    clearTimeout(this.#gather)
    this.#gather = undefined
    this.#draining = true
    try {
      while (this.#inFlight !== null) await this.#inFlight
      await this.#send(true)
    } finally {
      this.#draining = false
      this.#failure = null
      this.#items.length = 0
    }
  }

  /** Starts a statement unless one is in flight; a few items wait up to GATHER_MS for company. */
  #start(): void {
    if (this.#draining || this.#inFlight !== null || this.#items.length === 0 || this.#failure !== null)
      return
    if (this.#items.length < this.#o.enough && !this.#o.urgent()) {
      this.#gather ??= setTimeout(() => {
        this.#gather = undefined
        this.flushNow()
      }, GATHER_MS)
      return
    }
    this.flushNow()
  }

  /** One bounded statement, or statements until nothing is left when `all`. */
  async #send(all: boolean): Promise<void> {
    for (let first = true; this.#items.length > 0 && (all || first); first = false) {
      const items = this.#items.splice(0, MOST_PER_STATEMENT)
      this.rounds += 1
      let result: ReadonlyMap<string, string>
      try {
        result = await this.#o.outbox.settle({
          owner: this.#o.owner,
          items,
          maxAttempts: this.#o.maxAttempts,
        })
      } catch (error) {
        this.#items.unshift(...items)
        throw error
      }
      this.#o.settled(items, result)
    }
  }
}
