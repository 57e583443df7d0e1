/**
 * Every statement the Postgres store sends, in one place. All values are parameters ($n); nothing is ever
 * spliced into this text. Every statement on tenant data names `tenant_id` first, so it uses the keys.
 */

const ROW = 'record_type, record_id, user_id, version, payload, created_at, updated_at'
const OUTBOX = `tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at,
  status, attempts, available_at, lease_owner, lease_until, published_at, last_error`
const AUDIT = 'seq, id, occurred_at, action, user_id, actor_id, data'
// Delivery state may only change while the caller's lease holds, judged by the database clock.
// `lease_owner = $1` also lets these id-only statements use the partial index of leased events
// (user_engine_outbox_leased_or_dead_idx, 0004) instead of reading the whole outbox.
const HELD = `status = 'pending' AND lease_owner = $1 AND lease_until > now()`
const MS = `* interval '1 millisecond'`

export const SQL = {
  throttle: {
    read: `SELECT key, failures, locked_until FROM user_engine_throttle WHERE tenant_id = $1 AND key = ANY($2::text[])`,
    // Keys in sorted order, so two callers locking the same keys cannot deadlock. The count restarts when
    // the last failure is windowMs ($4) or more before now ($3); policy $5..$7 = lockAfter, baseMs, maxMs.
    recordFailure: `INSERT INTO user_engine_throttle AS t (tenant_id, key, failures, last_failure_at, locked_until)
      SELECT $1, k, 1, $3::timestamptz, user_engine_lock_until(1, $5, $6, $7, $3::timestamptz)
      FROM unnest($2::text[]) AS k ORDER BY k
      ON CONFLICT (tenant_id, key) DO UPDATE SET
        failures = CASE WHEN t.last_failure_at <= $3::timestamptz - $4::bigint ${MS} THEN 1 ELSE t.failures + 1 END,
        last_failure_at = $3::timestamptz,
        locked_until = user_engine_lock_until(
          CASE WHEN t.last_failure_at <= $3::timestamptz - $4::bigint ${MS} THEN 1 ELSE t.failures + 1 END,
          $5, $6, $7, $3::timestamptz)
      RETURNING key, failures, locked_until`,
    clear: 'DELETE FROM user_engine_throttle WHERE tenant_id = $1 AND key = ANY($2::text[])',
  },
  /** The whole unit of work in one statement: one round trip, atomic, preconditions checked inside. */
  commit: 'SELECT user_engine_commit($1, $2::jsonb, $3::jsonb, $4::jsonb, $5::timestamptz)',

  readRow: `SELECT ${ROW} FROM user_engine_records WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3`,
  // Matches the expression index user_engine_identifier_value_key.
  readIdentifierRow: `SELECT ${ROW} FROM user_engine_records
    WHERE tenant_id = $1 AND record_type = 'identifier' AND payload->>'kind' = $2 AND payload->>'value' = $3`,
  readUserRows: `SELECT ${ROW} FROM user_engine_records
    WHERE tenant_id = $1 AND user_id = $2 AND record_type = $3 ORDER BY record_id`,
  findUserByIdentifier: `SELECT u.record_type, u.record_id, u.user_id, u.version, u.payload, u.created_at, u.updated_at
    FROM user_engine_records i
    JOIN user_engine_records u
      ON u.tenant_id = i.tenant_id AND u.record_type = 'user' AND u.record_id = i.user_id
    WHERE i.tenant_id = $1 AND i.record_type = 'identifier' AND i.payload->>'kind' = $2 AND i.payload->>'value' = $3`,

  // The one read across tenants, by 0007's partial index on tenant records (code-point order, as in memory).
  listTenants: `SELECT tenant_id, ${ROW} FROM user_engine_records
    WHERE record_type = 'tenant' AND tenant_id COLLATE "C" > $1 ORDER BY tenant_id COLLATE "C" LIMIT $2`,
  // Keyset pages: record_id is COLLATE "C", so order and `>` agree with the reference store on any locale.
  listUsers: `SELECT ${ROW} FROM user_engine_records
    WHERE tenant_id = $1 AND record_type = 'user' AND record_id > $2 ORDER BY record_id LIMIT $3`,
  listUsersByStatus: `SELECT ${ROW} FROM user_engine_records
    WHERE tenant_id = $1 AND record_type = 'user' AND payload->>'status' = $4 AND record_id > $2
    ORDER BY record_id LIMIT $3`,
  listAudit: `SELECT ${AUDIT} FROM user_engine_audit WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
  listAuditForUser: `SELECT ${AUDIT} FROM user_engine_audit
    WHERE tenant_id = $1 AND user_id = $4 AND seq > $2 ORDER BY seq LIMIT $3`,

  // Store rule 10: the session and its tenant's status in one statement, both rows by primary key. Only the
  // status of the tenant: every further column costs the hot path its parsing.
  // Times come as ISO 8601 text, as toISOString writes them: no Date parsed and formatted again per call.
  findSession: `SELECT s.record_id, s.user_id, s.version, s.payload,
      to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
      to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated_at,
      t.payload->>'status' AS tenant_status
    FROM user_engine_records s
    JOIN user_engine_records t ON t.tenant_id = s.tenant_id AND t.record_type = 'tenant' AND t.record_id = s.tenant_id
    WHERE s.tenant_id = $1 AND s.record_type = 'session' AND s.record_id = $2`,
  // Store rule 11, by 0008's expiry index: oldest expiry first (then type and id), at most $3. The outer condition is checked
  // again on the row it deletes, so a session a refresh moved past $2 meanwhile is kept.
  purgeExpired: `DELETE FROM user_engine_records r
    WHERE r.tenant_id = $1 AND r.record_type IN ('session', 'token')
      AND (r.payload->>'expiresAt') COLLATE "C" < $2
      AND (r.record_type, r.record_id) IN (
        SELECT record_type, record_id FROM user_engine_records
        WHERE tenant_id = $1 AND record_type IN ('session', 'token') AND (payload->>'expiresAt') COLLATE "C" < $2
        ORDER BY (payload->>'expiresAt') COLLATE "C", record_type, record_id LIMIT $3)
    RETURNING r.record_type`,
  // Store rule 12: the tenant's factors in key order by primary key; keyId is compared, never indexed.
  listSealedFactors: `SELECT ${ROW} FROM user_engine_records
    WHERE tenant_id = $1 AND record_type = 'factor' AND record_id > $2
      AND payload->>'keyId' IS NOT NULL AND payload->>'keyId' <> $3
    ORDER BY record_id LIMIT $4`,
  sealedByKeyId: `SELECT payload->>'keyId' AS key_id, count(*) AS n FROM user_engine_records
    WHERE record_type = 'factor' AND payload->>'keyId' IS NOT NULL GROUP BY 1`,

  diagnostics: `SELECT 'record:' || record_type AS key, count(*) AS n FROM user_engine_records GROUP BY record_type
    UNION ALL SELECT 'audit', count(*) FROM user_engine_audit
    UNION ALL SELECT 'outbox:' || status, count(*) FROM user_engine_outbox GROUP BY status`,

  schemaTableExists: `SELECT to_regclass('user_engine_schema_versions') IS NOT NULL AS present`,
  schemaHistory: 'SELECT version, name, checksum FROM user_engine_schema_versions ORDER BY version',

  outbox: {
    /**
     * Claim by state in one statement. Candidates: pending, due, unleased or lease-expired, and the head of
     * their aggregate (no earlier pending or dead event). SKIP LOCKED lets concurrent relays pass each
     * other's candidates instead of waiting; the lease is set in the same statement.
     * The row comparison is an index condition on user_engine_outbox_aggregate_idx, so a head check reads
     * only earlier events of the aggregate, not all of its pending ones.
     */
    claim: `WITH candidates AS (
        SELECT o.tenant_id, o.id FROM user_engine_outbox o
        WHERE o.status = 'pending' AND o.available_at <= now()
          AND (o.lease_until IS NULL OR o.lease_until <= now())
          AND NOT EXISTS (
            SELECT 1 FROM user_engine_outbox p
            WHERE p.tenant_id = o.tenant_id AND p.aggregate_id = o.aggregate_id
              AND p.aggregate_type = o.aggregate_type AND p.status IN ('pending', 'dead')
              AND (p.sequence, p.position) < (o.sequence, o.position))
        ORDER BY o.available_at, o.tenant_id, o.aggregate_id, o.sequence, o.position
        LIMIT $2
        FOR UPDATE OF o SKIP LOCKED)
      UPDATE user_engine_outbox u SET lease_owner = $1, lease_until = now() + $3::integer ${MS}
      FROM candidates c WHERE u.tenant_id = c.tenant_id AND u.id = c.id
      RETURNING u.tenant_id, u.id, u.aggregate_type, u.aggregate_id, u.sequence, u.position, u.type, u.payload,
        u.occurred_at, u.status, u.attempts, u.available_at, u.lease_owner, u.lease_until, u.published_at,
        u.last_error`,
    acknowledge: `UPDATE user_engine_outbox
      SET status = 'published', published_at = now(), lease_owner = NULL, lease_until = NULL
      WHERE id IN (SELECT jsonb_array_elements_text($2::jsonb)) AND ${HELD}
      RETURNING id`,
    fail: `UPDATE user_engine_outbox
      SET attempts = attempts + 1, last_error = $3, lease_owner = NULL, lease_until = NULL,
        status = CASE WHEN attempts + 1 >= $4::integer THEN 'dead' ELSE 'pending' END,
        available_at = CASE WHEN attempts + 1 >= $4::integer THEN available_at
                            ELSE now() + $5::integer ${MS} END
      WHERE id = $2 AND ${HELD}
      RETURNING status`,
    release: `UPDATE user_engine_outbox SET lease_owner = NULL, lease_until = NULL
      WHERE id IN (SELECT jsonb_array_elements_text($2::jsonb)) AND ${HELD}
      RETURNING id`,
    // status = 'dead' implies the predicate of user_engine_outbox_leased_or_dead_idx (0004): no full read.
    retryDead: `UPDATE user_engine_outbox SET status = 'pending', attempts = 0, available_at = now()
      WHERE id = $1 AND status = 'dead' RETURNING id`,
    discardDead: `UPDATE user_engine_outbox SET status = 'discarded' WHERE id = $1 AND status = 'dead' RETURNING id`,
    // Bounded: one batch per call, so a purge never holds a long lock or a huge transaction.
    purgePublished: `DELETE FROM user_engine_outbox WHERE ctid IN (
        SELECT ctid FROM user_engine_outbox
        WHERE status = 'published' AND published_at < now() - $1::bigint ${MS}
        LIMIT $2)
      RETURNING id`,
    lag: `SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
        count(*) FILTER (WHERE status = 'dead') AS dead,
        coalesce(greatest(0, floor(extract(epoch FROM now() - min(occurred_at) FILTER (WHERE status = 'pending')) * 1000)), 0) AS oldest_ms
      FROM user_engine_outbox WHERE status IN ('pending', 'dead')`,
    get: `SELECT ${OUTBOX} FROM user_engine_outbox WHERE id = $1`,
    listForAggregate: `SELECT ${OUTBOX} FROM user_engine_outbox
      WHERE tenant_id = $1 AND aggregate_id = $2 ORDER BY sequence, position`,
  },
} as const
