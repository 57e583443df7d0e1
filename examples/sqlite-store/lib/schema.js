// @ts-check
// The SQLite translation of user-engine's logical schema versions (SCHEMA_VERSIONS from 'user-engine'): one
// SQL script per version, recorded in ue_schema_versions with the SHA-256 of the script as its checksum.
//
// SQLite's default collation, BINARY, compares text with memcmp over UTF-8: exactly Unicode code-point order,
// the order the contract asks for (Postgres's COLLATE "C"). It never folds case or accents, so identifier
// uniqueness is byte for byte. No column here declares NOCASE or any other collation.
import { createHash } from 'node:crypto'
import { LATEST_SCHEMA_VERSION, SCHEMA_VERSIONS } from 'user-engine'

/** The schema history, created before version 1 so that version 1 itself can be recorded. */
export const HISTORY_TABLE = `CREATE TABLE IF NOT EXISTS ue_schema_versions (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at TEXT NOT NULL,
  execution_ms INTEGER NOT NULL
)`

/** @type {Record<number, string>} */
const SCRIPTS = {
  // Every record is one row: its type and id, the user it belongs to, a version and a JSON payload. Audit
  // records and outbox events have tables of their own. `seq` columns keep insertion (commit) order and are
  // never shown: a listing's cursor names a record id instead.
  1: `
CREATE TABLE ue_records (
  tenant_id TEXT NOT NULL,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  user_id TEXT,
  version INTEGER NOT NULL CHECK (version >= 1),
  payload TEXT NOT NULL CHECK (json_valid(payload)),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  ident_kind TEXT,
  ident_value TEXT,
  PRIMARY KEY (tenant_id, type, id)
);
CREATE INDEX ue_records_user_idx ON ue_records (tenant_id, user_id, type, id);
CREATE TABLE ue_audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  occurred_at TEXT NOT NULL,
  action TEXT NOT NULL,
  user_id TEXT,
  actor_id TEXT,
  data TEXT NOT NULL CHECK (json_valid(data))
);
CREATE TABLE ue_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  aggregate_type TEXT NOT NULL CHECK (aggregate_type IN ('tenant', 'user')),
  aggregate_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  position INTEGER NOT NULL,
  type TEXT NOT NULL,
  payload TEXT NOT NULL CHECK (json_valid(payload)),
  occurred_at TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'published', 'dead', 'discarded')),
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at_ms INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until_ms INTEGER,
  published_at_ms INTEGER,
  last_error TEXT,
  UNIQUE (tenant_id, id)
);
CREATE INDEX ue_outbox_id_idx ON ue_outbox (id);`,
  // Identifier uniqueness is the database's: one unique index per tenant, kind and normalized value, over
  // identifier rows only. Leaving out the kind would make an email and a username with the same text collide.
  2: `
CREATE UNIQUE INDEX ue_identifier_value_key ON ue_records (tenant_id, ident_kind, ident_value)
  WHERE type = 'identifier';
CREATE INDEX ue_users_status_idx ON ue_records (tenant_id, json_extract(payload, '$.status'), id)
  WHERE type = 'user';
CREATE INDEX ue_audit_tenant_idx ON ue_audit (tenant_id, seq);
CREATE INDEX ue_audit_user_idx ON ue_audit (tenant_id, user_id, seq);
CREATE INDEX ue_outbox_aggregate_idx ON ue_outbox (tenant_id, aggregate_type, aggregate_id, sequence, position);`,
  3: `
CREATE INDEX ue_outbox_due_idx ON ue_outbox (available_at_ms) WHERE status = 'pending';`,
  4: `
CREATE INDEX ue_outbox_leased_or_dead_idx ON ue_outbox (id) WHERE lease_owner IS NOT NULL OR status = 'dead';`,
  5: `
CREATE INDEX ue_outbox_claim_order_idx ON ue_outbox (available_at_ms, seq) WHERE status = 'pending';
DROP INDEX ue_outbox_due_idx;`,
  // Postgres moved its commit function's existence checks to primary keys here. This store's commit is a
  // SQLite transaction in store code that already relies on the primary key and the unique index, so the
  // version changes no schema; it is recorded so the history matches the logical versions.
  6: `
SELECT 1;`,
  7: `
CREATE TABLE ue_throttle (
  tenant_id TEXT NOT NULL,
  key TEXT NOT NULL,
  failures INTEGER NOT NULL,
  last_failure_ms INTEGER NOT NULL,
  locked_until TEXT,
  PRIMARY KEY (tenant_id, key)
);
CREATE INDEX ue_tenants_idx ON ue_records (id) WHERE type = 'tenant';`,
  // Prefix search reads one range [prefix, upper) of this index, in BINARY (code-point) order.
  8: `
CREATE INDEX ue_identifier_prefix_idx ON ue_records (tenant_id, ident_kind, ident_value, user_id)
  WHERE type = 'identifier';
ALTER TABLE ue_audit ADD COLUMN request_id TEXT;
ALTER TABLE ue_audit ADD COLUMN client_ip TEXT;
ALTER TABLE ue_audit ADD COLUMN user_agent TEXT;
CREATE UNIQUE INDEX ue_audit_id_key ON ue_audit (tenant_id, id);`,
  // Sessions and tokens are records like the others; their expiry gets a column and a tenant-led index for
  // the bounded purge, and factors get the key id of their sealed secret (set here for factors written before).
  9: `
ALTER TABLE ue_records ADD COLUMN expires_at TEXT;
ALTER TABLE ue_records ADD COLUMN key_id TEXT;
CREATE INDEX ue_expiry_idx ON ue_records (tenant_id, expires_at, type, id) WHERE type IN ('session', 'token');
UPDATE ue_records
  SET key_id = json_extract(payload, '$.secret.keyId'),
      payload = json_set(payload, '$.keyId', json_extract(payload, '$.secret.keyId'))
  WHERE type = 'factor' AND json_type(payload, '$.secret.keyId') = 'text';
CREATE INDEX ue_sealed_key_idx ON ue_records (tenant_id, id, key_id) WHERE type = 'factor' AND key_id IS NOT NULL;`,
  10: `
CREATE INDEX ue_outbox_pending_aggregate_idx ON ue_outbox (tenant_id, aggregate_type, aggregate_id, sequence, position)
  WHERE status IN ('pending', 'dead');
DROP INDEX ue_outbox_aggregate_idx;
CREATE INDEX ue_outbox_dead_idx ON ue_outbox (id) WHERE status = 'dead';
DROP INDEX ue_outbox_leased_or_dead_idx;`,
  // Group commit is a Postgres-store optimization (a batch function); this store commits one unit per
  // transaction, so the version changes nothing here but is recorded like the others.
  11: `
SELECT 'group_commit: nothing to change in SQLite';`,
  // Set-based group commit is the Postgres batch function's own way of applying a batch: nothing here.
  12: `
SELECT 'group_commit_set_based: nothing to change in SQLite';`,
  // The batch function refusing a suspended tenant is the Postgres store's own: this store commits one unit
  // per transaction and reads the tenant in it.
  13: `
SELECT 'group_commit_refuses_suspended_tenant: nothing to change in SQLite';`,
}

/**
 * @typedef {{ version: number, name: string, sql: string, checksum: string }} SqliteMigration
 */

/** @type {readonly SqliteMigration[]} */
export const MIGRATIONS = Object.freeze(
  SCHEMA_VERSIONS.map((v) => {
    const sql = SCRIPTS[v.version]
    if (sql === undefined) {
      // A user-engine release with a logical version this store does not implement yet: the store can
      // never become ready, and says so at import rather than at the first transaction.
      throw new Error(
        `user-engine's schema version ${v.version} (${v.name}) has no SQLite translation in this store`,
      )
    }
    return {
      version: v.version,
      name: v.name,
      sql,
      checksum: createHash('sha256').update(sql.trim()).digest('hex'),
    }
  }),
)

if (MIGRATIONS.length !== LATEST_SCHEMA_VERSION) {
  throw new Error('the SQLite migrations and user-engine disagree on the latest schema version')
}
