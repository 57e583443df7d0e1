/**
 * Lets timers and I/O run between pieces of work that otherwise resolve in promise jobs alone. An in-process
 * store (memory, PGlite) answers without leaving the current turn of the event loop, so a loop of engine
 * calls on it never let a 200 ms timer fire, nor an HTTP request in: the process froze until the loop ended.
 * The in-process stores call it: the memory store at the start of each unit of work, the PGlite driver before
 * each statement (inside its one queue, so the callers a statement's answer resumes still reach their commits
 * in one turn and leave together: a yield at the start of each unit scattered them over separate turns and cost
 * group commit on PGlite about 40%). It yields only once `SLICE_MS` have passed since the event loop last
 * turned, so a store that does real I/O (the loop turns while it waits) never pays for it.
 */
const SLICE_MS = 10
let turnedAt = performance.now()
let watching = false

export async function yieldIfBusy(): Promise<void> {
  if (!watching) {
    // Runs at the loop's next turn, whoever causes it: that turn starts a new slice.
    watching = true
    setImmediate(() => {
      watching = false
      turnedAt = performance.now()
    })
  }
  if (performance.now() - turnedAt < SLICE_MS) return
  await new Promise<void>((resolve) => setImmediate(resolve))
}
