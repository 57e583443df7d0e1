// Long on purpose: the reference store, one class implementing the whole contract in memory; its outbox
// and throttle are in files of their own.
import { decodeIdCursor, decodeValueCursor, encodeCursor, encodeValueCursor } from '../../domain/cursor.js'
import {
  ConflictError,
  ErrorCode,
  NotFoundError,
  SchemaError,
  UserEngineError,
  ValidationError,
} from '../../domain/errors.js'
import { yieldIfBusy } from '../../domain/event-loop-turns.js'
import { shownId } from '../../domain/ids.js'
import type {
  AuditRecord,
  FactorRecord,
  IdentifierKind,
  IdentifierRecord,
  OutboxEntry,
  RecordType,
  TenantRecord,
  UserRecord,
  UserStatus,
} from '../../domain/records.js'
import {
  compareCodePoints,
  type IdentifierPrefix,
  validateCountUsersQuery,
  validateListUsersQuery,
} from '../../domain/user-queries.js'
import {
  assertFunction,
  assertId,
  assertIdentifierLookup,
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
import { DIAGNOSTIC_COUNT_KEYS, LATEST_SCHEMA_VERSION, SCHEMA_VERSIONS } from '../schema-versions.js'
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
import { InMemoryOutbox, type OutboxRow } from './memory-outbox.js'
import { InMemoryThrottle } from './memory-throttle.js'

interface TenantState {
  readonly rows: Map<string, StoredRow>
  /** kind + normalized value -> identifier id: the unique index. */
  readonly identifiers: Map<string, string>
  readonly audit: AuditRecord[]
  /** Audit id -> its index in `audit`: where a listing's cursor resumes. */
  readonly auditIndex: Map<string, number>
}

export interface InMemoryStoreOptions {
  /** Start with the schema at the latest version, as if `migrate()` had run. Default false. */
  readonly migrated?: boolean
}

const rowKey = (type: RecordType, id: string) => `${type}\u0000${id}`
const identifierKey = (kind: string, value: string) => `${kind}\u0000${value}`
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
// Stored rows are deep copies, so a caller mutating what it passed or got back cannot change the store.
const copy = <T>(value: T): T => structuredClone(value)

/**
 * The reference implementation of the store contract. State lives in plain maps; a commit is checked in full
 * and then applied in one synchronous step, so no other caller's await can observe half of it.
 */
export class InMemoryUserEngineStore implements UserEngineStore, SchemaAdministration {
  readonly kind = 'memory'
  readonly capabilities: StoreCapabilities = { concurrentInstances: false, isolatedClaims: false }
  readonly outbox: InMemoryOutbox
  readonly throttle: InMemoryThrottle

  readonly #tenants = new Map<string, TenantState>()
  readonly #outboxRows: OutboxRow[] = []
  readonly #refusedAuditActions = new Set<string>()
  readonly #refusedEventTypes = new Set<string>()
  #schemaVersion: number
  #closed = false

  constructor(options: InMemoryStoreOptions = {}) {
    const o = optionsObject(options, 'InMemoryUserEngineStore options', ['migrated'])
    assertOptionalBoolean(o.migrated, 'InMemoryUserEngineStore options.migrated')
    this.#schemaVersion = o.migrated ? LATEST_SCHEMA_VERSION : 0
    this.outbox = new InMemoryOutbox(this.#outboxRows, () => this.#assertUsable())
    this.throttle = new InMemoryThrottle(() => this.#assertUsable())
  }

  /**
   * Test support (the conformance harness's `refuseRows`): from now on a commit holding an audit record with
   * this action, or an event of this type, fails as a database constraint would, and writes nothing.
   */
  refuseRows(refusal: { readonly auditAction?: string; readonly eventType?: string }): void {
    const o = optionsObject(refusal, 'refuseRows refusal', ['auditAction', 'eventType'])
    if (o.auditAction !== undefined) this.#refusedAuditActions.add(String(o.auditAction))
    if (o.eventType !== undefined) this.#refusedEventTypes.add(String(o.eventType))
  }

  async readiness(): Promise<Readiness> {
    this.#assertOpen()
    const ready = this.#schemaVersion === LATEST_SCHEMA_VERSION
    return {
      ready,
      schemaVersion: this.#schemaVersion,
      latestVersion: LATEST_SCHEMA_VERSION,
      reason: ready ? null : ErrorCode.SCHEMA_NOT_READY,
    }
  }

  async migrate(): Promise<MigrateResult> {
    this.#assertOpen()
    const fromVersion = this.#schemaVersion
    const applied = SCHEMA_VERSIONS.filter((m) => m.version > fromVersion).map((m) => ({
      version: m.version,
      name: m.name,
      executionMs: 0,
    }))
    this.#schemaVersion = LATEST_SCHEMA_VERSION
    return { fromVersion, toVersion: this.#schemaVersion, applied, lockWaitMs: 0 }
  }

  async schemaStatus(): Promise<SchemaStatus> {
    this.#assertOpen()
    const pending = SCHEMA_VERSIONS.filter((m) => m.version > this.#schemaVersion).map((m) => m.version)
    return { currentVersion: this.#schemaVersion, latestVersion: LATEST_SCHEMA_VERSION, pending, drift: [] }
  }

  async migrationPlan(): Promise<string> {
    const { pending } = await this.schemaStatus()
    // The memory store has no SQL; the plan names what migrate() would mark applied.
    return pending.map((v) => `-- memory store: would apply version ${v}`).join('\n')
  }

  async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    assertId(tenantId, 'tenantId')
    assertFunction(fn, 'fn')
    this.#assertUsable()
    // Everything here resolves in promise jobs: let the event loop turn now and then (see yieldIfBusy).
    await yieldIfBusy()
    return runUnitOfWork({
      tenantId,
      reads: this.#rowSource(tenantId),
      work: fn,
      commit: (plan) => {
        this.#assertUsable()
        this.#apply(plan)
      },
    })
  }

  async getTenant(tenantId: string): Promise<TenantRecord | null> {
    assertId(tenantId, 'tenantId')
    this.#assertUsable()
    const row = this.#tenant(tenantId)?.rows.get(rowKey('tenant', tenantId))
    return row ? recordCodec.tenant.fromRow(tenantId, copy(row)) : null
  }

  async listTenants(query?: ListTenantsQuery): Promise<Page<TenantRecord>> {
    const { limit, cursor } = validateListTenantsQuery(query)
    const after = cursor === undefined ? null : decodeIdCursor(cursor)
    this.#assertUsable()
    const ids = [...this.#tenants.keys()]
      .filter((id) => (after === null || id > after) && this.#tenants.get(id)!.rows.has(rowKey('tenant', id)))
      .sort()
    const items = ids
      .slice(0, limit)
      .map((id) =>
        recordCodec.tenant.fromRow(id, copy(this.#tenants.get(id)!.rows.get(rowKey('tenant', id))!)),
      )
    const last = items[items.length - 1]
    return { items, nextCursor: ids.length > limit && last ? encodeCursor(last.id) : null }
  }

  async getUser(tenantId: string, userId: string): Promise<UserRecord | null> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    this.#assertUsable()
    const row = this.#tenant(tenantId)?.rows.get(rowKey('user', userId))
    return row ? recordCodec.user.fromRow(tenantId, copy(row)) : null
  }

  async getIdentifier(
    tenantId: string,
    kind: IdentifierKind,
    value: string,
  ): Promise<IdentifierRecord | null> {
    assertId(tenantId, 'tenantId')
    assertIdentifierLookup(kind, value)
    this.#assertUsable()
    const row = this.#identifierRow(tenantId, kind, value)
    return row ? recordCodec.identifier.fromRow(tenantId, copy(row)) : null
  }

  async findUserByIdentifier(
    tenantId: string,
    kind: IdentifierKind,
    value: string,
  ): Promise<UserRecord | null> {
    const identifier = await this.getIdentifier(tenantId, kind, value)
    return identifier ? this.getUser(tenantId, identifier.userId) : null
  }

  async listUsers(tenantId: string, query?: ListUsersQuery): Promise<Page<ListedUser>> {
    assertId(tenantId, 'tenantId')
    const { limit, cursor, status, identifierPrefix, includeIdentifiers } = validateListUsersQuery(query)
    const withIdentifiers = (state: TenantState | undefined, user: UserRecord): ListedUser =>
      includeIdentifiers ? { ...user, identifiers: this.#identifiersOf(state, user.id) } : user
    if (identifierPrefix) {
      const after = cursor === undefined ? null : decodeValueCursor(cursor)
      this.#assertUsable()
      const state = this.#tenant(tenantId)
      const matches = this.#prefixMatches(state, tenantId, identifierPrefix, status).filter(
        (m) => after === null || compareCodePoints(m.value, after) > 0,
      )
      const items = matches.slice(0, limit)
      const last = items[items.length - 1]
      return {
        items: items.map((m) => withIdentifiers(state, m.user)),
        nextCursor: matches.length > limit && last ? encodeValueCursor(last.value) : null,
      }
    }
    const after = cursor === undefined ? null : decodeIdCursor(cursor)
    this.#assertUsable()
    const state = this.#tenant(tenantId)
    const users = this.#users(state, status).filter((r) => after === null || r.id > after)
    const items = users.slice(0, limit).map((r) => recordCodec.user.fromRow(tenantId, copy(r)))
    const last = items[items.length - 1]
    return {
      items: items.map((u) => withIdentifiers(state, u)),
      nextCursor: users.length > limit && last ? encodeCursor(last.id) : null,
    }
  }

  async countUsers(tenantId: string, query?: CountUsersQuery): Promise<number> {
    assertId(tenantId, 'tenantId')
    const { status, identifierPrefix } = validateCountUsersQuery(query)
    this.#assertUsable()
    const state = this.#tenant(tenantId)
    return identifierPrefix
      ? this.#prefixMatches(state, tenantId, identifierPrefix, status).length
      : this.#users(state, status).length
  }

  async listAudit(tenantId: string, query?: ListAuditQuery): Promise<Page<AuditRecord>> {
    assertId(tenantId, 'tenantId')
    const { limit, cursor, userId } = validateListAuditQuery(query)
    const after = cursor === undefined ? null : decodeIdCursor(cursor)
    this.#assertUsable()
    const state = this.#tenant(tenantId)
    let start = 0
    if (after !== null) {
      // The cursor names a record of this tenant; any other id (another tenant's included) is not a cursor.
      const index = state?.auditIndex.get(after)
      if (index === undefined)
        throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
      start = index + 1
    }
    const all = (state?.audit ?? []).slice(start).filter((a) => userId === undefined || a.userId === userId)
    const items = all.slice(0, limit).map(copy)
    const last = items[items.length - 1]
    return { items, nextCursor: all.length > limit && last ? encodeCursor(last.id) : null }
  }

  async findSession(tenantId: string, sessionId: string): Promise<SessionLookup | null> {
    assertId(tenantId, 'tenantId')
    assertId(sessionId, 'sessionId')
    this.#assertUsable()
    const state = this.#tenant(tenantId)
    const session = state?.rows.get(rowKey('session', sessionId))
    const tenant = state?.rows.get(rowKey('tenant', tenantId))
    if (!session || !tenant) return null
    return {
      session: recordCodec.session.fromRow(tenantId, copy(session)),
      tenantStatus: recordCodec.tenant.fromRow(tenantId, tenant).status,
    }
  }

  async purgeExpired(tenantId: string, query: PurgeExpiredQuery): Promise<PurgeExpiredResult> {
    assertId(tenantId, 'tenantId')
    const { before, limit } = validatePurgeExpiredQuery(query)
    this.#assertUsable()
    const state = this.#tenant(tenantId)
    const result = { sessions: 0, tokens: 0 }
    if (!state) return result
    // Oldest expiry first, then type and id (rule 11's order); one synchronous step.
    const order = (r: StoredRow) => [String(r.payload.expiresAt), r.type, r.id] as const
    const expired = [...state.rows.entries()]
      .filter(([, r]) => (r.type === 'session' || r.type === 'token') && String(r.payload.expiresAt) < before)
      .sort(([, a], [, b]) => {
        const [x, y] = [order(a), order(b)]
        for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1
        return 0
      })
      .slice(0, limit)
    for (const [k, r] of expired) {
      state.rows.delete(k)
      if (r.type === 'session') result.sessions++
      else result.tokens++
    }
    return result
  }

  async listSealedFactors(tenantId: string, query: ListSealedFactorsQuery): Promise<FactorRecord[]> {
    assertId(tenantId, 'tenantId')
    const { excludeKeyId, after, limit } = validateListSealedFactorsQuery(query)
    this.#assertUsable()
    const rows = [...(this.#tenant(tenantId)?.rows.values() ?? [])]
      .filter((r) => r.type === 'factor' && r.id > after)
      .filter((r) => typeof r.payload.keyId === 'string' && r.payload.keyId !== excludeKeyId)
      .sort(byId)
      .slice(0, limit)
    return rows.map((r) => recordCodec.factor.fromRow(tenantId, copy(r)))
  }

  async diagnostics(): Promise<Diagnostics> {
    this.#assertOpen()
    const counts: Record<string, number> = Object.fromEntries(DIAGNOSTIC_COUNT_KEYS.map((k) => [k, 0]))
    const plural: Record<RecordType, string> = {
      tenant: 'tenants',
      user: 'users',
      identifier: 'identifiers',
      profile: 'profiles',
      factor: 'factors',
      session: 'sessions',
      token: 'tokens',
    }
    const keyIds: unknown[] = []
    for (const state of this.#tenants.values()) {
      for (const row of state.rows.values()) {
        counts[plural[row.type]]! += 1
        if (row.type === 'factor' && row.payload.keyId != null) keyIds.push(row.payload.keyId)
      }
      counts.audit_records! += state.audit.length
    }
    for (const row of this.#outboxRows) counts[`outbox_${row.status}`]! += 1
    return {
      store: this.kind,
      schemaVersion: this.#schemaVersion,
      latestVersion: LATEST_SCHEMA_VERSION,
      counts,
      sealedByKeyId: countSealedByKeyId(keyIds.map((keyId) => ({ keyId, n: 1 }))),
    }
  }

  async close(): Promise<void> {
    this.#closed = true
  }

  #rowSource(tenantId: string): RowSource {
    // Every read yields to the event loop first, so tests see the interleavings a real database would allow.
    return {
      readRow: async (type, id) => {
        await Promise.resolve()
        this.#assertUsable()
        const row = this.#tenant(tenantId)?.rows.get(rowKey(type, id))
        return row ? copy(row) : null
      },
      readIdentifierRow: async (kind, value) => {
        await Promise.resolve()
        this.#assertUsable()
        const row = this.#identifierRow(tenantId, kind, value)
        return row ? copy(row) : null
      },
      readUserRows: async (userId, type) => {
        await Promise.resolve()
        this.#assertUsable()
        const rows = [...(this.#tenant(tenantId)?.rows.values() ?? [])]
        return rows
          .filter((r) => r.type === type && r.userId === userId)
          .sort(byId)
          .map(copy)
      },
    }
  }

  /** The tenant's user rows in id order, optionally of one status. */
  #users(state: TenantState | undefined, status: UserStatus | undefined): StoredRow[] {
    if (!state) return []
    return [...state.rows.values()]
      .filter((r) => r.type === 'user' && (status === undefined || r.payload.status === status))
      .sort(byId)
  }

  /** Users with an identifier of the kind starting with the prefix, each at its least matching value, in order. */
  #prefixMatches(
    state: TenantState | undefined,
    tenantId: string,
    { kind, prefix }: IdentifierPrefix,
    status: UserStatus | undefined,
  ): Array<{ value: string; user: UserRecord }> {
    if (!state) return []
    const least = new Map<string, string>()
    for (const r of state.rows.values()) {
      if (r.type !== 'identifier' || r.payload.kind !== kind || r.userId === null) continue
      const value = String(r.payload.value)
      if (!value.startsWith(prefix)) continue
      const seen = least.get(r.userId)
      if (seen === undefined || compareCodePoints(value, seen) < 0) least.set(r.userId, value)
    }
    const out: Array<{ value: string; user: UserRecord }> = []
    for (const [userId, value] of least) {
      const row = state.rows.get(rowKey('user', userId))
      if (!row || (status !== undefined && row.payload.status !== status)) continue
      out.push({ value, user: recordCodec.user.fromRow(tenantId, copy(row)) })
    }
    return out.sort((a, b) => compareCodePoints(a.value, b.value))
  }

  #identifiersOf(state: TenantState | undefined, userId: string): ListedIdentifier[] {
    return [...(state?.rows.values() ?? [])]
      .filter((r) => r.type === 'identifier' && r.userId === userId)
      .sort(byId)
      .map((r) => ({
        id: r.id,
        kind: r.payload.kind as IdentifierKind,
        value: String(r.payload.value),
        verified: r.payload.verified === true,
      }))
  }

  #identifierRow(tenantId: string, kind: IdentifierKind, value: string): StoredRow | undefined {
    const state = this.#tenant(tenantId)
    const id = state?.identifiers.get(identifierKey(kind, value))
    return id === undefined ? undefined : state?.rows.get(rowKey('identifier', id))
  }

  #tenant(tenantId: string): TenantState | undefined {
    return this.#tenants.get(tenantId)
  }

  /** Checks every precondition against a scratch overlay, then applies all changes at once. */
  #apply(plan: CommitPlan): void {
    const state: TenantState = this.#tenants.get(plan.tenantId) ?? {
      rows: new Map(),
      identifiers: new Map(),
      audit: [],
      auditIndex: new Map(),
    }
    const rows = new Map<string, StoredRow | null>()
    const identifiers = new Map<string, string | null>()
    const current = (k: string) => (rows.has(k) ? rows.get(k)! : (state.rows.get(k) ?? null))
    const owner = (k: string) =>
      identifiers.has(k) ? identifiers.get(k)! : (state.identifiers.get(k) ?? null)

    for (const w of plan.writes) {
      const k = rowKey(w.type, w.id)
      const existing = current(k)
      if (w.op === 'insert' && existing) {
        throw new ConflictError(ErrorCode.ALREADY_EXISTS, `${w.type} ${shownId(w.id)} already exists`, {
          details: { recordType: w.type, recordId: shownId(w.id) },
        })
      }
      if (w.op !== 'insert' && existing?.version !== w.expectedVersion) {
        throw new ConflictError(
          ErrorCode.VERSION_CONFLICT,
          `${w.type} ${shownId(w.id)} is not at the expected version`,
          {
            details: {
              recordType: w.type,
              recordId: shownId(w.id),
              expectedVersion: w.expectedVersion,
            },
          },
        )
      }
      if (w.type === 'identifier') {
        if (existing)
          identifiers.set(identifierKey(String(existing.payload.kind), String(existing.payload.value)), null)
        if (w.op !== 'delete') {
          const ik = identifierKey(String(w.payload.kind), String(w.payload.value))
          const taken = owner(ik)
          if (taken !== null && taken !== w.id) {
            throw new ConflictError(
              ErrorCode.DUPLICATE_IDENTIFIER,
              `identifier ${w.payload.kind} is already taken in tenant ${shownId(plan.tenantId)}`,
              {
                details: {
                  kind: String(w.payload.kind),
                },
              },
            )
          }
          identifiers.set(ik, w.id)
        }
      }
      rows.set(
        k,
        w.op === 'delete'
          ? null
          : {
              type: w.type,
              id: w.id,
              userId: w.userId,
              version: w.op === 'insert' ? 1 : w.expectedVersion + 1,
              payload: copy(w.payload),
              createdAt: existing?.createdAt ?? plan.now,
              updatedAt: plan.now,
            },
      )
    }

    // Rule 7: nothing is committed into a tenant that does not exist (unless this commit creates it).
    if (!current(rowKey('tenant', plan.tenantId))) {
      throw new NotFoundError(`tenant ${shownId(plan.tenantId)} not found`, {
        details: { tenantId: shownId(plan.tenantId) },
      })
    }

    // Planted constraints (refuseRows) are checked with the others, before anything is applied.
    if (
      plan.audit.some((a) => this.#refusedAuditActions.has(a.action)) ||
      plan.events.some((e) => this.#refusedEventTypes.has(e.type))
    ) {
      throw new ValidationError(
        'an audit record or event of this commit is refused by a planted constraint',
        {
          details: { field: 'refuseRows' },
        },
      )
    }

    // Every check passed: apply in one synchronous step.
    this.#tenants.set(plan.tenantId, state)
    for (const [k, row] of rows) {
      if (row) state.rows.set(k, row)
      else state.rows.delete(k)
    }
    for (const [k, id] of identifiers) {
      if (id) state.identifiers.set(k, id)
      else state.identifiers.delete(k)
    }
    for (const a of plan.audit) {
      state.auditIndex.set(a.id, state.audit.length)
      state.audit.push({ ...copy(a), tenantId: plan.tenantId, occurredAt: plan.now })
    }
    for (const e of plan.events) {
      const entry: OutboxEntry = {
        ...copy(e),
        tenantId: plan.tenantId,
        occurredAt: plan.now,
        status: 'pending',
        attempts: 0,
        availableAt: plan.now,
        leaseOwner: null,
        leaseUntil: null,
        publishedAt: null,
        lastError: null,
      }
      this.#outboxRows.push({
        ...entry,
        availableAtMs: Date.parse(plan.now),
        leaseUntilMs: null,
        publishedAtMs: null,
      })
    }
    if (plan.events.length > 0) this.outbox.committed()
  }

  #assertOpen(): void {
    if (this.#closed) throw new UserEngineError(ErrorCode.STORE_CLOSED, 'the store is closed')
  }

  #assertUsable(): void {
    this.#assertOpen()
    if (this.#schemaVersion !== LATEST_SCHEMA_VERSION) {
      throw new SchemaError(ErrorCode.SCHEMA_NOT_READY, 'the store schema is not migrated; run migrate()', {
        details: { schemaVersion: this.#schemaVersion, latestVersion: LATEST_SCHEMA_VERSION },
      })
    }
  }
}
