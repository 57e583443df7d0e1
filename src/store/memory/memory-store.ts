import { decodeIdCursor, decodeSeqCursor, encodeCursor } from '../../domain/cursor.js'
import { ConflictError, ErrorCode, NotFoundError, SchemaError, UserEngineError } from '../../domain/errors.js'
import type {
  AuditRecord,
  IdentifierKind,
  IdentifierRecord,
  OutboxEntry,
  RecordType,
  TenantRecord,
  UserRecord,
} from '../../domain/records.js'
import {
  assertFunction,
  assertId,
  assertIdentifierLookup,
  assertOptionalBoolean,
  optionsObject,
  validateListAuditQuery,
  validateListUsersQuery,
} from '../../domain/validation.js'
import type { RowSource } from '../buffered-unit-of-work.js'
import type { CommitPlan } from '../commit-plan.js'
import { runUnitOfWork } from '../run-unit-of-work.js'
import type { SchemaAdministration, SchemaStatus } from '../schema-admin.js'
import { DIAGNOSTIC_COUNT_KEYS, LATEST_SCHEMA_VERSION, SCHEMA_VERSIONS } from '../schema-versions.js'
import type {
  Diagnostics,
  ListAuditQuery,
  ListUsersQuery,
  MigrateResult,
  Page,
  Readiness,
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
  readonly capabilities: StoreCapabilities = { multiProcess: false, rowLocking: false }
  readonly outbox: InMemoryOutbox
  readonly throttle: InMemoryThrottle

  readonly #tenants = new Map<string, TenantState>()
  readonly #outboxRows: OutboxRow[] = []
  #schemaVersion: number
  #auditSeq = 0
  #closed = false

  constructor(options: InMemoryStoreOptions = {}) {
    const o = optionsObject(options, 'InMemoryUserEngineStore options', ['migrated'])
    assertOptionalBoolean(o.migrated, 'InMemoryUserEngineStore options.migrated')
    this.#schemaVersion = o.migrated ? LATEST_SCHEMA_VERSION : 0
    this.outbox = new InMemoryOutbox(this.#outboxRows, () => this.#assertUsable())
    this.throttle = new InMemoryThrottle(() => this.#assertUsable())
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

  async listUsers(tenantId: string, query?: ListUsersQuery): Promise<Page<UserRecord>> {
    assertId(tenantId, 'tenantId')
    const { limit, cursor, status } = validateListUsersQuery(query)
    const after = cursor === undefined ? null : decodeIdCursor(cursor)
    this.#assertUsable()
    const state = this.#tenant(tenantId)
    const users = state
      ? [...state.rows.values()]
          .filter((r) => r.type === 'user' && (after === null || r.id > after))
          .filter((r) => status === undefined || r.payload.status === status)
          .sort(byId)
      : []
    const items = users.slice(0, limit).map((r) => recordCodec.user.fromRow(tenantId, copy(r)))
    const last = items[items.length - 1]
    return { items, nextCursor: users.length > limit && last ? encodeCursor(last.id) : null }
  }

  async listAudit(tenantId: string, query?: ListAuditQuery): Promise<Page<AuditRecord>> {
    assertId(tenantId, 'tenantId')
    const { limit, cursor, userId } = validateListAuditQuery(query)
    const after = cursor === undefined ? 0 : decodeSeqCursor(cursor)
    this.#assertUsable()
    const all = (this.#tenant(tenantId)?.audit ?? []).filter(
      (a) => a.seq > after && (userId === undefined || a.userId === userId),
    )
    const items = all.slice(0, limit).map(copy)
    const last = items[items.length - 1]
    return { items, nextCursor: all.length > limit && last ? encodeCursor(last.seq) : null }
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
    }
    for (const state of this.#tenants.values()) {
      for (const row of state.rows.values()) counts[plural[row.type]]! += 1
      counts.audit_records! += state.audit.length
    }
    for (const row of this.#outboxRows) counts[`outbox_${row.status}`]! += 1
    return {
      store: this.kind,
      schemaVersion: this.#schemaVersion,
      latestVersion: LATEST_SCHEMA_VERSION,
      counts,
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
        throw new ConflictError(ErrorCode.ALREADY_EXISTS, `${w.type} ${w.id} already exists`, {
          details: {
            recordType: w.type,
            recordId: w.id,
          },
        })
      }
      if (w.op !== 'insert' && existing?.version !== w.expectedVersion) {
        throw new ConflictError(
          ErrorCode.VERSION_CONFLICT,
          `${w.type} ${w.id} is not at the expected version`,
          {
            details: {
              recordType: w.type,
              recordId: w.id,
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
              `identifier ${w.payload.kind} is already taken in tenant ${plan.tenantId}`,
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
      throw new NotFoundError(`tenant ${plan.tenantId} not found`, { details: { tenantId: plan.tenantId } })
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
      state.audit.push({ ...copy(a), tenantId: plan.tenantId, seq: ++this.#auditSeq, occurredAt: plan.now })
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
