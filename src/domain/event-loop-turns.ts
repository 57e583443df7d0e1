/**
 * Lets timers and I/O run between pieces of work that otherwise resolve in promise jobs alone. An in-process
 * store (memory, PGlite) answers without leaving the current turn of the event loop, so a loop of engine
 * calls on it never let a 200 ms timer fire, nor an HTTP request in: the process froze until the loop ended.
 * Called at the start of each unit of work (and of each PGlite statement); it yields at most once per
 * `SLICE_MS` of continuous work, so a store that does real I/O never pays for it.
 */
const SLICE_MS = 10
let sliceStarted = performance.now()

export async function yieldIfBusy(): Promise<void> {
  if (performance.now() - sliceStarted < SLICE_MS) return
  await new Promise<void>((resolve) => setImmediate(resolve))
  sliceStarted = performance.now()
}
