// Long on purpose: one class implementing the store contract over SqlDriver (reads, commit, group commit's
// sender, error mapping); its SQL, outbox, throttle and queueing live in files of their own.
import { decodeIdCursor, decodeValueCursor, encodeCursor, encodeValueCursor } from '../../domain/cursor.js'
import {
  ConflictError,
  ErrorCode,
  type ErrorDetails,
  NotFoundError,
  SchemaError,
  UserEngineError,
  ValidationError,
} from '../../domain/errors.js'
import { shownId } from '../../domain/ids.js'
import type {
  AuditData,
  AuditRecord,
  FactorRecord,
  IdentifierKind,
  IdentifierRecord,
  JsonValue,
  RecordType,
  TenantRecord,
  TenantStatus,
  UserRecord,
} from '../../domain/records.js'
import {
  type IdentifierPrefix,
  prefixUpperBound,
  validateCountUsersQuery,
  validateListUsersQuery,
} from '../../domain/user-queries.js'
import {
  assertFunction,
  assertId,
  assertIdentifierLookup,
  assertIntegerInRange,
  assertOptionalBoolean,
  optionsObject,
  validateListAuditQuery,
  validateListSealedFactorsQuery,
  validateListTenantsQuery,
  validatePurgeExpiredQuery,
} from '../../domain/validation.js'
import type { RowSource } from '../buffered-unit-of-work.js'
import type { CommitPlan } from '../commit-plan.js'
import { runUnitOfWork } from '../run-unit-of-work.js'
import type { SchemaAdministration, SchemaStatus } from '../schema-admin.js'
import { DIAGNOSTIC_COUNT_KEYS, LATEST_SCHEMA_VERSION } from '../schema-versions.js'
import { countSealedByKeyId } from '../sealed-keys.js'
import type {
  CountUsersQuery,
  Diagnostics,
  ListAuditQuery,
  ListedIdentifier,
  ListedUser,
  ListSealedFactorsQuery,
  ListTenantsQuery,
  ListUsersQuery,
  MigrateResult,
  Page,
  PurgeExpiredQuery,
  PurgeExpiredResult,
  Readiness,
  SessionLookup,
  StoreCapabilities,
  UserEngineStore,
} from '../store.js'
import { recordCodec, type StoredRow } from '../stored-row.js'
import type { UnitOfWork } from '../unit-of-work.js'
import type { SqlDriver } from './driver/driver.js'
import { isConnectionError, sanitizeDatabaseError, sqlState, toStoreError } from './driver/errors.js'
import { GroupCommitter } from './group-commit.js'
import { isoOf, PostgresOutbox } from './postgres-outbox.js'
import { PostgresThrottle } from './postgres-throttle.js'
import {
  assertValidHistory,
  compareHistory,
  createMigrator,
  type MigrationStatus,
  readSchemaHistory,
} from './schema/runner.js'
import { countPrefixStatement, listAuditStatement, listUsersStatement, type PrefixRange, SQL } from './sql.js'

export interface PostgresStoreOptions {
  /** How long `migrate()` waits for another process's migration lock. Default 60 000 ms. */
  readonly migrationLockTimeoutMs?: number
  /**
   * Default true: reads and writes need the schema at LATEST_SCHEMA_VERSION. False lets the store work on
   * any migrated version (1+), for upgrade tests and rolling deploys where the code lands before `migrate`.
   */
  readonly requireLatestSchema?: boolean
  /**
   * Group commit (default true; needs schema version 11): commits that become ready while another is in
   * flight go together as one statement, one transaction and one WAL flush, each unit in a subtransaction
   * of its own, so a failing unit rolls back alone with the error it would get alone. A lone commit is sent
   * at once, as before. False sends every commit on its own. Unset, the environment variable
   * USER_ENGINE_GROUP_COMMIT (`on` or `off`) decides. See docs/performance.md.
   */
  readonly groupCommit?: boolean
}

/** The keys of PostgresStoreOptions, for factories that accept them among their own. */
export const POSTGRES_STORE_OPTION_KEYS = [
  'migrationLockTimeoutMs',
  'requireLatestSchema',
  'groupCommit',
] as const

/** The schema version that added user_engine_commit_batch. */
const GROUP_COMMIT_SCHEMA = 11

/**
 * Group commit statements in flight at once on a server: while one waits for its WAL flush the next gathers
 * and runs. Measured against 1 and 4 in docs/performance.md.
 */
const SERVER_STATEMENTS_IN_FLIGHT = 2

/** The longest lock wait `migrationLockTimeoutMs` accepts: a day. */
const MAX_LOCK_TIMEOUT_MS = 86_400_000

/**
 * Checks store options (VALIDATION on a non-object, an unknown key or a wrong-typed value). `what` names the
 * caller in messages; `extraKeys` are the calling factory's own options, checked by it.
 */
export function validatePostgresStoreOptions(
  options: unknown,
  what = 'PostgresUserEngineStore.open options',
  extraKeys: readonly string[] = [],
): PostgresStoreOptions {
  const o = optionsObject(options, what, [...extraKeys, ...POSTGRES_STORE_OPTION_KEYS])
  if (o.migrationLockTimeoutMs !== undefined) {
    assertIntegerInRange(o.migrationLockTimeoutMs, `${what}.migrationLockTimeoutMs`, 0, MAX_LOCK_TIMEOUT_MS)
  }
  assertOptionalBoolean(o.requireLatestSchema, `${what}.requireLatestSchema`)
  assertOptionalBoolean(o.groupCommit, `${what}.groupCommit`)
  const valid: { migrationLockTimeoutMs?: number; requireLatestSchema?: boolean; groupCommit?: boolean } = {}
  if (o.migrationLockTimeoutMs !== undefined) valid.migrationLockTimeoutMs = o.migrationLockTimeoutMs
  if (o.requireLatestSchema !== undefined) valid.requireLatestSchema = o.requireLatestSchema
  if (o.groupCommit !== undefined) valid.groupCommit = o.groupCommit
  return valid
}

/** USER_ENGINE_GROUP_COMMIT: `on` (the default when unset or empty) or `off`; anything else is VALIDATION. */
function groupCommitFromEnv(): boolean {
  const value = process.env.USER_ENGINE_GROUP_COMMIT?.trim().toLowerCase()
  if (value === undefined || value === '' || value === 'on') return true
  if (value === 'off') return false
  throw new ValidationError('USER_ENGINE_GROUP_COMMIT must be on or off', {
    details: { field: 'USER_ENGINE_GROUP_COMMIT' },
  })
}

const DRIVER_FUNCTIONS = ['query', 'exec', 'session', 'close'] as const

/** A driver is what the adapters in this folder return: kind postgres or pglite, and four functions. */
function assertDriver(driver: unknown): asserts driver is SqlDriver {
  const d = driver as Record<string, unknown> | null
  const missing =
    typeof d !== 'object' || d === null ? 'query' : DRIVER_FUNCTIONS.find((f) => typeof d[f] !== 'function')
  if (missing !== undefined || (d?.kind !== 'postgres' && d?.kind !== 'pglite')) {
    throw new ValidationError(
      'PostgresUserEngineStore.open needs a SqlDriver (kind postgres or pglite, with query, exec, session and close functions): use createNodePostgresDriver or createPgliteDriver',
      { details: { field: 'driver' } },
    )
  }
}

interface RecordDbRow {
  record_type: RecordType
  record_id: string
  user_id: string | null
  version: number
  payload: { [key: string]: JsonValue }
  created_at: Date | string
  updated_at: Date | string
}

interface ListedUserDbRow extends RecordDbRow {
  /** Present when the page asked for identifiers: `[id, payload]` per identifier, or null for none. */
  identifiers?: Array<[string, { [key: string]: JsonValue }]> | null
  /** Present on a prefix search: the user's least matching value, the page's order and cursor. */
  match_value?: string
}

/** An audit row; `found` is false-y only in the row of nulls a cursor with no later records yields. */
interface AuditDbRow {
  found: boolean
  id: string | null
  occurred_at: Date | string
  action: string
  user_id: string | null
  actor_id: string | null
  request_id: string | null
  client_ip: string | null
  user_agent: string | null
  data: AuditData
}

/** The schema version that added the request context columns and the audit id index. */
const REQUEST_CONTEXT_SCHEMA = 8

const toRange = ({ kind, prefix }: IdentifierPrefix): PrefixRange => ({
  kind,
  lower: prefix,
  upper: prefixUpperBound(prefix),
})

const IDENTIFIER_INDEX = 'user_engine_identifier_value_key'

const toStoredRow = (r: RecordDbRow): StoredRow => ({
  type: r.record_type,
  id: r.record_id,
  userId: r.user_id,
  version: Number(r.version),
  payload: r.payload,
  createdAt: isoOf(r.created_at),
  updatedAt: isoOf(r.updated_at),
})

/**
 * The store on Postgres, through a node-postgres pool or embedded PGlite. Semantics are the reference
 * (memory) store's; the differences are where the work happens: a commit is the CommitPlan sent as one
 * `user_engine_commit(...)` call, so it is one round trip and atomic without BEGIN/COMMIT.
 *
 * Open one with `createNodePostgresStore` or `createPgliteStore`, or `PostgresUserEngineStore.open(driver)`.
 */
export class PostgresUserEngineStore implements UserEngineStore, SchemaAdministration {
  readonly kind: 'postgres' | 'pglite'
  readonly capabilities: StoreCapabilities
  readonly outbox: PostgresOutbox
  readonly throttle: PostgresThrottle
  /** The driver, for the CLI and tests (counting round trips, holding locks). */
  readonly driver: SqlDriver

  readonly #options: PostgresStoreOptions
  readonly #requiredVersion: number
  #schemaVersion: number
  #closed = false
  /** Null when group commit is off. */
  readonly #committer: GroupCommitter | null

  private constructor(driver: SqlDriver, schemaVersion: number, options: PostgresStoreOptions) {
    this.driver = driver
    this.kind = driver.kind
    // PGlite is one connection in one process: its claims are serialized, not isolated by row locks.
    this.capabilities =
      driver.kind === 'postgres'
        ? { concurrentInstances: true, isolatedClaims: true }
        : { concurrentInstances: false, isolatedClaims: false }
    this.#options = options
    this.#requiredVersion = options.requireLatestSchema === false ? 1 : LATEST_SCHEMA_VERSION
    this.#schemaVersion = schemaVersion
    this.outbox = new PostgresOutbox(driver, () => this.#assertUsable())
    this.throttle = new PostgresThrottle(driver, () => this.#assertUsable())
    this.#committer =
      (options.groupCommit ?? groupCommitFromEnv()) === false
        ? null
        : new GroupCommitter(
            { one: (plan) => this.#commitOne(plan), many: (plans) => this.#commitMany(plans) },
            // PGlite is one connection: a second statement would only wait behind the first.
            { maxInFlight: driver.kind === 'pglite' ? 1 : SERVER_STATEMENTS_IN_FLIGHT },
          )
  }

  /**
   * The schema status of a database without opening a store on it: unlike `open`, it reports drift and a
   * newer schema instead of refusing them (the CLI's `status`). Leaves the driver open.
   */
  static async inspectSchema(driver: SqlDriver): Promise<SchemaStatus> {
    try {
      return toSchemaStatus(await createMigrator(driver).status())
    } catch (error) {
      throw toStoreError(error, 'status')
    }
  }

  /**
   * Opens a store on a driver: reads the schema history and refuses (SCHEMA_DRIFT, SCHEMA_NEWER_THAN_CODE)
   * a database that drifted or is newer than this code, changing nothing. An unmigrated database opens;
   * it reports not ready until `migrate()`. The driver is closed when opening fails.
   */
  static async open(driver: SqlDriver, options: PostgresStoreOptions = {}): Promise<PostgresUserEngineStore> {
    assertDriver(driver)
    try {
      const valid = validatePostgresStoreOptions(options)
      const status = compareHistory(await readSchemaHistory(driver))
      assertValidHistory(status)
      return new PostgresUserEngineStore(driver, status.currentVersion, valid)
    } catch (error) {
      await driver.close().catch(() => {})
      throw toStoreError(error, 'open')
    }
  }

  async readiness(): Promise<Readiness> {
    this.#assertOpen()
    const schemaVersion = await this.#refreshSchemaVersion()
    const ready = schemaVersion >= this.#requiredVersion
    return {
      ready,
      schemaVersion,
      latestVersion: LATEST_SCHEMA_VERSION,
      reason: ready ? null : ErrorCode.SCHEMA_NOT_READY,
    }
  }

  async migrate(): Promise<MigrateResult> {
    this.#assertOpen()
    const result = await this.#migrator().migrate()
    this.#schemaVersion = result.toVersion
    return result
  }

  /** The history compared with the manifest; reports drift rather than refusing it (CLI `status`). */
  async schemaStatus(): Promise<SchemaStatus> {
    this.#assertOpen()
    return toSchemaStatus(await this.#migrator().status())
  }

  /** The SQL `migrate()` would run, each migration under a header; empty when nothing is pending. */
  async migrationPlan(): Promise<string> {
    this.#assertOpen()
    const plan = await this.#migrator().plan()
    return plan.migrations
      .map((m) => {
        const how = m.transactional
          ? 'one transaction, with its history row'
          : 'statement by statement, outside a transaction'
        return `-- migration ${m.version} (${m.name}): ${how}\n${m.sql.trim()}\n`
      })
      .join('\n')
  }

  async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    assertId(tenantId, 'tenantId')
    assertFunction(fn, 'fn')
    await this.#assertUsable()
    return runUnitOfWork({
      tenantId,
      reads: this.#rowSource(tenantId),
      work: fn,
      commit: (plan) => {
        this.#assertOpen()
        return this.#commit(plan)
      },
    })
  }

  async getTenant(tenantId: string): Promise<TenantRecord | null> {
    assertId(tenantId, 'tenantId')
    const row = await this.#one(SQL.readRow, [tenantId, 'tenant', tenantId])
    return row ? recordCodec.tenant.fromRow(tenantId, row) : null
  }

  async listTenants(query?: ListTenantsQuery): Promise<Page<TenantRecord>> {
    const { limit, cursor } = validateListTenantsQuery(query)
    const after = cursor === undefined ? '' : decodeIdCursor(cursor)
    const rows = await this.#rows<RecordDbRow & { tenant_id: string }>('listTenants', SQL.listTenants, [
      after,
      limit + 1,
    ])
    const items = rows.slice(0, limit).map((r) => recordCodec.tenant.fromRow(r.tenant_id, toStoredRow(r)))
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null }
  }

  async getUser(tenantId: string, userId: string): Promise<UserRecord | null> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    const row = await this.#one(SQL.readRow, [tenantId, 'user', userId])
    return row ? recordCodec.user.fromRow(tenantId, row) : null
  }

  async getIdentifier(
    tenantId: string,
    kind: IdentifierKind,
    value: string,
  ): Promise<IdentifierRecord | null> {
    assertId(tenantId, 'tenantId')
    assertIdentifierLookup(kind, value)
    const row = await this.#one(SQL.readIdentifierRow, [tenantId, String(kind), String(value)])
    return row ? recordCodec.identifier.fromRow(tenantId, row) : null
  }

  async findUserByIdentifier(
    tenantId: string,
    kind: IdentifierKind,
    value: string,
  ): Promise<UserRecord | null> {
    assertId(tenantId, 'tenantId')
    assertIdentifierLookup(kind, value)
    // One query where the reference store does two reads.
    const row = await this.#one(SQL.findUserByIdentifier, [tenantId, String(kind), String(value)])
    return row ? recordCodec.user.fromRow(tenantId, row) : null
  }

  async listUsers(tenantId: string, query?: ListUsersQuery): Promise<Page<ListedUser>> {
    assertId(tenantId, 'tenantId')
    const { limit, cursor, status, identifierPrefix, includeIdentifiers } = validateListUsersQuery(query)
    const prefix = identifierPrefix && toRange(identifierPrefix)
    const after = cursor === undefined ? null : prefix ? decodeValueCursor(cursor) : decodeIdCursor(cursor)
    const statement = listUsersStatement({ tenantId, limit, after, status, prefix, includeIdentifiers })
    const rows = await this.#rows<ListedUserDbRow>('listUsers', statement.text, statement.values)
    const items = rows.slice(0, limit).map((r): ListedUser => {
      const user = recordCodec.user.fromRow(tenantId, toStoredRow(r))
      if (!includeIdentifiers) return user
      const identifiers = (r.identifiers ?? [])
        .map(
          ([id, payload]): ListedIdentifier => ({
            id,
            kind: payload.kind as IdentifierKind,
            value: String(payload.value),
            verified: payload.verified === true,
          }),
        )
        // Id order, as the reference store lists them; ids are ASCII, so `<` is code-point order here.
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      return { ...user, identifiers }
    })
    const more = rows.length > limit && items.length > 0
    const last = rows[items.length - 1]
    const nextCursor =
      !more || !last ? null : prefix ? encodeValueCursor(last.match_value!) : encodeCursor(last.record_id)
    return { items, nextCursor }
  }

  async countUsers(tenantId: string, query?: CountUsersQuery): Promise<number> {
    assertId(tenantId, 'tenantId')
    const { status, identifierPrefix } = validateCountUsersQuery(query)
    const statement = identifierPrefix
      ? countPrefixStatement(tenantId, toRange(identifierPrefix), status)
      : status === undefined
        ? { text: SQL.countUsers, values: [tenantId] }
        : { text: SQL.countUsersByStatus, values: [tenantId, status] }
    const rows = await this.#rows<{ n: number | string }>('countUsers', statement.text, statement.values)
    return Number(rows[0]?.n ?? 0)
  }

  async listAudit(tenantId: string, query?: ListAuditQuery): Promise<Page<AuditRecord>> {
    assertId(tenantId, 'tenantId')
    const { limit, cursor, userId } = validateListAuditQuery(query)
    const afterId = cursor === undefined ? null : decodeIdCursor(cursor)
    await this.#assertUsable()
    const requestContext = this.#schemaVersion >= REQUEST_CONTEXT_SCHEMA
    const statement = listAuditStatement({ tenantId, limit, afterId, userId, requestContext })
    const rows = await this.#rows<AuditDbRow>('listAudit', statement.text, statement.values)
    // The cursor names no audit record of this tenant (another tenant's included): not a cursor here.
    if (afterId !== null && rows.length === 0) {
      throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
    }
    const items: AuditRecord[] = rows
      .filter((r) => r.id !== null)
      .slice(0, limit)
      .map((r) => ({
        id: r.id!,
        tenantId,
        occurredAt: isoOf(r.occurred_at),
        action: r.action,
        userId: r.user_id,
        actorId: r.actor_id,
        requestId: r.request_id,
        ip: r.client_ip,
        userAgent: r.user_agent,
        data: r.data,
      }))
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null }
  }

  async findSession(tenantId: string, sessionId: string): Promise<SessionLookup | null> {
    assertId(tenantId, 'tenantId')
    assertId(sessionId, 'sessionId')
    const [r] = await this.#rows<Omit<RecordDbRow, 'record_type'> & { tenant_status: TenantStatus }>(
      'findSession',
      SQL.findSession,
      [tenantId, sessionId],
    )
    if (!r) return null
    const row: StoredRow = {
      type: 'session',
      id: r.record_id,
      userId: r.user_id,
      version: Number(r.version),
      payload: r.payload,
      // Already ISO text (SQL.findSession formats them), so the hot path parses no Date.
      createdAt: r.created_at as string,
      updatedAt: r.updated_at as string,
    }
    return { session: recordCodec.session.fromRow(tenantId, row), tenantStatus: r.tenant_status }
  }

  async purgeExpired(tenantId: string, query: PurgeExpiredQuery): Promise<PurgeExpiredResult> {
    assertId(tenantId, 'tenantId')
    const { before, limit } = validatePurgeExpiredQuery(query)
    const rows = await this.#rows<{ record_type: string }>('purgeExpired', SQL.purgeExpired, [
      tenantId,
      before,
      limit,
    ])
    const sessions = rows.filter((r) => r.record_type === 'session').length
    return { sessions, tokens: rows.length - sessions }
  }

  async listSealedFactors(tenantId: string, query: ListSealedFactorsQuery): Promise<FactorRecord[]> {
    assertId(tenantId, 'tenantId')
    const { excludeKeyId, after, limit } = validateListSealedFactorsQuery(query)
    const rows = await this.#rows<RecordDbRow>('listSealedFactors', SQL.listSealedFactors, [
      tenantId,
      after,
      excludeKeyId,
      limit,
    ])
    return rows.map((r) => recordCodec.factor.fromRow(tenantId, toStoredRow(r)))
  }

  async diagnostics(): Promise<Diagnostics> {
    this.#assertOpen()
    const schemaVersion = await this.#refreshSchemaVersion()
    const counts: Record<string, number> = Object.fromEntries(DIAGNOSTIC_COUNT_KEYS.map((k) => [k, 0]))
    let sealedByKeyId: Readonly<Record<string, number>> = {}
    if (schemaVersion > 0) {
      const plural: Record<string, string> = {
        'record:tenant': 'tenants',
        'record:user': 'users',
        'record:identifier': 'identifiers',
        'record:profile': 'profiles',
        'record:factor': 'factors',
        'record:session': 'sessions',
        'record:token': 'tokens',
        audit: 'audit_records',
      }
      const [rows, sealed] = await Promise.all([
        this.#rows<{ key: string; n: number | string }>('diagnostics', SQL.diagnostics, []),
        this.#rows<{ key_id: string; n: number | string }>('diagnostics', SQL.sealedByKeyId, []),
      ])
      for (const r of rows) {
        const name = plural[r.key] ?? `outbox_${r.key.slice('outbox:'.length)}`
        // Only the fixed keys: nothing the database holds becomes a key.
        if (name in counts) counts[name] = Number(r.n)
      }
      sealedByKeyId = countSealedByKeyId(sealed.map((r) => ({ keyId: r.key_id, n: r.n })))
    }
    return { store: this.kind, schemaVersion, latestVersion: LATEST_SCHEMA_VERSION, counts, sealedByKeyId }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // Commits already queued are sent and answered before the driver closes.
    await this.#committer?.drain()
    // A relay's LISTEN connection is checked out of the pool: a pool ends only once it is back.
    await this.outbox.closeSubscriptions()
    await this.driver.close()
  }

  #migrator() {
    const timeout = this.#options.migrationLockTimeoutMs
    return createMigrator(this.driver, timeout === undefined ? {} : { lockTimeoutMs: timeout })
  }

  #rowSource(tenantId: string): RowSource {
    return {
      readRow: (type, id) => this.#one(SQL.readRow, [tenantId, type, id]),
      readIdentifierRow: (kind, value) => this.#one(SQL.readIdentifierRow, [tenantId, kind, value]),
      readUserRows: async (userId, type) =>
        (await this.#rows<RecordDbRow>('read', SQL.readUserRows, [tenantId, userId, type])).map(toStoredRow),
    }
  }

  async #one(sql: string, params: readonly unknown[]): Promise<StoredRow | null> {
    const rows = await this.#rows<RecordDbRow>('read', sql, params)
    return rows[0] ? toStoredRow(rows[0]) : null
  }

  async #rows<R>(what: string, sql: string, params: readonly unknown[]): Promise<R[]> {
    await this.#assertUsable()
    try {
      return (await this.driver.query<R>(sql, params)).rows
    } catch (error) {
      throw toStoreError(error, what)
    }
  }

  /**
   * Through the group committer when it is on and the schema has user_engine_commit_batch (an older schema,
   * allowed by requireLatestSchema: false, commits one by one).
   */
  #commit(plan: CommitPlan): Promise<void> {
    if (this.#committer === null || this.#schemaVersion < GROUP_COMMIT_SCHEMA) return this.#commitOne(plan)
    return this.#committer.commit(plan)
  }

  /** The plan as one statement. The function raises UE00x with the failing write's index as DETAIL. */
  async #commitOne(plan: CommitPlan): Promise<void> {
    try {
      await this.driver.query(SQL.commit, [
        plan.tenantId,
        JSON.stringify(plan.writes),
        JSON.stringify(plan.audit),
        JSON.stringify(plan.events),
        plan.now,
      ])
    } catch (error) {
      throw this.#commitError(plan, error)
    }
    if (plan.events.length > 0) this.outbox.committed()
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
  async #commitMany(plans: readonly CommitPlan[]): Promise<Array<unknown | null>> {
    let rows: BatchFailureRow[]
    try {
      const units = plans.map((p) => ({
        tenantId: p.tenantId,
        now: p.now,
        writes: p.writes,
        audit: p.audit,
        events: p.events,
      }))
      rows = (await this.driver.query<BatchFailureRow>(SQL.commitBatch, [JSON.stringify(units)])).rows
    } catch (error) {
      if (sqlState(error) === null || isConnectionError(error)) {
        return plans.map((plan) => this.#commitError(plan, error))
      }
      // The server reported an error for the statement as a whole, so it rolled all of it back: each plan
      // is sent once more on its own, in order, and its caller gets what that commit gets.
      const outcomes: Array<unknown | null> = []
      for (const plan of plans) {
        outcomes.push(
          await this.#commitOne(plan).then(
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
          return this.#commitOne(plan).then(
            () => null,
            (error: unknown) => error,
          )
        }
        return this.#commitError(plan, failureError(row))
      }),
    )
    if (plans.some((p, i) => outcomes[i] === null && p.events.length > 0)) this.outbox.committed()
    return outcomes
  }

  #commitError(plan: CommitPlan, error: unknown): unknown {
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
      return new UserEngineError(
        ErrorCode.STORE_UNAVAILABLE,
        'the database is unavailable; the commit may or may not have been applied',
        { cause },
      )
    }
    return toStoreError(error, 'commit')
  }

  /** Re-reads the version only while the store is below what it needs: once ready, it stays ready. */
  async #refreshSchemaVersion(): Promise<number> {
    if (this.#schemaVersion < LATEST_SCHEMA_VERSION) {
      try {
        const status = compareHistory(await readSchemaHistory(this.driver))
        this.#schemaVersion = status.currentVersion
      } catch (error) {
        throw toStoreError(error, 'readiness')
      }
    }
    return this.#schemaVersion
  }

  #assertOpen(): void {
    if (this.#closed) throw new UserEngineError(ErrorCode.STORE_CLOSED, 'the store is closed')
  }

  async #assertUsable(): Promise<void> {
    this.#assertOpen()
    if (this.#schemaVersion >= this.#requiredVersion) return
    const schemaVersion = await this.#refreshSchemaVersion()
    if (schemaVersion < this.#requiredVersion) {
      throw new SchemaError(ErrorCode.SCHEMA_NOT_READY, 'the store schema is not migrated; run migrate()', {
        details: { schemaVersion, latestVersion: LATEST_SCHEMA_VERSION },
      })
    }
  }
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

function toSchemaStatus(status: MigrationStatus): SchemaStatus {
  return {
    currentVersion: status.currentVersion,
    latestVersion: status.latestVersion,
    pending: status.pending.map((m) => m.version),
    drift: [
      ...status.drift.map((d) => ({
        version: d.version,
        name: d.name,
        reason: d.actualChecksum === null ? ('missing' as const) : ('checksum' as const),
      })),
      ...status.applied
        .filter((h) => status.unknownVersions.includes(h.version))
        .map((h) => ({ version: h.version, name: h.name, reason: 'unknown_version' as const })),
    ].sort((a, b) => a.version - b.version),
  }
}
