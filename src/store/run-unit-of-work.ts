import { BufferedUnitOfWork, type RowSource } from './buffered-unit-of-work.js'
import { markCommitPhase } from './commit-phase.js'
import type { CommitPlan } from './commit-plan.js'
import type { UnitOfWork } from './unit-of-work.js'

/** What `runUnitOfWork` needs from a store for one transaction. */
export interface UnitOfWorkRun<T> {
  readonly tenantId: string
  /** The store's committed reads of that tenant. */
  readonly reads: RowSource
  /** The caller's callback: reads, then buffers writes, audit records and events. */
  readonly work: (tx: UnitOfWork) => Promise<T>
  /** Applies the plan atomically, or throws and applies nothing. */
  readonly commit: (plan: CommitPlan) => void | Promise<void>
  /** The commit honours CommitPlan.refuseSuspendedTenant (UnitOfWork.refuseSuspendedTenant returns true). */
  readonly refusesSuspendedTenant?: boolean
}

/**
 * One transaction the way both shipped stores run it: `work` on a fresh unit, then `commit` with its plan,
 * unless `work` threw (nothing is written, the error is rethrown unchanged) or buffered nothing (no round
 * trip, and rule 7 is not checked). An error `commit` throws is marked with markCommitPhase, so the engine
 * knows the unit ran to its end and may retry it on fresh reads.
 */
export async function runUnitOfWork<T>(run: UnitOfWorkRun<T>): Promise<T> {
  const { tenantId, reads, work, commit } = run
  const uow = new BufferedUnitOfWork(tenantId, reads, {
    refusesSuspendedTenant: run.refusesSuspendedTenant === true,
  })
  let result: T
  try {
    result = await work(uow)
  } catch (error) {
    uow.abandon()
    throw error
  }
  const plan = uow.toCommitPlan()
  if (uow.isEmpty) return result
  try {
    await commit(plan)
  } catch (error) {
    throw markCommitPhase(error)
  }
  return result
}
