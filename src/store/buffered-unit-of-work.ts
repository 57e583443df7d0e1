// Long on purpose: one class, the UnitOfWork contract's 24 methods, each buffering and checking its
// write the same way; splitting it would scatter the one buffer they share.

import { plainList } from '../domain/caller-values.js'
import { ConflictError, ErrorCode, UserEngineError, ValidationError } from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import { jsonData } from '../domain/json-data.js'
import { LIMITS } from '../domain/limits.js'
import type {
  FactorRecord,
  IdentifierKind,
  IdentifierRecord,
  ProfileRecord,
  RecordType,
  SessionRecord,
  TenantRecord,
  TokenRecord,
  UserRecord,
} from '../domain/records.js'
import { IDENTIFIER_KINDS, SIGN_IN_METHODS, TOKEN_PURPOSES } from '../domain/records.js'
import {
  assertId,
  assertIdentifierLookup,
  assertInstant,
  assertIpAddress,
  assertString,
  foldIdentifier,
  isSignInMethod,
  USER_STATUSES,
  validateProfile,
} from '../domain/validation.js'
import type { AuditRow, CommitPlan, EventRow, WriteOp } from './commit-plan.js'
import { recordCodec, type StoredRow } from './stored-row.js'
import type {
  AuditDraft,
  Draft,
  EventDraft,
  FactorDraft,
  Precondition,
  RecordRef,
  UnitOfWork,
} from './unit-of-work.js'

/** The record types a user has several of, read together by user id. */
export type UserRowType = 'identifier' | 'factor' | 'session' | 'token'

/** The reads a store provides to a unit of work: committed state of one tenant. */
export interface RowSource {
  readRow(type: RecordType, id: string): Promise<StoredRow | null>
  readIdentifierRow(kind: IdentifierKind, value: string): Promise<StoredRow | null>
  readUserRows(userId: string, type: UserRowType): Promise<StoredRow[]>
}

const MAX_VERSION = 2_147_483_647
const TENANT_STATUSES = ['active', 'suspended'] as const

function oneOf(value: unknown, allowed: readonly string[], field: string): void {
  if (!allowed.includes(value as string)) {
    throw new ValidationError(`${field} must be one of ${allowed.join(', ')}`, { details: { field } })
  }
}

/**
 * An identifier as the engine stores it: a known kind and a value already in normalized form (NFKC, trimmed,
 * lower-cased), so a value that differs from a taken one only in case or width cannot slip past the uniqueness
 * rule. Syntax (what makes an email an address) is the engine's to check, not the store's.
 */
function assertStoredIdentifier(identifier: Draft<IdentifierRecord>): void {
  oneOf(identifier.kind, IDENTIFIER_KINDS, 'kind')
  const { kind, value } = identifier
  assertIdentifierLookup(kind, value)
  // Folding is not quite idempotent (NFKC composes what lower-casing an uppercase letter with a mark left
  // decomposed: `H\u0331` folds to `h\u0331`, which folds again to `ẖ`), so the engine's own output may differ
  // from its fold by that composition; a case or width variant differs by more.
  const folded = foldIdentifier(value)
  if (folded !== value && folded !== value.normalize('NFC')) {
    throw new ValidationError(`${kind} value must be stored in normalized form (normalizeIdentifier)`, {
      details: { field: 'value' },
    })
  }
  if (typeof identifier.verified !== 'boolean') {
    throw new ValidationError('verified must be a boolean', { details: { field: 'verified' } })
  }
}

/** Audit data is flat: ids, codes and counts as strings, finite numbers, booleans or null (AuditData). */
function flatAuditData(data: unknown): AuditRow['data'] {
  const { data: parsed } = jsonData(data ?? {}, 'data', 'audit data')
  const flat =
    typeof parsed === 'object' &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.values(parsed).every((v) => v === null || typeof v !== 'object')
  if (!flat) {
    throw new ValidationError('audit data must be an object of strings, numbers, booleans or null', {
      details: { field: 'data' },
    })
  }
  return parsed as AuditRow['data']
}

function assertTokenHash(value: unknown): void {
  const hash = (value as { reveal?: () => unknown } | null)?.reveal?.()
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
    throw new ValidationError('tokenHash must be a Secret holding 64 hex digits (SHA-256)', {
      details: { field: 'tokenHash' },
    })
  }
}

/** A buffered write and the row it leaves, keyed by record. */
interface Pending {
  readonly write: WriteOp
  /** The row as reads inside this unit see it; null for a delete. */
  readonly row: StoredRow | null
}

const key = (type: RecordType, id: string) => `${type}\u0000${id}`

/**
 * The store-independent half of a unit of work: buffers writes, overlays them on reads, checks the
 * contract's rules that need no database, and produces the CommitPlan a store applies atomically.
 * Stores supply committed reads (RowSource) and apply the plan; they share everything else.
 */
export class BufferedUnitOfWork implements UnitOfWork {
  readonly #pending = new Map<string, Pending>()
  readonly #audit: AuditRow[] = []
  readonly #events: Array<Omit<EventRow, 'sequence' | 'position'>> = []
  readonly #now = new Date().toISOString()
  #sealed = false
  #refuseSuspended = false

  /** `refusesSuspendedTenant`: the store's commit honours CommitPlan.refuseSuspendedTenant. */
  constructor(
    readonly tenantId: string,
    private readonly source: RowSource,
    private readonly options: { readonly refusesSuspendedTenant?: boolean } = {},
  ) {}

  refuseSuspendedTenant(): boolean {
    this.#assertOpen()
    if (this.options.refusesSuspendedTenant !== true) return false
    this.#refuseSuspended = true
    return true
  }

  async getTenant(): Promise<TenantRecord | null> {
    const row = await this.#read('tenant', this.tenantId)
    return row ? recordCodec.tenant.fromRow(this.tenantId, row) : null
  }

  async getUser(userId: string): Promise<UserRecord | null> {
    assertId(userId, 'userId')
    const row = await this.#read('user', userId)
    return row ? recordCodec.user.fromRow(this.tenantId, row) : null
  }

  async findIdentifier(kind: IdentifierKind, value: string): Promise<IdentifierRecord | null> {
    assertIdentifierLookup(kind, value)
    for (const p of this.#pending.values()) {
      if (p.write.type !== 'identifier') continue
      if (p.row && p.row.payload.kind === kind && p.row.payload.value === value) {
        return recordCodec.identifier.fromRow(this.tenantId, p.row)
      }
    }
    const base = await this.source.readIdentifierRow(kind, value)
    if (!base) return null
    // A buffered delete or update of that identifier hides the committed row.
    if (this.#pending.has(key('identifier', base.id))) return null
    return recordCodec.identifier.fromRow(this.tenantId, base)
  }

  async listIdentifiers(userId: string): Promise<IdentifierRecord[]> {
    assertId(userId, 'userId')
    const rows = await this.#readUserRows(userId, 'identifier')
    return rows.map((r) => recordCodec.identifier.fromRow(this.tenantId, r))
  }

  async getProfile(userId: string): Promise<ProfileRecord | null> {
    assertId(userId, 'userId')
    const row = await this.#read('profile', userId)
    return row ? recordCodec.profile.fromRow(this.tenantId, row) : null
  }

  async listFactors(userId: string): Promise<FactorRecord[]> {
    assertId(userId, 'userId')
    const rows = await this.#readUserRows(userId, 'factor')
    return rows.map((r) => recordCodec.factor.fromRow(this.tenantId, r))
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    assertId(sessionId, 'sessionId')
    const row = await this.#read('session', sessionId)
    return row ? recordCodec.session.fromRow(this.tenantId, row) : null
  }

  async listSessions(userId: string): Promise<SessionRecord[]> {
    assertId(userId, 'userId')
    const rows = await this.#readUserRows(userId, 'session')
    return rows.map((r) => recordCodec.session.fromRow(this.tenantId, r))
  }

  async getToken(tokenId: string): Promise<TokenRecord | null> {
    assertId(tokenId, 'tokenId')
    const row = await this.#read('token', tokenId)
    return row ? recordCodec.token.fromRow(this.tenantId, row) : null
  }

  async listTokens(userId: string): Promise<TokenRecord[]> {
    assertId(userId, 'userId')
    const rows = await this.#readUserRows(userId, 'token')
    return rows.map((r) => recordCodec.token.fromRow(this.tenantId, r))
  }

  putTenant(tenant: Draft<TenantRecord>, precondition: Precondition): void {
    if (tenant.id !== this.tenantId)
      throw new ValidationError('tenant id must match the unit of work', { details: { field: 'id' } })
    assertString(tenant.name, 'name', LIMITS.tenantNameLength)
    oneOf(tenant.status, TENANT_STATUSES, 'status')
    this.#put('tenant', tenant.id, null, recordCodec.tenant.toPayload(tenant), precondition)
  }

  putUser(user: Draft<UserRecord>, precondition: Precondition): void {
    assertId(user.id, 'userId')
    oneOf(user.status, USER_STATUSES, 'status')
    this.#put('user', user.id, user.id, recordCodec.user.toPayload(user), precondition)
  }

  putIdentifier(identifier: Draft<IdentifierRecord>, precondition: Precondition): void {
    assertId(identifier.id, 'identifierId')
    assertId(identifier.userId, 'userId')
    assertStoredIdentifier(identifier)
    this.#put(
      'identifier',
      identifier.id,
      identifier.userId,
      recordCodec.identifier.toPayload(identifier),
      precondition,
    )
  }

  deleteIdentifier(ref: RecordRef, precondition: { readonly expectedVersion: number }): void {
    this.#delete('identifier', ref.id, ref.userId, precondition)
  }

  putProfile(profile: Draft<ProfileRecord>, precondition: Precondition): void {
    assertId(profile.userId, 'userId')
    validateProfile(profile.attributes)
    this.#put('profile', profile.userId, profile.userId, recordCodec.profile.toPayload(profile), precondition)
  }

  deleteProfile(userId: string, precondition: { readonly expectedVersion: number }): void {
    this.#delete('profile', userId, userId, precondition)
  }

  putFactor(factor: FactorDraft, precondition: Precondition): void {
    assertId(factor.id, 'factorId')
    assertId(factor.userId, 'userId')
    if (factor.keyId != null) assertId(factor.keyId, 'keyId')
    this.#put('factor', factor.id, factor.userId, recordCodec.factor.toPayload(factor), precondition)
  }

  deleteFactor(ref: RecordRef, precondition: { readonly expectedVersion: number }): void {
    this.#delete('factor', ref.id, ref.userId, precondition)
  }

  putSession(session: Draft<SessionRecord>, precondition: Precondition): void {
    assertId(session.id, 'sessionId')
    assertId(session.userId, 'userId')
    assertTokenHash(session.tokenHash)
    for (const field of ['lastSeenAt', 'expiresAt', 'absoluteExpiresAt'] as const) {
      assertInstant(session[field], field)
    }
    const methods = plainList(
      session.methods,
      'methods',
      SIGN_IN_METHODS.length,
      `methods must be a list of ${SIGN_IN_METHODS.join(', ')}`,
      isSignInMethod,
    )
    const checked = { ...session, methods }
    this.#put('session', session.id, session.userId, recordCodec.session.toPayload(checked), precondition)
  }

  deleteSession(ref: RecordRef, precondition: { readonly expectedVersion: number }): void {
    this.#delete('session', ref.id, ref.userId, precondition)
  }

  putToken(token: Draft<TokenRecord>, precondition: Precondition): void {
    assertId(token.id, 'tokenId')
    assertId(token.userId, 'userId')
    assertTokenHash(token.tokenHash)
    assertInstant(token.expiresAt, 'expiresAt')
    if (!TOKEN_PURPOSES.includes(token.purpose)) {
      throw new ValidationError(`purpose must be one of ${TOKEN_PURPOSES.join(', ')}`, {
        details: { field: 'purpose' },
      })
    }
    if (typeof token.data !== 'object' || token.data === null || Array.isArray(token.data)) {
      throw new ValidationError('data must be an object', { details: { field: 'data' } })
    }
    this.#put('token', token.id, token.userId, recordCodec.token.toPayload(token), precondition)
  }

  deleteToken(ref: RecordRef, precondition: { readonly expectedVersion: number }): void {
    this.#delete('token', ref.id, ref.userId, precondition)
  }

  appendAudit(entry: AuditDraft): void {
    this.#assertOpen()
    assertString(entry.action, 'action', LIMITS.auditActionLength)
    if (entry.userId != null) assertId(entry.userId, 'userId')
    if (entry.actorId != null) assertId(entry.actorId, 'actorId')
    if (entry.requestId != null) assertId(entry.requestId, 'requestId')
    if (entry.ip != null) assertIpAddress(entry.ip, 'ip')
    if (entry.userAgent != null) assertString(entry.userAgent, 'userAgent', LIMITS.userAgentLength)
    const data = flatAuditData(entry.data)
    this.#audit.push({
      id: newId('aud'),
      action: entry.action,
      userId: entry.userId ?? null,
      actorId: entry.actorId ?? null,
      requestId: entry.requestId ?? null,
      ip: entry.ip ?? null,
      userAgent: entry.userAgent ?? null,
      data,
    })
  }

  enqueue(event: EventDraft): void {
    this.#assertOpen()
    assertString(event.type, 'type', LIMITS.eventTypeLength)
    if (event.userId !== undefined) assertId(event.userId, 'userId')
    const { data: payload, bytes } = jsonData(event.payload ?? {}, 'payload', 'event payload')
    if (bytes > LIMITS.eventPayloadBytes) {
      throw new ValidationError('event payload is too large', {
        details: {
          field: 'payload',
          maxBytes: LIMITS.eventPayloadBytes,
        },
      })
    }
    this.#events.push({
      id: newId('evt'),
      aggregateType: event.userId === undefined ? 'tenant' : 'user',
      aggregateId: event.userId ?? this.tenantId,
      type: event.type,
      payload: payload as EventRow['payload'],
    })
  }

  /**
   * Seals the unit and returns what to commit. Checks rule 5: every user (or tenant) a commit touches has its
   * own record written, whose new version becomes the sequence of the events about it.
   */
  toCommitPlan(): CommitPlan {
    this.#assertOpen()
    this.#sealed = true
    const writes = [...this.#pending.values()].map((p) => p.write)
    const newVersion = (type: 'user' | 'tenant', id: string): number => {
      const write = this.#pending.get(key(type, id))?.write
      if (!write || write.op === 'delete') {
        throw new UserEngineError(
          ErrorCode.INVALID_UNIT_OF_WORK,
          `a commit that changes ${type} ${id} must also write that ${type} with a precondition`,
          { details: { [type === 'user' ? 'userId' : 'tenantId']: id } },
        )
      }
      return write.op === 'insert' ? 1 : write.expectedVersion + 1
    }
    for (const w of writes) {
      // A session refresh is the one user-owned write that needs no user write (rule 5's exception).
      if (w.userId !== null && w.type !== 'user' && !(w.type === 'session' && w.op === 'update')) {
        newVersion('user', w.userId)
      }
    }
    const positions = new Map<string, number>()
    const events: EventRow[] = this.#events.map((e) => {
      const sequence = newVersion(e.aggregateType, e.aggregateId)
      const k = `${e.aggregateType}:${e.aggregateId}`
      const position = positions.get(k) ?? 0
      positions.set(k, position + 1)
      return { ...e, sequence, position }
    })
    const plan: CommitPlan = {
      tenantId: this.tenantId,
      now: this.#now,
      writes,
      audit: [...this.#audit],
      events,
    }
    return this.#refuseSuspended ? { ...plan, refuseSuspendedTenant: true } : plan
  }

  /** Seals the unit without committing: called when the callback threw, so a leaked `tx` cannot write later. */
  abandon(): void {
    this.#sealed = true
  }

  get isEmpty(): boolean {
    return this.#pending.size === 0 && this.#audit.length === 0 && this.#events.length === 0
  }

  async #read(type: RecordType, id: string): Promise<StoredRow | null> {
    const p = this.#pending.get(key(type, id))
    if (p) return p.row
    return this.source.readRow(type, id)
  }

  async #readUserRows(userId: string, type: UserRowType): Promise<StoredRow[]> {
    const base = await this.source.readUserRows(userId, type)
    const out = new Map<string, StoredRow>()
    for (const r of base) out.set(r.id, r)
    for (const p of this.#pending.values()) {
      if (p.write.type !== type) continue
      if (p.row === null) out.delete(p.write.id)
      else if (p.row.userId === userId) out.set(p.row.id, p.row)
      else out.delete(p.write.id)
    }
    return [...out.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  #put(
    type: RecordType,
    id: string,
    userId: string | null,
    payload: StoredRow['payload'],
    precondition: Precondition,
  ): void {
    this.#assertOpen()
    const k = key(type, id)
    const prior = this.#pending.get(k)
    // Same data on every store: what Postgres's jsonb keeps (no NUL, no unpaired surrogate, JSON only).
    const json = jsonData(payload, type, type).data as StoredRow['payload']
    if (prior) {
      // A second write to one record in one unit: its precondition is checked against what this unit sees,
      // and the commit still bumps the stored version once.
      if (prior.row === null) {
        throw new UserEngineError(
          ErrorCode.INVALID_UNIT_OF_WORK,
          `${type} ${id} was deleted earlier in this unit`,
        )
      }
      if ('mustNotExist' in precondition || precondition.expectedVersion !== prior.row.version) {
        throw new ConflictError(ErrorCode.VERSION_CONFLICT, `${type} ${id} changed earlier in this unit`, {
          details: {
            recordType: type,
            recordId: id,
          },
        })
      }
      const write = { ...prior.write, userId, payload: json } as WriteOp
      this.#pending.set(k, { write, row: { ...prior.row, userId, payload: json } })
      return
    }
    if ('mustNotExist' in precondition) {
      if (precondition.mustNotExist !== true)
        throw new ValidationError('precondition is not valid', { details: { field: 'precondition' } })
      this.#pending.set(k, {
        write: { op: 'insert', type, id, userId, payload: json },
        row: { type, id, userId, version: 1, payload: json, createdAt: this.#now, updatedAt: this.#now },
      })
      return
    }
    const expectedVersion = this.#expected(precondition)
    this.#pending.set(k, {
      write: { op: 'update', type, id, userId, expectedVersion, payload: json },
      // createdAt is unknown without a read; reads inside the unit only rely on version and payload.
      row: {
        type,
        id,
        userId,
        version: expectedVersion + 1,
        payload: json,
        createdAt: this.#now,
        updatedAt: this.#now,
      },
    })
  }

  #delete(
    type: RecordType,
    id: string,
    userId: string,
    precondition: { readonly expectedVersion: number },
  ): void {
    this.#assertOpen()
    assertId(id, `${type}Id`)
    assertId(userId, 'userId')
    const k = key(type, id)
    const prior = this.#pending.get(k)
    const expectedVersion = this.#expected(precondition)
    if (prior) {
      if (prior.row === null || prior.row.version !== expectedVersion) {
        throw new ConflictError(ErrorCode.VERSION_CONFLICT, `${type} ${id} changed earlier in this unit`, {
          details: {
            recordType: type,
            recordId: id,
          },
        })
      }
      if (prior.write.op === 'insert') {
        this.#pending.delete(k)
        return
      }
      const update = prior.write as Extract<WriteOp, { op: 'update' }>
      this.#pending.set(k, {
        write: { op: 'delete', type, id, userId, expectedVersion: update.expectedVersion },
        row: null,
      })
      return
    }
    this.#pending.set(k, { write: { op: 'delete', type, id, userId, expectedVersion }, row: null })
  }

  #expected(precondition: { readonly expectedVersion?: unknown }): number {
    const v = precondition.expectedVersion
    // Versions are Postgres integers: a larger one could never match, and would be a driver error there.
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_VERSION) {
      throw new ValidationError(`expectedVersion must be an integer from 1 to ${MAX_VERSION}`, {
        details: { field: 'expectedVersion' },
      })
    }
    return v
  }

  #assertOpen(): void {
    if (this.#sealed) {
      throw new UserEngineError(
        ErrorCode.INVALID_UNIT_OF_WORK,
        'the unit of work has already committed or failed',
      )
    }
  }
}
