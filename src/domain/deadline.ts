/**
 * `promise`'s outcome, or a rejection with `timedOut()` once `ms` have passed first. The timer is cleared
 * either way; a promise that settles late is left to the caller (see what each caller does with it).
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, timedOut: () => unknown): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), Math.max(0, ms))
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}
