import type { AggregateType, AuditData, JsonValue, RecordType } from '../domain/records.js'
import type { StoredRow } from './stored-row.js'

/**
 * One buffered write, in the order the unit of work made it. `op` names the kind of write; the field names are
 * the JSON the Postgres commit function reads (`w->>'op'`), so they stay as they are.
 */
export type WriteOp =
  | {
      readonly op: 'insert'
      readonly type: RecordType
      readonly id: string
      readonly userId: string | null
      readonly payload: StoredRow['payload']
    }
  | {
      readonly op: 'update'
      readonly type: RecordType
      readonly id: string
      readonly userId: string | null
      readonly expectedVersion: number
      readonly payload: StoredRow['payload']
    }
  | {
      readonly op: 'delete'
      readonly type: RecordType
      readonly id: string
      readonly userId: string | null
      readonly expectedVersion: number
    }

export interface AuditRow {
  readonly id: string
  readonly action: string
  readonly userId: string | null
  readonly actorId: string | null
  readonly requestId: string | null
  readonly ip: string | null
  readonly userAgent: string | null
  readonly data: AuditData
}

export interface EventRow {
  readonly id: string
  readonly aggregateType: AggregateType
  readonly aggregateId: string
  readonly sequence: number
  readonly position: number
  readonly type: string
  readonly payload: { readonly [key: string]: JsonValue }
}

/**
 * Everything one unit of work commits: what a store applies atomically. A store's whole write path is
 * "apply this plan or nothing", which is what lets a SQL store send it as one statement.
 */
export interface CommitPlan {
  readonly tenantId: string
  readonly now: string
  readonly writes: readonly WriteOp[]
  readonly audit: readonly AuditRow[]
  readonly events: readonly EventRow[]
  /**
   * Set only for a store that asked for it (UnitOfWorkRun.refusesSuspendedTenant): the commit fails with
   * TENANT_SUSPENDED and writes nothing when the tenant record's status is `suspended`.
   */
  readonly refuseSuspendedTenant?: true
}
