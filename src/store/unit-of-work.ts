import type {
  AuditData,
  FactorRecord,
  IdentifierKind,
  IdentifierRecord,
  JsonValue,
  ProfileRecord,
  SessionRecord,
  TenantRecord,
  TokenRecord,
  UserRecord,
} from '../domain/records.js'

/**
 * A write's precondition, checked at commit by the store.
 * - `{ mustNotExist: true }`: the record MUST NOT exist; the stored version becomes 1.
 * - `{ expectedVersion: n }`: the record MUST exist at version n; the stored version becomes n + 1.
 * Every write carries one, so a lost update is impossible by construction.
 */
export type Precondition = { readonly mustNotExist: true } | { readonly expectedVersion: number }

/** What a write supplies; the store fills in tenantId, version and timestamps. */
export type Draft<T> = Omit<T, 'tenantId' | 'version' | 'createdAt' | 'updatedAt'>

/** A factor as a write supplies it: `keyId` may be left out for a secret that is not sealed (stored as null). */
export type FactorDraft = Omit<Draft<FactorRecord>, 'keyId'> & { readonly keyId?: string | null }

/** Names a user's record for deletion: the user id lets the commit check rule 5 without a read. */
export interface RecordRef {
  readonly id: string
  readonly userId: string
}

export interface AuditDraft {
  readonly action: string
  readonly userId?: string | null
  /** Who acted: an id (assertId). */
  readonly actorId?: string | null
  /** The caller's request id: an id (assertId). */
  readonly requestId?: string | null
  /** The client's IP address (IPv4 or IPv6 text). */
  readonly ip?: string | null
  /** The client's user agent: storable text of at most `LIMITS.userAgentLength` characters. */
  readonly userAgent?: string | null
  readonly data?: AuditData
}

export interface EventDraft {
  readonly type: string
  /** The user the event is about; omit for a tenant-level event. */
  readonly userId?: string
  readonly payload?: { readonly [key: string]: JsonValue }
}

/**
 * One unit of work of one tenant: reads go to the store at once, writes are buffered until commit.
 *
 * MUST rules (checked by the conformance harness):
 * 1. Every read and write is scoped to `tenantId`. A record of another tenant MUST be invisible (read as null),
 *    never an error that reveals that it exists.
 * 2. Reads MUST see this unit's own buffered writes (including deletes).
 * 3. Commit MUST apply every write, audit record and outbox event atomically, or none of them.
 * 4. A failed precondition MUST fail the whole commit with a ConflictError (VERSION_CONFLICT, ALREADY_EXISTS);
 *    a taken identifier value (same tenant, kind and normalized value) MUST fail it with DUPLICATE_IDENTIFIER.
 * 5. A commit that writes any record of a user, or emits an event about a user, MUST also write that user's
 *    record with an `expectedVersion` (or create it); else it fails with INVALID_UNIT_OF_WORK. The user's new
 *    version is the `sequence` of the events the commit emits about that user, with `position` 0, 1, ... in
 *    enqueue order. Tenant-level events take the tenant's new version the same way. So the events of one user
 *    are totally ordered: a commit holding version n + 1 cannot exist before the one holding n.
 *    One exception: updating an existing session (a refresh) needs no user write, so validating sessions never
 *    contends with the user's changes. Creating or deleting a session, and every token write, follow the rule.
 * 6. Writes MUST NOT be applied to shared state before commit; the callback's awaits may interleave with
 *    other units of work without seeing or breaking them.
 * 7. A commit into a tenant that has no tenant record (and does not create it) MUST fail with NOT_FOUND and
 *    write nothing. So a use case needs no separate read to refuse an unknown tenant. A unit that buffered no
 *    write, audit record or event commits nothing and is not checked.
 * When several preconditions of one commit fail, which conflict code is reported is unspecified.
 * 8. A write the engine would never make is VALIDATION when it is buffered, and nothing is written: an unknown
 *    status or identifier kind, an identifier value not in normalized form, profile attributes `updateProfile`
 *    refuses, nested audit data, a payload with no JSON form, an `expectedVersion` past 2^31 - 1
 *    (`BufferedUnitOfWork` does all of it; docs/provider-guide.md "Input validation and limits").
 */
export interface UnitOfWork {
  readonly tenantId: string

  getTenant(): Promise<TenantRecord | null>
  getUser(userId: string): Promise<UserRecord | null>
  /** Looks up by normalized value. */
  findIdentifier(kind: IdentifierKind, value: string): Promise<IdentifierRecord | null>
  listIdentifiers(userId: string): Promise<IdentifierRecord[]>
  getProfile(userId: string): Promise<ProfileRecord | null>
  listFactors(userId: string): Promise<FactorRecord[]>

  putTenant(tenant: Draft<TenantRecord>, precondition: Precondition): void
  putUser(user: Draft<UserRecord>, precondition: Precondition): void
  putIdentifier(identifier: Draft<IdentifierRecord>, precondition: Precondition): void
  deleteIdentifier(ref: RecordRef, precondition: { readonly expectedVersion: number }): void
  putProfile(profile: Draft<ProfileRecord>, precondition: Precondition): void
  deleteProfile(userId: string, precondition: { readonly expectedVersion: number }): void
  putFactor(factor: FactorDraft, precondition: Precondition): void
  deleteFactor(ref: RecordRef, precondition: { readonly expectedVersion: number }): void

  getSession(sessionId: string): Promise<SessionRecord | null>
  /** The user's sessions in id order, expired ones included (the engine decides what is live). */
  listSessions(userId: string): Promise<SessionRecord[]>
  /** An update of an existing session (a refresh) is the one write rule 5 lets go without the user's. */
  putSession(session: Draft<SessionRecord>, precondition: Precondition): void
  deleteSession(ref: RecordRef, precondition: { readonly expectedVersion: number }): void
  getToken(tokenId: string): Promise<TokenRecord | null>
  /** The user's single-use tokens in id order, expired ones included. */
  listTokens(userId: string): Promise<TokenRecord[]>
  putToken(token: Draft<TokenRecord>, precondition: Precondition): void
  deleteToken(ref: RecordRef, precondition: { readonly expectedVersion: number }): void

  appendAudit(entry: AuditDraft): void
  enqueue(event: EventDraft): void

  /**
   * Optional. Returns true when the store's commit will refuse this unit with TENANT_SUSPENDED (writing
   * nothing) if the tenant is suspended when it commits, so a use case that reads nothing else needs no read
   * of the tenant first; false, or no such method, and the caller reads the tenant itself.
   */
  refuseSuspendedTenant?(): boolean
}
