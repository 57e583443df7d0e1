import type { ReadinessReason } from '../domain/errors.js'
import type {
  AuditRecord,
  FactorRecord,
  IdentifierKind,
  IdentifierRecord,
  OutboxEntry,
  SessionRecord,
  TenantRecord,
  TenantStatus,
  UserRecord,
  UserStatus,
} from '../domain/records.js'
import type { IdentifierPrefix } from '../domain/user-queries.js'
import type { ThrottleAccess } from './throttle.js'
import type { UnitOfWork } from './unit-of-work.js'

export interface Page<T> {
  readonly items: T[]
  /** Pass back to get the next page; null when this page is the last. */
  readonly nextCursor: string | null
}

export type { IdentifierPrefix } from '../domain/user-queries.js'

export interface ListUsersQuery {
  /** 1 to 500; default 50. */
  readonly limit?: number
  /** The previous page's `nextCursor`. A cursor from a listing of another shape is a VALIDATION error. */
  readonly cursor?: string
  readonly status?: UserStatus
  /**
   * Only users holding an identifier of this kind whose value starts with the prefix (normalized, as stored).
   * Such a page is ordered by that value in code-point order, not by user id; each user appears once, at the
   * least of its matching values. The cursor then encodes that value: treat it like the identifier itself.
   */
  readonly identifierPrefix?: IdentifierPrefix
  /**
   * Each user carries its identifiers (`identifiers`, in id order: id, kind, value, verified), read with the
   * page in one query.
   */
  readonly includeIdentifiers?: boolean
}

export interface CountUsersQuery {
  readonly status?: UserStatus
  readonly identifierPrefix?: IdentifierPrefix
}

/**
 * An identifier as a listing shows it: what a list of accounts displays. The whole record (version,
 * timestamps) is a `getIdentifier` or `tx.listIdentifiers` away; leaving them out keeps a page with its
 * identifiers close to the cost of a plain page (docs/performance.md).
 */
export type ListedIdentifier = Pick<IdentifierRecord, 'id' | 'kind' | 'value' | 'verified'>

/** A user as `listUsers` returns it: `identifiers` is present exactly when the query asked for it. */
export interface ListedUser extends UserRecord {
  readonly identifiers?: readonly ListedIdentifier[]
}

export interface ListTenantsQuery {
  readonly limit?: number
  readonly cursor?: string
}

export interface ListAuditQuery {
  readonly limit?: number
  readonly cursor?: string
  readonly userId?: string
}

export interface Readiness {
  readonly ready: boolean
  readonly schemaVersion: number
  readonly latestVersion: number
  /** Why the store is not ready, as a stable code (SCHEMA_NOT_READY, SCHEMA_DRIFT, ...); null when ready. */
  readonly reason: ReadinessReason | null
}

export interface AppliedMigration {
  readonly version: number
  readonly name: string
  readonly executionMs: number
}

export interface MigrateResult {
  readonly fromVersion: number
  readonly toVersion: number
  readonly applied: AppliedMigration[]
  readonly lockWaitMs: number
}

/**
 * Counts only, by name. A diagnostics object MUST NOT hold any profile value, identifier value, secret,
 * id of a user or query text: it is meant to be logged and scraped.
 */
export interface Diagnostics {
  readonly store: string
  /** The version `readiness()` reports: what the database holds, not what the code knows. */
  readonly schemaVersion: number
  /** `LATEST_SCHEMA_VERSION`. */
  readonly latestVersion: number
  readonly counts: Readonly<Record<string, number>>
  /**
   * Factor secrets sealed under each key id (`FactorRecord.keyId`), across tenants: what still needs a key.
   * A key id absent here seals nothing and can be removed from the keyring. Key ids are the operator's names
   * for keys, never data; a stored key id not shaped like an id is counted under `(invalid)`.
   */
  readonly sealedByKeyId: Readonly<Record<string, number>>
}

/** A session and its tenant's status, as `findSession` reads them together (validation needs both). */
export interface SessionLookup {
  readonly session: SessionRecord
  readonly tenantStatus: TenantStatus
}

export interface PurgeExpiredQuery {
  /** ISO 8601 instant: sessions and tokens whose `expiresAt` is before it are deleted. */
  readonly before: string
  /** At most this many records (sessions and tokens together) per call, 1..10 000. */
  readonly limit: number
}

export interface PurgeExpiredResult {
  readonly sessions: number
  readonly tokens: number
}

export interface ListSealedFactorsQuery {
  /** Factors sealed under any key but this one (the keyring's current key). */
  readonly excludeKeyId: string
  /** Keyset: only factor ids greater than this (code-point order). */
  readonly after?: string
  /** 1..500. */
  readonly limit: number
}

export interface ClaimOptions {
  /** Who holds the lease; only this owner may acknowledge or fail the claimed events. */
  readonly owner: string
  /** Most events returned, over all aggregates. */
  readonly limit: number
  readonly leaseMs: number
  /**
   * Most events of one aggregate in this claim: its ready prefix, in order (rule 1). Default 1: only heads,
   * the behaviour before schema version 10.
   */
  readonly perAggregate?: number
  /**
   * Most aggregates started from their head in this claim, not counting continuations (a continuation whose
   * named event and everything before it are published claims from the head, outside this bound). Default:
   * bounded by `limit` only; 0: none.
   */
  readonly newAggregates?: number
  /**
   * Aggregates whose events this owner holds, each named by the last event it claimed of it: claim the ready
   * events that follow it (rule 5). Aggregates named here are not also started from their head.
   */
  readonly continueAfter?: readonly ClaimCursor[]
}

/** The last event an owner claimed of one aggregate, for a continuation claim. */
export interface ClaimCursor {
  readonly tenantId: string
  readonly eventId: string
}

export interface FailOptions {
  readonly owner: string
  readonly eventId: string
  /** Kept as the event's `lastError`: its first 500 characters. */
  readonly error: string
  /** Attempts after which the event is dead. */
  readonly maxAttempts: number
  /** Delay before the next attempt. */
  readonly backoffMs: number
}

/** What a relay reports for one event it held, settled with the others of a batch in one call. */
export type SettleItem =
  | { readonly tenantId: string; readonly eventId: string; readonly outcome: 'published' }
  /** Gives the lease back without counting an attempt (shutdown, an unreachable broker). */
  | { readonly tenantId: string; readonly eventId: string; readonly outcome: 'released' }
  | {
      readonly tenantId: string
      readonly eventId: string
      readonly outcome: 'failed'
      readonly error: string
      /** Delay before the next attempt. */
      readonly backoffMs: number
    }

export interface SettleOptions {
  readonly owner: string
  readonly items: readonly SettleItem[]
  /** Attempts after which a failed event is dead. */
  readonly maxAttempts: number
}

/** Per event settled: its status now, or `lost` when the owner no longer held its lease (nothing changed). */
export type SettleResult = ReadonlyMap<string, 'published' | 'pending' | 'dead' | 'released' | 'lost'>

export interface OutboxLag {
  readonly pending: number
  readonly dead: number
  /**
   * Age in ms of the oldest pending event (leased and backed-off ones included): the store's clock now minus
   * its `occurredAt`, never its `availableAt`. 0 when none is pending.
   */
  readonly oldestPendingAgeMs: number
}

export interface ListOutboxQuery {
  readonly status: 'pending' | 'dead'
  /** Only this tenant's events. */
  readonly tenantId?: string
  /** Only this aggregate's events (a user id, or a tenant id for tenant events). */
  readonly aggregateId?: string
  /** Default 100, at most 1000. */
  readonly limit?: number
  readonly cursor?: string
}

/** Stops a wake subscription. */
export interface OutboxSubscription {
  close(): Promise<void>
}

/**
 * The relay's view of the outbox. It works across tenants: a relay drains every tenant of one database.
 *
 * MUST rules:
 * 1. `claim` takes only events that are pending, due (`availableAt` reached) and unleased or lease-expired.
 *    Started from an aggregate's head (no earlier event of the aggregate is pending or dead), it takes the
 *    aggregate's ready prefix: the head and the events right after it, in (sequence, position) order, up to
 *    `perAggregate`, stopping before the first one that is not claimable (leased to anyone, not due, dead).
 *    Two concurrent claims MUST NOT return the same event while its lease holds, and a claim MUST NOT return
 *    an event that comes after one of its aggregate leased to another owner. A lease holds while `leaseUntil`
 *    is after the store's now (at `leaseUntil == now` it has expired). Events of one aggregate are returned
 *    together, in (sequence, position) order; the order between aggregates is free.
 * 2. An event of a commit that rolled back MUST never be claimed; an event whose commit lands late MUST be
 *    claimed once it has committed (claim by state, never by a cursor).
 * 3. `acknowledge`, `fail`, `release` and `settle` change only events whose lease the owner still holds; a
 *    late call after the lease expired (or was taken over) changes nothing and reports so.
 * 4. A dead event blocks its aggregate's later events until `retryDead` or `discardDead`.
 * 5. A continuation (`continueAfter`) claims the ready events that directly follow the named event, as in
 *    rule 1, only while every earlier pending event of that aggregate is leased to this owner; it renews the
 *    lease of the aggregate's first pending event only (never shortening it), so no other owner can start the
 *    aggregate meanwhile; whether one that finds nothing ready renews is unspecified. When the named event
 *    and everything before it are published, it is a claim from the head.
 * Event ids are unique across tenants (the unit of work issues them), so the calls below that take an event
 * id alone act on the one event of that id. See docs/store-contract.md for the full text.
 */
export interface OutboxAccess {
  claim(options: ClaimOptions): Promise<OutboxEntry[]>
  /** Marks published; returns the ids actually acknowledged (lease still held). */
  acknowledge(owner: string, eventIds: readonly string[]): Promise<string[]>
  /** Records a failed attempt; returns the new status, or null when the lease was no longer held. */
  fail(options: FailOptions): Promise<'pending' | 'dead' | null>
  /** Gives back leases without counting an attempt (shutdown). Returns how many were released. */
  release(owner: string, eventIds: readonly string[]): Promise<number>
  /**
   * Publishes, fails and releases a batch of held events at once (one statement on SQL stores), with the
   * rules of `acknowledge`, `fail` and `release`. Returns each event id with its outcome.
   */
  settle(options: SettleOptions): Promise<SettleResult>
  /**
   * Makes a dead event pending again with zero attempts, due now; its `lastError` stays until the next attempt
   * replaces it. Returns false when no dead event has that id.
   */
  retryDead(eventId: string): Promise<boolean>
  /** Marks a dead event discarded, unblocking its aggregate. Returns false when no dead event has that id. */
  discardDead(eventId: string): Promise<boolean>
  /** Deletes published events older than `olderThanMs`, at most `limit`; returns how many. */
  purgePublished(olderThanMs: number, limit: number): Promise<number>
  lag(): Promise<OutboxLag>
  /** One event by id with its delivery state (operators, tests). */
  get(eventId: string): Promise<OutboxEntry | null>
  /** Every event of one aggregate, whatever its status, in (sequence, position) order (tests, operators). */
  listForAggregate(tenantId: string, aggregateId: string): Promise<OutboxEntry[]>
  /**
   * Pending or dead events across tenants, ordered by tenant, aggregate type, aggregate id, sequence and
   * position, keyset-paginated: what an operator needs to find the id `retryDead` or
   * `discardDead` takes.
   */
  list(query: ListOutboxQuery): Promise<Page<OutboxEntry>>
  /**
   * Optional: calls `onCommit` soon after a commit that wrote outbox events (LISTEN/NOTIFY on a server, an
   * in-process signal otherwise), so a relay need not wait for its poll. A hint only: a relay still polls.
   */
  subscribe?(onCommit: () => void): Promise<OutboxSubscription>
}

/**
 * The store boundary. The engine talks to nothing else; providers implement this for their database.
 *
 * MUST rules (see also UnitOfWork and OutboxAccess; the conformance harness checks each):
 * 1. `readiness()` reports not ready (reason SCHEMA_NOT_READY) until `migrate()` has brought the schema to
 *    `LATEST_SCHEMA_VERSION`; `transaction` on a store that is not ready fails with SCHEMA_NOT_READY.
 * 2. `migrate()` is idempotent: a second call applies nothing and returns an empty `applied`.
 * 3. `transaction(tenantId, fn)` runs `fn` with a UnitOfWork and commits its writes only if `fn` resolves.
 *    A callback that throws writes nothing, and its error is rethrown unchanged.
 * 4. Queries are scoped to the given tenant; a record of another tenant is invisible.
 * 5. `listUsers` is keyset-paginated in ascending user id order: users inserted between pages never cause a
 *    user present at the first page to be skipped or repeated. With `identifierPrefix` it lists only users
 *    holding an identifier of that kind whose value starts with the prefix, ordered by the least such value in
 *    code-point order, each user once; a user whose matching identifiers do not change between pages is never
 *    skipped or repeated. A store MUST serve a prefix page without reading every identifier of the tenant
 *    (an index range in code-point order). With `includeIdentifiers` every listed user carries all of its
 *    identifiers, read in the same query as the page (one round trip per page, never one per user); without
 *    it, a listed user has no `identifiers` key. `countUsers` counts the users the same filters list.
 * 6. `listAudit` returns a tenant's audit records in commit order, keyset-paginated by an opaque cursor that
 *    names the last record listed. Neither a record nor a cursor exposes a number shared across tenants (a
 *    global sequence, a row count), so one tenant's listing reveals nothing about another's activity.
 * 7. Every error raised on purpose is a UserEngineError; no error message, diagnostics object or returned
 *    object's JSON or inspect output holds a profile value, identifier value or secret unless the caller
 *    asked for that value.
 * 8. An error raised by the commit, after `fn` resolved, carries the commit-phase mark (`markCommitPhase`); an
 *    error `fn` throws does not. The engine retries only a marked VERSION_CONFLICT. `runUnitOfWork` does both.
 * 9. `listTenants` lists every tenant record in ascending id order (code-point order), keyset-paginated like
 *    `listUsers`: the one read that spans tenants.
 * 10. `findSession` is one read (the session validation hot path): the session with that id and its tenant's
 *    status, or null. A session of another tenant is invisible.
 * 11. `purgeExpired` deletes only sessions and tokens of the tenant whose `expiresAt` is before `before`, at
 *    most `limit`, in (`expiresAt`, record type, id) order, and never a record that was live when it ran: one
 *    a refresh has moved past `before` survives.
 *    It writes no audit record or event and bumps no version: expired records are already dead.
 * 12. `listSealedFactors` returns the tenant's factors whose `keyId` is set and differs from `excludeKeyId`,
 *    in ascending id order after `after`, at most `limit`. `diagnostics().sealedByKeyId` counts factors by
 *    `keyId` across tenants.
 */
export interface UserEngineStore {
  /** A short name for diagnostics and reports (`memory`, `postgres`, `pglite`). */
  readonly kind: string
  /** Guarantees beyond the base contract; a harness case needing one the store lacks is skipped with the reason. */
  readonly capabilities: StoreCapabilities

  readiness(): Promise<Readiness>
  migrate(): Promise<MigrateResult>
  transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T>

  getTenant(tenantId: string): Promise<TenantRecord | null>
  listTenants(query?: ListTenantsQuery): Promise<Page<TenantRecord>>
  getUser(tenantId: string, userId: string): Promise<UserRecord | null>
  findUserByIdentifier(tenantId: string, kind: IdentifierKind, value: string): Promise<UserRecord | null>
  getIdentifier(tenantId: string, kind: IdentifierKind, value: string): Promise<IdentifierRecord | null>
  listUsers(tenantId: string, query?: ListUsersQuery): Promise<Page<ListedUser>>
  /** How many users `listUsers` would list with these filters, across all pages. */
  countUsers(tenantId: string, query?: CountUsersQuery): Promise<number>
  listAudit(tenantId: string, query?: ListAuditQuery): Promise<Page<AuditRecord>>
  /** Rule 10: the session and its tenant's status in one read; null when there is no such session in the tenant. */
  findSession(tenantId: string, sessionId: string): Promise<SessionLookup | null>
  /** Rule 11: deletes expired sessions and tokens of one tenant, a bounded batch per call. */
  purgeExpired(tenantId: string, query: PurgeExpiredQuery): Promise<PurgeExpiredResult>
  /** Rule 12: factors sealed under another key than `excludeKeyId`, keyset-paginated (key rotation). */
  listSealedFactors(tenantId: string, query: ListSealedFactorsQuery): Promise<FactorRecord[]>

  readonly outbox: OutboxAccess
  /** Failed sign-in counts and lockouts (throttle.ts has its MUST rules). */
  readonly throttle: ThrottleAccess

  diagnostics(): Promise<Diagnostics>
  close(): Promise<void>
}

export interface StoreCapabilities {
  /**
   * Guarantee: several instances of the store over one database, each with its own connections (as separate
   * processes hold them), keep every rule between them: concurrent `migrate()` calls apply each version once,
   * racing commits from different instances conflict as they would in one, and throttle failures recorded
   * through different instances all count. A server database gives it; an embedded database that one process
   * opens (PGlite) does not. Absent is false.
   */
  readonly concurrentInstances?: boolean
  /**
   * Guarantee: outbox claims made through different instances over one database are isolated from each other
   * (outbox rule 1 across processes): two relays in two processes never hold the same event, nor events of one
   * aggregate at once. How is the store's business (row locks with SKIP LOCKED, a conditional update, one
   * database-wide write lock). Absent is false.
   */
  readonly isolatedClaims?: boolean
  /** @deprecated The earlier name of `concurrentInstances`, which a store that sets only this is read as having. */
  readonly multiProcess?: boolean
  /** @deprecated The earlier name of `isolatedClaims`, which a store that sets only this is read as having. */
  readonly rowLocking?: boolean
}

/** The guarantees `StoreCapabilities` names (its deprecated aliases left out). */
export type StoreGuarantee = 'concurrentInstances' | 'isolatedClaims'
