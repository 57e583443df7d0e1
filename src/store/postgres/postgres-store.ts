// Long on purpose: one class implementing the store contract over SqlDriver (its reads, schema administration
// and lifecycle); its SQL, commit path, outbox, throttle and queueing live in files of their own.
import { decodeIdCursor, decodeValueCursor, encodeCursor, encodeValueCursor } from '../../domain/cursor.js'
import { ErrorCode, SchemaError, UserEngineError, ValidationError } from '../../domain/errors.js'
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
  compareCodePoints,
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
import { toStoreError } from './driver/errors.js'
import { PostgresCommits } from './postgres-commits.js'
import { PostgresOutbox } from './postgres-outbox.js'
import { PostgresThrottle } from './postgres-throttle.js'
import {
  assertValidHistory,
  compareHistory,
  createMigrator,
  type MigrationStatus,
  readSchemaHistory,
} from './schema/runner.js'
import { countPrefixStatement, listAuditStatement, listUsersStatement, type PrefixRange, SQL } from './sql.js'
import { isoFromTimestamptz, isoOf } from './timestamp-text.js'

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
  /** Present when the page asked for identifiers: a line per identifier (see sql.ts), or null for none. */
  identifiers?: string | null
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

/** A JSON value's text as the string the record holds: most values are a plain quoted string, sliced. */
const jsonString = (text: string): string =>
  text.charCodeAt(0) === 34 && !text.includes('\\') ? text.slice(1, -1) : String(JSON.parse(text))

/**
 * Listed users' identifiers from sql.ts IDENTIFIER_LINES' lines `<user id> <id> <kind> <verified> <value as JSON>`,
 * by user id, each user's in id order.
 */
function decodeIdentifiers(text: string | null | undefined): Map<string, ListedIdentifier[]> {
  const byUser = new Map<string, ListedIdentifier[]>()
  if (!text) return byUser
  for (const line of text.split('\n')) {
    const a = line.indexOf(' ')
    const b = line.indexOf(' ', a + 1)
    const c = line.indexOf(' ', b + 1)
    const d = line.indexOf(' ', c + 1)
    const userId = line.slice(0, a)
    const identifier: ListedIdentifier = {
      id: line.slice(a + 1, b),
      kind: line.slice(b + 1, c) as IdentifierKind,
      value: jsonString(line.slice(d + 1)),
      verified: line.slice(c + 1, d) === 'true',
    }
    const list = byUser.get(userId)
    if (list) list.push(identifier)
    else byUser.set(userId, [identifier])
  }
  // Id order, as the reference store lists them; ids are ASCII, so `<` is code-point order here.
  for (const list of byUser.values()) {
    if (list.length > 1) list.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
  }
  return byUser
}

const toStoredRow = (r: RecordDbRow): StoredRow => ({
  type: r.record_type,
  id: r.record_id,
  userId: r.user_id,
  version: Number(r.version),
  payload: r.payload,
  createdAt: isoOf(r.created_at),
  updatedAt: isoOf(r.updated_at),
})

/** A ROW of text values (the driver's queryText) as a StoredRow. */
const storedRowOfText = (r: (string | null)[]): StoredRow => ({
  type: r[0] as RecordType,
  id: r[1] as string,
  userId: r[2] ?? null,
  version: Number(r[3]),
  payload: JSON.parse(r[4] as string) as StoredRow['payload'],
  createdAt: isoFromTimestamptz(r[5] as string),
  updatedAt: isoFromTimestamptz(r[6] as string),
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
  readonly #commits: PostgresCommits

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
    this.#commits = new PostgresCommits(driver, {
      groupCommit: options.groupCommit ?? groupCommitFromEnv(),
      committed: () => this.outbox.committed(),
      schemaVersion: () => this.#schemaVersion,
    })
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
    // Once the schema is known to be ready it is not read again, but the database is still asked: a probe
    // must not report ready while the server is down (STORE_UNAVAILABLE then, as any call).
    if (schemaVersion >= this.#requiredVersion) await this.#rows('readiness', 'SELECT 1', [])
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
        return this.#commits.commit(plan)
      },
      refusesSuspendedTenant: this.#commits.refusesSuspendedTenant(),
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
    let rows = await this.#rows<ListedUserDbRow>('listUsers', statement.text, statement.values)
    // A page by id with identifiers has one more row holding them all, its record columns null (sql.ts). The
    // statement has no ORDER BY over its union, so the users are put in id order here rather than assumed to
    // be (the sort makes one pass over rows already in order).
    let ofPage: Map<string, ListedIdentifier[]> | undefined
    if (includeIdentifiers && !prefix) {
      ofPage = decodeIdentifiers(rows.find((r) => r.record_type === null)?.identifiers)
      rows = rows
        .filter((r) => r.record_type !== null)
        .sort((x, y) => compareCodePoints(x.record_id, y.record_id))
    }
    const items = rows.slice(0, limit).map((r): ListedUser => {
      const user = recordCodec.user.fromRow(tenantId, toStoredRow(r))
      if (!includeIdentifiers) return user
      const identifiers = (ofPage ?? decodeIdentifiers(r.identifiers)).get(r.record_id) ?? []
      // Into the new record, not `{ ...user, identifiers }`: on Node 20 a spread with a property added costs
      // about 3 µs an object, the better part of the client's time for identifiers on a page of 50.
      return Object.assign(user, { identifiers })
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
    const r = await this.#sessionRow(tenantId, sessionId)
    if (r === undefined) return null
    const [userId, version, payload, createdAt, updatedAt, tenantStatus] = r
    const row: StoredRow = {
      type: 'session',
      id: sessionId,
      userId: userId as string,
      version: Number(version),
      payload: (typeof payload === 'string' ? JSON.parse(payload) : payload) as StoredRow['payload'],
      // ISO text already (SQL.findSession formats them), so the hot path parses no Date.
      createdAt: createdAt as string,
      updatedAt: updatedAt as string,
    }
    return { session: recordCodec.session.fromRow(tenantId, row), tenantStatus: tenantStatus as TenantStatus }
  }

  /**
   * SQL.findSession's row as an array in select order: the server's text through the driver's `queryText`
   * (no row description, no value parsing), else the driver's parsed values.
   */
  async #sessionRow(tenantId: string, sessionId: string): Promise<readonly unknown[] | undefined> {
    const params = [tenantId, sessionId]
    if (this.driver.queryText !== undefined)
      return (await this.#textRows('findSession', SQL.findSession, params))[0]
    const [o] = await this.#rows<Record<string, unknown>>('findSession', SQL.findSession, params)
    return o && [o.user_id, o.version, o.payload, o.created_at, o.updated_at, o.tenant_status]
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
    await this.#commits.drain()
    // A NOTIFY still owed to relays elsewhere goes now, not after the interval.
    await this.outbox.flushNotify()
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
      readUserRows: (userId, type) => this.#records(SQL.readUserRows, [tenantId, userId, type]),
    }
  }

  async #one(sql: string, params: readonly string[]): Promise<StoredRow | null> {
    return (await this.#records(sql, params))[0] ?? null
  }

  /**
   * Rows of a statement selecting SQL's ROW columns, in that order. Through the driver's `queryText` when it
   * has one: no row description is sent or parsed and no Date is built (timestamp-text.ts), which is most of
   * a point read's client work.
   */
  async #records(sql: string, params: readonly string[]): Promise<StoredRow[]> {
    if (this.driver.queryText === undefined)
      return (await this.#rows<RecordDbRow>('read', sql, params)).map(toStoredRow)
    return (await this.#textRows('read', sql, params)).map(storedRowOfText)
  }

  /** #rows through the driver's `queryText` (which the caller has checked it has): rows of the server's text. */
  async #textRows(what: string, sql: string, params: readonly string[]): Promise<(string | null)[][]> {
    const pending = this.#readiness()
    if (pending !== undefined) await pending
    try {
      return await (this.driver.queryText as NonNullable<SqlDriver['queryText']>).call(
        this.driver,
        sql,
        params,
      )
    } catch (error) {
      throw toStoreError(error, what)
    }
  }

  async #rows<R>(what: string, sql: string, params: readonly unknown[]): Promise<R[]> {
    const pending = this.#readiness()
    if (pending !== undefined) await pending
    try {
      return (await this.driver.query<R>(sql, params)).rows
    } catch (error) {
      throw toStoreError(error, what)
    }
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

  /** #assertUsable with nothing to wait for once the schema is ready: undefined then (reads skip an await). */
  #readiness(): Promise<void> | undefined {
    this.#assertOpen()
    return this.#schemaVersion >= this.#requiredVersion ? undefined : this.#assertUsable()
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
