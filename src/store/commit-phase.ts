/**
 * Which phase of a unit of work an error came from. A store marks what its commit raised; the engine retries a
 * VERSION_CONFLICT only when it is so marked (another writer moved a record the unit read), never a conflict
 * the callback raised itself (a caller's stale expectedVersion, which re-reading would not fix).
 *
 * The mark is a non-enumerable property under a registered symbol: JSON, structuredClone and util.inspect leave
 * it out, and two copies of this package in one process still recognise each other's marks.
 */
const COMMIT_PHASE: unique symbol = Symbol.for('user-engine.commitPhase') as never

/**
 * Marks `error` as raised by a commit, and returns it. `runUnitOfWork` does this for every error its `commit`
 * throws; a store that runs its own transaction loop calls it on what its commit throws. A primitive or frozen
 * value cannot carry the mark and is returned unchanged.
 */
export function markCommitPhase<E>(error: E): E {
  if (typeof error === 'object' && error !== null && Object.isExtensible(error)) {
    Object.defineProperty(error, COMMIT_PHASE, { value: true, enumerable: false })
  }
  return error
}

/** True when `error` was marked by markCommitPhase: the unit ran to its end and its commit failed. */
export function failedAtCommit(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { [COMMIT_PHASE]?: unknown })[COMMIT_PHASE] === true
  )
}
