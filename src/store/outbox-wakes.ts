/**
 * In-process wake-ups after commits that wrote outbox events, behind `OutboxAccess.subscribe`. Listeners run
 * once after the committing call returns (commits meanwhile fold into that one wake); a listener that throws
 * affects neither the commit nor the other listeners.
 */
export class CommitWakes {
  readonly #listeners = new Set<() => void>()
  #queued = false

  add(listener: () => void): void {
    this.#listeners.add(listener)
  }

  delete(listener: () => void): void {
    this.#listeners.delete(listener)
  }

  signal(): void {
    if (this.#listeners.size === 0 || this.#queued) return
    this.#queued = true
    setImmediate(() => {
      this.#queued = false
      for (const listener of this.#listeners) {
        try {
          listener()
        } catch {
          // A listener's failure is its own; the commit already succeeded.
        }
      }
    })
  }
}
