/**
 * The Postgres store's commit path: a CommitPlan as one `user_engine_commit` statement, or with group commit
 * several plans as one `user_engine_commit_batch` statement (group-commit.ts queues them), and the typed
 * error each caller gets.
 */
import {
  ConflictError,
  ErrorCode,
  type ErrorDetails,
  NotFoundError,
  UserEngineError,
} from '../../domain/errors.js'
import { shownId } from '../../domain/ids.js'
import type { CommitPlan } from '../commit-plan.js'
import type { SqlDriver } from './driver/driver.js'
import {
  answerTimeoutOf,
  isConnectionError,
  sanitizeDatabaseError,
  sqlState,
  toStoreError,
  whereFailed,
} from './driver/errors.js'
import { GroupCommitter } from './group-commit.js'
import { SQL } from './sql.js'

/**
 * A plan with refuseSuspendedTenant: user_engine_commit runs only when the tenant record is not suspended
 * (CASE evaluates the call lazily); `refused` is 'suspended' when it did not run. One statement, so a
 * registration needs no read of the tenant before its commit.
 */
export const COMMIT_UNLESS_SUSPENDED = `SELECT CASE WHEN EXISTS (
    SELECT 1 FROM user_engine_records r
    WHERE r.tenant_id = $1 AND r.record_type = 'tenant' AND r.record_id = $1 AND r.payload->>'status' = 'suspended')
  THEN 'suspended' ELSE user_engine_commit($1, $2::jsonb, $3::jsonb, $4::jsonb, $5::timestamptz)::text END AS refused`

/**
 * Group commit with plans that refuse a suspended tenant, on schemas 11 and 12 (from 13 the batch function
 * refuses them itself): such a unit whose tenant is suspended is left out of the batch and reported as UE005;
 * the others go to user_engine_commit_batch, whose unit indexes are mapped back to the statement's. The
 * statuses are read once, before any unit applies. It costs the server about a quarter of a batch of four
 * (110-150 µs a registration, docs/performance.md).
 */
export const COMMIT_BATCH_UNLESS_SUSPENDED = `WITH units AS MATERIALIZED (
    SELECT u.ord::integer - 1 AS unit_index, u.unit,
      (u.unit ? 'refuseSuspendedTenant') AND EXISTS (
        SELECT 1 FROM user_engine_records r
        WHERE r.tenant_id = u.unit->>'tenantId' AND r.record_type = 'tenant' AND r.record_id = u.unit->>'tenantId'
          AND r.payload->>'status' = 'suspended') AS suspended
    FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS u(unit, ord)
  ), kept AS MATERIALIZED (
    SELECT unit_index, (row_number() OVER (ORDER BY unit_index))::integer - 1 AS position, unit
    FROM units WHERE NOT suspended
  )
  SELECT k.unit_index, b.sql_state, b.error_detail, b.constraint_name, b.table_name, b.column_name
  FROM user_engine_commit_batch((SELECT coalesce(jsonb_agg(unit ORDER BY unit_index), '[]'::jsonb) FROM kept)) b
  JOIN kept k ON k.position = b.unit_index
  UNION ALL
  SELECT unit_index, 'UE005', NULL, NULL, NULL, NULL FROM units WHERE suspended`

/** The schema version that added user_engine_commit_batch. */
const GROUP_COMMIT_SCHEMA = 11
/** The schema version from which user_engine_commit_batch refuses a suspended tenant itself (UE005). */
const BATCH_REFUSES_SUSPENDED_SCHEMA = 13

/**
 * Group commit statements in flight at once on a server: while one waits for its WAL flush the next gathers
 * and runs. 2 against 1, 3 and 4 on a quiet machine (docs/performance.md, "Statement slots"): with 4, 8 callers
 * mostly sent one registration a statement, no faster than group commit off; with 1, each batch waited for
 * its flush with the server idle.
 */
export const SERVER_STATEMENTS_IN_FLIGHT = 2

const IDENTIFIER_INDEX = 'user_engine_identifier_value_key'

export interface PostgresCommitsHooks {
  /** Group commit on (the store's `groupCommit` option or USER_ENGINE_GROUP_COMMIT). */
  readonly groupCommit: boolean
  /** Called after a commit with events: wakes the relays waiting in this process. */
  readonly committed: () => void
  /** The schema version the store runs on: below 11 there is no batch function, and commits go one by one. */
  readonly schemaVersion: () => number
}

export class PostgresCommits {
  readonly #driver: SqlDriver
  readonly #hooks: PostgresCommitsHooks
  /** Null when group commit is off. */
  readonly #committer: GroupCommitter | null

  constructor(driver: SqlDriver, hooks: PostgresCommitsHooks) {
    this.#driver = driver
    this.#hooks = hooks
    this.#committer = hooks.groupCommit
      ? new GroupCommitter(
          { one: (plan) => this.commitOne(plan), many: (plans) => this.commitMany(plans) },
          {
            // PGlite is one connection: a second statement would only wait behind the first.
            maxInFlight: driver.kind === 'pglite' ? 1 : SERVER_STATEMENTS_IN_FLIGHT,
            // A frozen server makes each connect wait its 10 s: the commits queued behind one fail with it.
            outage: (error) =>
              NOT_SENT.has(error as object) ? notSent(error as UserEngineError) : undefined,
          },
        )
      : null
  }

  /**
   * Through the group committer when it is on and the schema has user_engine_commit_batch (an older schema,
   * allowed by requireLatestSchema: false, commits one by one).
   */
  commit(plan: CommitPlan): Promise<void> {
    if (this.#committer === null || this.#hooks.schemaVersion() < GROUP_COMMIT_SCHEMA)
      return this.commitOne(plan)
    return this.#committer.commit(plan)
  }

  /** Whether commits honour CommitPlan.refuseSuspendedTenant (statements in this file, no schema change). */
  refusesSuspendedTenant(): boolean {
    return true
  }

  /** Sends the commits already queued and waits for their answers. */
  async drain(): Promise<void> {
    await this.#committer?.drain()
  }

  /** The plan as one statement. The function raises UE00x with the failing write's index as DETAIL. */
  async commitOne(plan: CommitPlan): Promise<void> {
    let refused = false
    try {
      const params = [
        plan.tenantId,
        JSON.stringify(plan.writes),
        JSON.stringify(plan.audit),
        JSON.stringify(plan.events),
        plan.now,
      ]
      if (plan.refuseSuspendedTenant === true) {
        const { rows } = await this.#driver.query<{ refused: string }>(COMMIT_UNLESS_SUSPENDED, params)
        refused = rows[0]?.refused === 'suspended'
      } else await this.#driver.query(SQL.commit, params)
    } catch (error) {
      throw commitError(plan, error)
    }
    if (refused) throw suspendedError(plan)
    if (plan.events.length > 0) this.#hooks.committed()
  }

  /**
   * Several plans as one statement and one transaction, each in a subtransaction of its own. Returns, per
   * plan, null (committed, durable once the statement returned) or the error a commit of its own would
   * have raised: a failing unit's row carries user_engine_commit's SQLSTATE, DETAIL and constraint, typed by
   * #commitError as for a single commit. When the statement fails as a whole with an error the server
   * reported (a cancel, a statement timeout), it applied nothing, and each plan is sent again alone. When
   * its outcome is unknown (the connection was lost), every caller gets STORE_UNAVAILABLE, "may or may not
   * have been applied", and nothing is resent.
   */
  async commitMany(plans: readonly CommitPlan[]): Promise<Array<unknown | null>> {
    let rows: BatchFailureRow[]
    try {
      const units = plans.map((p) => ({
        tenantId: p.tenantId,
        now: p.now,
        writes: p.writes,
        audit: p.audit,
        events: p.events,
        ...(p.refuseSuspendedTenant === true ? { refuseSuspendedTenant: true } : {}),
      }))
      const statement =
        this.#hooks.schemaVersion() < BATCH_REFUSES_SUSPENDED_SCHEMA &&
        plans.some((p) => p.refuseSuspendedTenant === true)
          ? COMMIT_BATCH_UNLESS_SUSPENDED
          : SQL.commitBatch
      rows = (await this.#driver.query<BatchFailureRow>(statement, [JSON.stringify(units)])).rows
    } catch (error) {
      if (sqlState(error) === null || isConnectionError(error)) {
        return plans.map((plan) => commitError(plan, error))
      }
      // The server reported an error for the statement as a whole, so it rolled all of it back: each plan
      // is sent once more on its own, in order, and its caller gets what that commit gets.
      const outcomes: Array<unknown | null> = []
      for (const plan of plans) {
        outcomes.push(
          await this.commitOne(plan).then(
            () => null,
            (e: unknown) => e,
          ),
        )
      }
      return outcomes
    }
    const failures = new Map(rows.map((r) => [Number(r.unit_index), r]))
    const outcomes = await Promise.all(
      plans.map(async (plan, i): Promise<unknown | null> => {
        const row = failures.get(i)
        if (row === undefined) return null
        // A deadlock with another process's transaction rolled this unit back alone while the batch
        // committed: it was not applied, so it is sent once more on its own, as a commit of its own would
        // have been decided by the lock order.
        if (row.sql_state === '40P01') {
          return this.commitOne(plan).then(
            () => null,
            (error: unknown) => error,
          )
        }
        return commitError(plan, failureError(row))
      }),
    )
    if (plans.some((p, i) => outcomes[i] === null && p.events.length > 0)) this.#hooks.committed()
    return outcomes
  }
}

/** Commit errors raised before the statement was sent: no connection could be had. */
const NOT_SENT = new WeakSet<object>()

/**
 * A commit that never left: the driver could not get a connection (its connect step raises the only
 * STORE_UNAVAILABLE that carries no outcome). Nothing was applied, and the caller is told so.
 */
function notSent(error: UserEngineError): UserEngineError {
  const base = error.message.replace(/; the commit was not sent$/, '')
  const typed = new UserEngineError(ErrorCode.STORE_UNAVAILABLE, `${base}; the commit was not sent`, {
    details: { ...error.details, outcome: 'not_applied' },
    ...(error.cause === undefined ? {} : { cause: error.cause }),
  })
  NOT_SENT.add(typed)
  return typed
}

/** The typed error of a commit the server refused: as the memory store raises it, with ids only. */
function commitError(plan: CommitPlan, error: unknown): unknown {
  if (
    error instanceof UserEngineError &&
    error.code === ErrorCode.STORE_UNAVAILABLE &&
    error.details?.outcome === undefined
  ) {
    return notSent(error)
  }
  const state = sqlState(error)
  const cause = sanitizeDatabaseError(error)
  const detail = (error as { detail?: unknown }).detail
  // DETAIL is the index of the failing write (never a value); anything else is ignored.
  const index = typeof detail === 'string' && /^\d{1,6}$/.test(detail) ? Number(detail) : -1
  const w = plan.writes[index]
  const name = w ? `${w.type} ${shownId(w.id)}` : 'a record'
  const ids: ErrorDetails = w ? { recordType: w.type, recordId: shownId(w.id) } : {}
  if (state === 'UE001') {
    return new ConflictError(ErrorCode.ALREADY_EXISTS, `${name} already exists`, { details: ids, cause })
  }
  if (state === 'UE002') {
    const expected: ErrorDetails = w && w.op !== 'insert' ? { expectedVersion: w.expectedVersion } : {}
    return new ConflictError(ErrorCode.VERSION_CONFLICT, `${name} is not at the expected version`, {
      details: { ...ids, ...expected },
      cause,
    })
  }
  if (state === 'UE005') return suspendedError(plan)
  if (state === 'UE004') {
    return new NotFoundError(`tenant ${shownId(plan.tenantId)} not found`, {
      details: { tenantId: shownId(plan.tenantId) },
      cause,
    })
  }
  const racedIndex = state === '23505' && cause.constraint === IDENTIFIER_INDEX
  if (state === 'UE003' || racedIndex) {
    // A racing commit took the value between our check and our write: the unique index has no write
    // index to report, so name the identifier when this commit writes only one.
    const target =
      w ??
      (() => {
        const candidates = plan.writes.filter((x) => x.type === 'identifier' && x.op !== 'delete')
        return candidates.length === 1 ? candidates[0] : undefined
      })()
    const kind = target && target.op !== 'delete' ? String(target.payload.kind) : 'identifier'
    const which = target ? `identifier ${shownId(target.id)} (${kind})` : 'an identifier'
    return new ConflictError(
      ErrorCode.DUPLICATE_IDENTIFIER,
      `${which}: the value is already taken in tenant ${shownId(plan.tenantId)}`,
      {
        details: target ? { kind, recordType: 'identifier', recordId: shownId(target.id) } : { kind },
        cause,
      },
    )
  }
  if (isConnectionError(error)) {
    const timeoutMs = answerTimeoutOf(error)
    const { at, details } = whereFailed(error)
    return new UserEngineError(
      ErrorCode.STORE_UNAVAILABLE,
      timeoutMs === undefined
        ? `the database${at} is unavailable; the commit may or may not have been applied`
        : `the database${at} did not answer within ${timeoutMs} ms (queryTimeoutMs); the commit may or may not have been applied`,
      // details.outcome tells this apart from a failure before anything was sent, without reading the message.
      {
        cause,
        details: { ...details, outcome: 'unknown', ...(timeoutMs === undefined ? {} : { timeoutMs }) },
      },
    )
  }
  return toStoreError(error, 'commit')
}

/** A plan with refuseSuspendedTenant whose tenant is suspended: as the engine raises it, nothing written. */
function suspendedError(plan: CommitPlan): UserEngineError {
  return new UserEngineError(ErrorCode.TENANT_SUSPENDED, `tenant ${shownId(plan.tenantId)} is suspended`, {
    details: { tenantId: shownId(plan.tenantId) },
  })
}

/** A row of user_engine_commit_batch: one unit that failed, and how. */
interface BatchFailureRow {
  unit_index: number
  sql_state: string | null
  error_detail: string | null
  constraint_name: string | null
  table_name: string | null
  column_name: string | null
}

/** The error a unit's own commit would have raised, in the driver's shape (code, detail, constraint...). */
function failureError(row: BatchFailureRow): Error {
  return Object.assign(new Error('a unit of work in a group commit failed'), {
    code: row.sql_state ?? undefined,
    detail: row.error_detail ?? undefined,
    constraint: row.constraint_name || undefined,
    table: row.table_name || undefined,
    column: row.column_name || undefined,
  })
}
