/**
 * Which named cases check each numbered MUST rule of the store contract (UnitOfWork, UserEngineStore,
 * OutboxAccess, ThrottleAccess JSDoc; docs/store-contract.md). A test fails when a rule has no case or a
 * case named here does not exist, so the provider guide's coverage statement stays exact.
 */
export const RULE_CASES: Readonly<Record<string, readonly string[]>> = {
  'uow.1': [
    "tenant-isolation: unit-of-work reads of another tenant's records return null or empty",
    "tenant-isolation: writes are scoped: the same ids in another tenant are new records and leave the first tenant's alone",
  ],
  'uow.2': [
    'read-your-writes: reads see buffered inserts',
    'read-your-writes: reads see buffered updates and deletes',
  ],
  'uow.3': [
    'rollback: a failed precondition on the last write discards the earlier writes, audit and events',
    "rollback: a commit whose audit record or event the database refuses writes none of the unit's records, audit or events",
  ],
  'uow.4': [
    'versions: an expectedVersion that does not match fails with VERSION_CONFLICT and writes nothing',
    'versions: mustNotExist on an existing record fails with ALREADY_EXISTS and writes nothing',
    'identifiers: a taken normalized value is refused with DUPLICATE_IDENTIFIER and nothing is written',
    'identifiers: uniqueness is per kind: an email and a username with the same value belong to two users',
    'identifiers: values normalization keeps apart stay apart: no accent-, width- or case-insensitive collation',
    'concurrency: 16 racers consuming one single-use factor state: exactly one commit wins',
  ],
  'uow.5': [
    "versions: writing a user's records without writing the user fails with INVALID_UNIT_OF_WORK",
    "outbox: events carry the user's new version as sequence and their position within the commit",
    "outbox: tenant-level events take the tenant's new version as sequence",
    "sessions: rule 5: a session or token insert or delete needs the user's write; a session update (a refresh) does not",
  ],
  'uow.6': [
    'rollback: a throwing callback writes nothing and its error is rethrown unchanged',
    'rollback: a unit of work leaked out of its callback cannot write afterwards',
  ],
  'uow.7': [
    'versions: a commit into a tenant without a tenant record fails with NOT_FOUND and writes nothing',
  ],
  'uow.8': [
    'records: a write the engine never makes (an unknown status or kind, a value not normalized, nested audit data, no JSON form) is VALIDATION and writes nothing',
  ],
  'store.1': [
    'readiness: an unmigrated store reports not ready with SCHEMA_NOT_READY',
    'readiness: a transaction on an unmigrated store fails with SCHEMA_NOT_READY and never runs its callback',
    'schema-history: a database migrated by a newer release is refused with SCHEMA_NEWER_THAN_CODE',
    'schema-history: a history whose recorded version differs from the code (drift) is refused with SCHEMA_DRIFT',
    "schema-history: a history row with the code's version and name but another checksum (a file edited after it was applied) is refused with SCHEMA_DRIFT",
  ],
  'store.2': ['migration: a second migrate() applies nothing'],
  'store.3': ['rollback: a thrown non-Error value is rethrown unchanged and writes nothing'],
  'store.4': [
    "tenant-isolation: store reads of another tenant's records return null",
    "tenant-isolation: listings show nothing of another tenant's users or audit",
  ],
  'store.5': [
    'pagination: users inserted between pages never make a user present at the start skipped or repeated',
    'pagination: pages hold at most `limit` users, in ascending id order, and end with a null cursor',
    'pagination: a status filter lists only users with that status, across pages',
    'pagination: a malformed cursor or limit fails with VALIDATION',
    'user-search: includeIdentifiers gives every listed user all of its identifiers, in id order; without it, none',
    'user-search: a prefix search lists the users whose identifier of that kind starts with it, in value order',
    'user-search: the order is code-point order, and LIKE wildcards and backslashes in a prefix match literally',
    'user-search: a user matching twice is listed once, at its least matching value, and counted once',
    'user-search: users added or changed between search pages never make an unchanged user skipped or repeated',
    'user-search: countUsers counts what listUsers lists: all, by status, by prefix, in an empty or unknown tenant',
    'user-search: a malformed search, include flag or mismatched cursor fails with VALIDATION',
  ],
  'store.6': [
    'audit: records list in commit order, and in append order within a commit',
    'audit: a user filter lists only that user’s records, in order',
    'audit: pages follow the cursor without gaps or repeats, filtered or not',
    'audit: no counter shared across tenants: records carry no number, cursors none, other tenants change nothing',
    "audit: a cursor resumes only in its own tenant: another tenant's cursor, or an unknown id, is VALIDATION",
  ],
  'store.7': [
    'redaction: errors name ids and codes, never the values involved',
    'redaction: returned objects print only the values asked for, and factor secrets print redacted',
    'redaction: diagnostics hold counts only',
    'closed-store: after close(), every method rejects with STORE_CLOSED, and close() again is a no-op',
  ],
  'store.8': [
    'versions: a conflict raised by the commit is marked as such (markCommitPhase); one the callback throws is not',
  ],
  'store.9': ['tenants: every tenant appears once, in code-point id order, across pages'],
  'store.10': [
    "sessions: findSession: the session and its tenant's status in one read; a deleted session or another tenant's is not found",
    'sessions: session and token records round-trip through units of work, reads seeing buffered writes',
  ],
  'store.11': [
    'sessions: purgeExpired deletes only expired sessions and tokens of the tenant, oldest first, at most limit',
    'sessions: a purge racing refreshes never deletes a session a refresh kept alive',
    'sessions: purgeExpired keeps a session or token whose expiresAt equals before: only expiresAt < before is expired',
  ],
  'store.12': [
    'sessions: listSealedFactors pages factors under other keys in id order; diagnostics count them per key id',
  ],
  'outbox.1': [
    "outbox: claim takes each aggregate's ready prefix in order, at most perAggregate, and nothing more of it meanwhile",
    'outbox: a prefix stops before the first event that is not claimable: leased, not due or dead',
    'outbox: a held lease blocks a second claim; release gives it back without counting an attempt',
    'outbox: concurrent claimers never hold the same event',
    'outbox: relays on separate store instances never hold the same event and keep per-user order',
    'outbox: the limit cuts the last prefix short, never skipping an event; newAggregates bounds how many start',
    'outbox: claim returns only the head of each aggregate, and the next event once the head is published',
    'outbox: an expired lease can be claimed by another relay',
  ],
  'outbox.2': [
    'outbox: an event from a rolled-back commit is never claimed',
    'outbox: an event of a commit that fails is never claimable, not even while that commit runs',
    'outbox: a commit that began earlier but lands later is claimed, not skipped',
  ],
  'outbox.3': [
    'outbox: acknowledge publishes only for the lease holder',
    'outbox: a late acknowledge, fail, release or settle, after the lease expired and another relay claimed, changes nothing',
    'outbox: settle publishes, fails and releases a batch at once, only where the owner holds the lease',
    'outbox: an acknowledge, fail, release or settle after the lease expired changes nothing, even when nobody took the event over',
    "outbox: settle changes nothing for an item whose tenantId is not its event's, and reports it lost",
  ],
  'outbox.4': [
    "outbox: after maxAttempts an event is dead and blocks its user's later events until retryDead",
    "outbox: discardDead unblocks the dead event's user",
  ],
  'outbox.5': [
    "outbox: a continuation claims what follows the owner's last event, renews its lease, and is refused to others",
    "outbox: a continuation claims nothing once the owner's lease on the aggregate lapsed, and the head is free",
    "outbox: a continuation never shortens the head's lease: a shorter leaseMs keeps the later leaseUntil",
  ],
  'throttle.1': [
    'throttle: 16 concurrent failures on one key count exactly 16',
    'throttle: 16 concurrent failures from 4 store instances count exactly 16',
  ],
  'throttle.2': [
    'throttle: each call counts one failure per key, and the lockout follows lockUntil',
    'throttle: a failure a full window after the last one starts the count again at 1',
  ],
  'throttle.3': ['throttle: clear forgets keys; keys are scoped to their tenant'],
}
