/** A promise with its resolver exposed. */
export interface Deferred<T = void> {
  readonly promise: Promise<T>
  resolve(value: T): void
  reject(error: unknown): void
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * Releases its parties once `parties` of them have arrived, so racing units of work all read before any
 * commits. A store that serializes whole units (one connection held for the callback) would never let the
 * others arrive, so after `timeoutMs` the barrier opens anyway: the race then runs in turn, and the outcome
 * it asserts (exactly one winner) must still hold.
 */
export function barrier(parties: number, timeoutMs = 2000): () => Promise<void> {
  const open = deferred()
  let arrived = 0
  let timer: NodeJS.Timeout | undefined
  return () => {
    arrived++
    if (arrived >= parties) {
      clearTimeout(timer)
      open.resolve()
    } else if (timer === undefined) {
      timer = setTimeout(() => open.resolve(), timeoutMs)
      timer.unref()
    }
    return open.promise
  }
}
