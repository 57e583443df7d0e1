export {
  BufferedUnitOfWork,
  type RowSource,
  runUnitOfWork,
  type UnitOfWorkRun,
} from './buffered-unit-of-work.js'
export { failedAtCommit, markCommitPhase } from './commit-phase.js'
export type * from './commit-plan.js'
export * from './schema-admin.js'
export type * from './store.js'
export { recordCodec, type StoredRow } from './stored-row.js'
export type * from './unit-of-work.js'
