import { backoffDelay } from './backoff.js'

/** While the store keeps failing, a failure is reported again at most this often. */
export const STORE_REPORT_INTERVAL_MS = 30_000
/** The longest wait between rounds while the store fails (or the poll interval, when that is longer). */
export const STORE_RETRY_MAX_MS = 5_000

/**
 * A run of consecutive failures of one kind: the first is worth reporting, then at most one every
 * STORE_REPORT_INTERVAL_MS while the run lasts, so an outage is not a flood of identical errors.
 */
export class FailureRun {
  #failures = 0
  #reportedAt = 0

  get failures(): number {
    return this.#failures
  }

  /** Counts a failure; true when it is to be reported. */
  failed(now: number): boolean {
    this.#failures++
    const report = this.#failures === 1 || now - this.#reportedAt >= STORE_REPORT_INTERVAL_MS
    if (report) this.#reportedAt = now
    return report
  }

  /** A success: returns how many failed before it (0 when there was no run), and ends the run. */
  recovered(): number {
    const failures = this.#failures
    this.#failures = 0
    this.#reportedAt = 0
    return failures
  }
}

/**
 * A run of consecutive store failures (claims or settles): how long to wait before the next round (backoff
 * from the poll interval, so a database that is down or restarting is not hammered) and whether a failure
 * is worth reporting (the first of the run, then at most every STORE_REPORT_INTERVAL_MS, so an outage is
 * not a flood of identical errors).
 */
export class StoreOutage {
  readonly #run = new FailureRun()

  constructor(
    readonly pollIntervalMs: number,
    readonly random: () => number,
  ) {}

  get failures(): number {
    return this.#run.failures
  }

  failed(now: number): { delayMs: number; report: boolean } {
    const report = this.#run.failed(now)
    const delayMs = backoffDelay(
      this.#run.failures,
      { baseMs: this.pollIntervalMs, maxMs: Math.max(this.pollIntervalMs, STORE_RETRY_MAX_MS) },
      this.random,
    )
    return { delayMs, report }
  }

  /** A round succeeded: returns how many failed before it (0 when there was no outage). */
  recovered(): number {
    return this.#run.recovered()
  }
}
