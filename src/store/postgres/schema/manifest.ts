import { type SchemaVersion, schemaVersion } from '../../schema-versions.js'

/** One Postgres migration: the SQL file that implements a logical schema version. */
export interface MigrationEntry extends SchemaVersion {
  /** File name under `migrations/postgres/`. */
  readonly file: string
  /** sha256 (hex) of the file with line endings normalized to \n. A test recomputes it. */
  readonly checksum: string
  /** False when the SQL cannot run inside a transaction; then `nonTransactionalReason` says why. */
  readonly transactional: boolean
  readonly nonTransactionalReason?: string
}

/**
 * The Postgres migration manifest: one file per logical schema version, in order. Append only: an applied
 * entry never changes (its checksum would drift).
 */
export const MIGRATIONS: readonly MigrationEntry[] = Object.freeze([
  {
    ...schemaVersion(1),
    file: '0001_user_engine_store.sql',
    checksum: 'cb632e4d8b41ce99c4b6e1727bcefb98ce04a8d46c585893fec905fbfc0da87a',
    transactional: true,
  },
  {
    ...schemaVersion(2),
    file: '0002_identifier_unique_and_keyset_indexes.sql',
    checksum: '329338d110b2c7631f8e1044eca51e64445f29bf2d54336f2e3430419f03f898',
    transactional: true,
  },
  {
    ...schemaVersion(3),
    file: '0003_outbox_claim_index.sql',
    checksum: 'b1e05d6feedef9f8111255db8f420ddbf4833b40494255f1b0453bfe0f092870',
    transactional: false,
    nonTransactionalReason:
      'CREATE INDEX CONCURRENTLY cannot run in a transaction; a plain CREATE INDEX would block outbox inserts.',
  },
  {
    ...schemaVersion(4),
    file: '0004_outbox_id_index_and_db_clock.sql',
    checksum: 'c5277ce12f7a71f177e4559fca4d8e26b4e148606b4f531efcd010c6172daef8',
    transactional: true,
  },
  {
    ...schemaVersion(5),
    file: '0005_outbox_due_order_index.sql',
    checksum: 'bc27ea456d81cfc8f5f094ef23031cc7ef0889b7df54ee504bcca50d96f64761',
    transactional: false,
    nonTransactionalReason:
      'CREATE and DROP INDEX CONCURRENTLY cannot run in a transaction; a plain build would block outbox inserts.',
  },
  {
    ...schemaVersion(6),
    file: '0006_commit_checks_by_primary_key.sql',
    checksum: 'baae25b5b50a09ef9d121c92044ffdfaef7a1625649db89dfc5b97ee3ee8d7e6',
    transactional: true,
  },
  {
    ...schemaVersion(7),
    file: '0007_sign_in_throttle_and_tenant_index.sql',
    checksum: 'f35141e2969f8efe8b8711e73ea9bbe34bdccc2bc1f37b8f878bca166bcde810',
    transactional: true,
  },
  {
    ...schemaVersion(8),
    file: '0008_identifier_prefix_and_audit_context.sql',
    checksum: 'f478ba2bc3b2e9a560f146dcfac5560dd0669dff3a31642d8f03ec61244d6769',
    transactional: false,
    nonTransactionalReason:
      'CREATE INDEX CONCURRENTLY cannot run in a transaction; a plain build would block every commit while it reads every identifier and audit row.',
  },
  {
    ...schemaVersion(9),
    file: '0009_sessions_tokens_and_key_ids.sql',
    checksum: '3a25ea019383989f958ac311518a25f23d2860aa6316cc5b64cf55b028c6f4da',
    transactional: false,
    nonTransactionalReason:
      'CREATE INDEX CONCURRENTLY cannot run in a transaction; a plain build would block every commit while it reads every record.',
  },
  {
    ...schemaVersion(10),
    file: '0010_outbox_pending_aggregate_index.sql',
    checksum: 'f541cd26a18cadcdef9fa1d89748ad8c485975e11fcdc6d6f5560ca986375ae4',
    transactional: false,
    nonTransactionalReason:
      'CREATE and DROP INDEX CONCURRENTLY cannot run in a transaction; a plain build would block outbox inserts.',
  },
  {
    ...schemaVersion(11),
    file: '0011_group_commit.sql',
    checksum: 'a6b69c59fe14bafb27ce7e2d8e2e24fce406755f4e4e1bf489f5afbb0233ceb6',
    transactional: true,
  },
  {
    ...schemaVersion(12),
    file: '0012_group_commit_set_based.sql',
    checksum: '8635a5e2e7e1e3dd1b90ce80978b86953ea670d59da590f2107744433148131a',
    transactional: true,
  },
  {
    ...schemaVersion(13),
    file: '0013_group_commit_refuses_suspended_tenant.sql',
    checksum: '9c874924af93e8d0f76689db0b4d9c0f8827bab821fc7aab4426058af2b0dd7e',
    transactional: true,
  },
])
