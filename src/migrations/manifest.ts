import type { RecordType } from '../domain/records.js'

export interface MigrationEntry {
  /** Consecutive from 1. */
  readonly version: number
  readonly name: string
  /** File name under `migrations/postgres/`. */
  readonly file: string
  /** sha256 (hex) of the file with line endings normalized to \n. A test recomputes it. */
  readonly checksum: string
  /** False when the SQL cannot run inside a transaction; then `nonTransactionalReason` says why. */
  readonly transactional: boolean
  readonly nonTransactionalReason?: string
  /** The logical record types whose storage this migration creates or changes. */
  readonly recordTypes: readonly RecordType[]
  /** Why the migration exists, for providers translating it. */
  readonly purpose: string
}

/** The ordered migration manifest. Append only: an applied entry never changes (its checksum would drift). */
export const MIGRATIONS: readonly MigrationEntry[] = Object.freeze([
  {
    version: 1,
    name: 'user_engine_store',
    file: '0001_user_engine_store.sql',
    checksum: 'cb632e4d8b41ce99c4b6e1727bcefb98ce04a8d46c585893fec905fbfc0da87a',
    transactional: true,
    recordTypes: ['tenant', 'user', 'identifier', 'profile', 'factor'],
    purpose:
      'The generic store: schema history, records, audit, outbox, and the one-statement commit function.',
  },
  {
    version: 2,
    name: 'identifier_unique_and_keyset_indexes',
    file: '0002_identifier_unique_and_keyset_indexes.sql',
    checksum: '329338d110b2c7631f8e1044eca51e64445f29bf2d54336f2e3430419f03f898',
    transactional: true,
    recordTypes: ['identifier', 'user'],
    purpose:
      'Race-proof per-tenant identifier uniqueness; indexes for user, status, audit and outbox queries.',
  },
  {
    version: 3,
    name: 'outbox_claim_index',
    file: '0003_outbox_claim_index.sql',
    checksum: 'b1e05d6feedef9f8111255db8f420ddbf4833b40494255f1b0453bfe0f092870',
    transactional: false,
    nonTransactionalReason:
      'CREATE INDEX CONCURRENTLY cannot run in a transaction; a plain CREATE INDEX would block outbox inserts.',
    recordTypes: [],
    purpose: "The relay's claim index on due pending events.",
  },
  {
    version: 4,
    name: 'outbox_id_index_and_db_clock',
    file: '0004_outbox_id_index_and_db_clock.sql',
    checksum: 'c5277ce12f7a71f177e4559fca4d8e26b4e148606b4f531efcd010c6172daef8',
    transactional: true,
    recordTypes: [],
    purpose:
      'An index of leased and dead outbox events for the id-only relay and operator statements; user_engine_commit sets available_at from the database clock.',
  },
  {
    version: 5,
    name: 'outbox_due_order_index',
    file: '0005_outbox_due_order_index.sql',
    checksum: 'bc27ea456d81cfc8f5f094ef23031cc7ef0889b7df54ee504bcca50d96f64761',
    transactional: false,
    nonTransactionalReason:
      'CREATE and DROP INDEX CONCURRENTLY cannot run in a transaction; a plain build would block outbox inserts.',
    recordTypes: [],
    purpose:
      "The relay claim's due-order index (the one index not led by tenant_id: claims span tenants); drops 0003's index.",
  },
  {
    version: 6,
    name: 'commit_checks_by_primary_key',
    file: '0006_commit_checks_by_primary_key.sql',
    checksum: 'baae25b5b50a09ef9d121c92044ffdfaef7a1625649db89dfc5b97ee3ee8d7e6',
    transactional: true,
    recordTypes: ['identifier'],
    purpose:
      'user_engine_commit decides existence by primary key (ON CONFLICT) and checks identifier values after the write.',
  },
])

/** The schema version this code needs: the manifest's last entry. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version

/** The keys every store's `diagnostics().counts` carries. Counts only: never a value. */
export const DIAGNOSTIC_COUNT_KEYS = [
  'tenants',
  'users',
  'identifiers',
  'profiles',
  'factors',
  'audit_records',
  'outbox_pending',
  'outbox_published',
  'outbox_dead',
  'outbox_discarded',
] as const
export type DiagnosticCountKey = (typeof DIAGNOSTIC_COUNT_KEYS)[number]
