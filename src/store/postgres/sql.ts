import { OUTBOX_SQL } from './outbox-sql.js'

/**
 * Every statement the Postgres store sends (the relay's in outbox-sql.ts). All values are parameters ($n); nothing is ever
 * spliced into this text. Every statement on tenant data names `tenant_id` first, so it uses the keys.
 */

// A record's columns. Point reads take them by position (postgres-store.ts, storedRowOfText): keep the order.
const ROW = 'record_type, record_id, user_id, version, payload, created_at, updated_at'
// Schema 8 added the request context; on an older schema (requireLatestSchema: false) it reads as null.
const AUDIT = 'id, occurred_at, action, user_id, actor_id, request_id, client_ip, user_agent, data'
const AUDIT_BEFORE_8 =
  'id, occurred_at, action, user_id, actor_id, NULL::text AS request_id, NULL::text AS client_ip, NULL::text AS user_agent, data'
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
  /** Group commit (0011): a JSON array of plans, each in its own subtransaction; a row per failed unit. */
  commitBatch: `SELECT unit_index, sql_state, error_detail, constraint_name, table_name, column_name
    FROM user_engine_commit_batch($1::jsonb)`,

  readRow: `SELECT ${ROW} FROM user_engine_records WHERE tenant_id = $1 AND record_type = $2 AND record_id = $3`,
  // Matches the expression index user_engine_identifier_value_key.
  readIdentifierRow: `SELECT ${ROW} FROM user_engine_records
    WHERE tenant_id = $1 AND record_type = 'identifier' AND payload->>'kind' = $2 AND payload->>'value' = $3`,
  readUserRows: `SELECT ${ROW} FROM user_engine_records
    WHERE tenant_id = $1 AND user_id = $2 AND record_type = $3 ORDER BY record_id`,
  // A scalar subquery, not a join: the same two index probes (the identifier is unique per tenant and kind),
  // planned in 0.10-0.18 ms against the join's 0.25 ms, which an unprepared lookup pays every time.
  findUserByIdentifier: `SELECT ${ROW} FROM user_engine_records
    WHERE tenant_id = $1 AND record_type = 'user' AND record_id = (
      SELECT i.user_id FROM user_engine_records i
      WHERE i.tenant_id = $1 AND i.record_type = 'identifier' AND i.payload->>'kind' = $2 AND i.payload->>'value' = $3)`,

  // The one read across tenants, by 0007's partial index on tenant records (code-point order, as in memory).
  listTenants: `SELECT tenant_id, ${ROW} FROM user_engine_records
    WHERE record_type = 'tenant' AND tenant_id COLLATE "C" > $1 ORDER BY tenant_id COLLATE "C" LIMIT $2`,
  // Store rule 10: the session and its tenant's status in one statement, both rows by primary key. Only what
  // the record needs, in this order (the store reads it by position): not record_id, which is $2; the status
  // alone of the tenant; the times as ISO 8601 text, as toISOString writes them, so no Date is parsed.
  findSession: `SELECT s.user_id, s.version, s.payload,
      to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
      to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated_at,
      t.payload->>'status' AS tenant_status
    FROM user_engine_records s
    JOIN user_engine_records t ON t.tenant_id = s.tenant_id AND t.record_type = 'tenant' AND t.record_id = s.tenant_id
    WHERE s.tenant_id = $1 AND s.record_type = 'session' AND s.record_id = $2`,
  // Store rule 11, by 0009's expiry index: oldest expiry first (then type and id), at most $3. The outer condition is checked
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

  countUsers: `SELECT count(*) AS n FROM user_engine_records WHERE tenant_id = $1 AND record_type = 'user'`,
  countUsersByStatus: `SELECT count(*) AS n FROM user_engine_records
    WHERE tenant_id = $1 AND record_type = 'user' AND payload->>'status' = $2`,

  schemaTableExists: `SELECT to_regclass('user_engine_schema_versions') IS NOT NULL AS present`,
  schemaHistory: 'SELECT version, name, checksum FROM user_engine_schema_versions ORDER BY version',

  outbox: OUTBOX_SQL,
} as const

/** Positional parameters for a statement composed from fixed fragments: values never enter the text. */
export class Params {
  readonly values: unknown[] = []
  /** Adds a value; returns its placeholder (`$n`). */
  add(value: unknown): string {
    this.values.push(value)
    return `$${this.values.length}`
  }
}

// An identifier value in code-point order: the expression of user_engine_identifier_prefix_idx (0008).
const valueC = (alias: string) => `(${alias}.payload->>'value') COLLATE "C"`
// ROW's columns, each written by `column`: qualified by a table alias, or a NULL in its place.
const rowColumns = (column: (name: string) => string) => ROW.split(', ').map(column).join(', ')
const USER_COLUMNS = rowColumns((c) => `u.${c}`)
// A listed user's identifiers as text: a line per identifier, `<user id> <id> <kind> <verified> <value as JSON>`
// (ids and kinds hold no space; JSON escapes any newline), unordered (the store sorts each user's two or three).
// string_agg of text costs the server less than json_agg of arrays, and splitting it costs the client less than
// parsing JSON (postgres-store.ts decodeIdentifiers). One concat_ws, not a chain of `||` (a new text each):
// 0.16 against 0.28-0.40 ms for a page of 50. concat_ws skips nulls, so every argument but the ids (never
// null here) has a default.
const IDENTIFIER_LINES = `string_agg(concat_ws(' ', x.user_id, x.record_id, coalesce(x.payload->>'kind', ''),
      coalesce(x.payload->>'verified', ''), coalesce(x.payload->'value', 'null'::jsonb)), E'\\n')`
// A prefix page's users are in value order, scattered in id order: a subquery per listed user.
// user_id has the default collation and record_id "C": without the explicit collation the comparison cannot
// use user_engine_records_user_idx.
const IDENTIFIERS_OF_U = `(SELECT ${IDENTIFIER_LINES}
    FROM user_engine_records x
    WHERE x.tenant_id = u.tenant_id AND x.user_id = u.record_id COLLATE "default"
      AND x.record_type = 'identifier') AS identifiers`
const PAGE_COLUMNS = rowColumns((c) => `p.${c}`)
const NO_ROW = rowColumns(() => 'NULL')

/**
 * A value the planner cannot see: `(SELECT $n::type)` is an InitPlan, so a custom plan estimates the statement
 * exactly as the generic plan does and the plan cache keeps the generic plan after its five custom ones. A page
 * by id has one sensible plan whatever the values, and planning it on every call (0.08 ms, 0.13 with
 * identifiers, on a quiet machine: the table has seven indexes) cost more than running it.
 */
const opaque = (placeholder: string, type: 'text' | 'bigint') => `(SELECT ${placeholder}::${type})`

/** Where a prefix search reads: one index range of identifier values, [lower, upper). */
export interface PrefixRange {
  readonly kind: string
  readonly lower: string
  /** null: no string is above every match (a prefix of U+10FFFF only); the range is open. */
  readonly upper: string | null
}

export interface ListUsersStatement {
  readonly tenantId: string
  readonly limit: number
  /** The last user id of the previous page (id order), or the last matched value (prefix order). */
  readonly after: string | null
  readonly status: string | undefined
  readonly prefix: PrefixRange | undefined
  readonly includeIdentifiers: boolean
}

/**
 * One page of users as one statement. By id: a keyset over the primary key (or the status index). By prefix: a
 * range of user_engine_identifier_prefix_idx read in value order, so LIMIT stops after one page whatever the
 * tenant's size; each user once, at its least matching value (NOT EXISTS a smaller match of the same user).
 *
 * Identifiers of a page by id come in one more row (its record columns null; the users' rows come first),
 * holding every identifier of the page as IDENTIFIER_LINES: the page's users lie in one range of
 * user_engine_records_user_idx, between their least and greatest id in the index's (default) collation, so
 * one range scan reads them all instead of a probe per user. Where that collation orders ids unlike "C" the
 * range may hold other users' identifiers too; the store keeps only the page's. With a status filter the
 * page's users may be far apart, so the identifiers are read by the page's ids instead (one index scan, a
 * descent per id). Identifiers of a prefix page come from a subquery per listed user.
 */
export function listUsersStatement(q: ListUsersStatement): { text: string; values: unknown[] } {
  const p = new Params()
  const tenant = p.add(q.tenantId)
  if (!q.prefix) {
    const t = opaque(tenant, 'text')
    const after = q.after === null ? '' : ` AND u.record_id > ${opaque(p.add(q.after), 'text')}`
    const status =
      q.status === undefined ? '' : ` AND u.payload->>'status' = ${opaque(p.add(q.status), 'text')}`
    const page = `SELECT ${USER_COLUMNS} FROM user_engine_records u
      WHERE u.tenant_id = ${t} AND u.record_type = 'user'${after}${status}
      ORDER BY u.record_id LIMIT ${opaque(p.add(q.limit + 1), 'bigint')}`
    if (!q.includeIdentifiers) return { text: page, values: p.values }
    const ofPage =
      q.status === undefined
        ? `x.user_id >= (SELECT min(p.record_id COLLATE "default") FROM p)
          AND x.user_id <= (SELECT max(p.record_id COLLATE "default") FROM p)`
        : `x.user_id = ANY(ARRAY(SELECT p.record_id COLLATE "default" FROM p))`
    // No ORDER BY over the union: the users' rows then leave as the page reads them, and the client parses
    // them while the server builds the identifiers' row (0.48 against 0.60 ms a page, one caller). The store
    // does not rely on the executor's order: it finds the identifiers' row anywhere and checks the users'.
    const text = `WITH p AS MATERIALIZED (${page})
      SELECT ${PAGE_COLUMNS}, NULL AS identifiers FROM p
      UNION ALL
      SELECT ${NO_ROW}, (SELECT ${IDENTIFIER_LINES} FROM user_engine_records x
        WHERE x.tenant_id = ${t} AND x.record_type = 'identifier' AND ${ofPage})`
    return { text, values: p.values }
  }
  const columns = q.includeIdentifiers ? `${USER_COLUMNS}, ${IDENTIFIERS_OF_U}` : USER_COLUMNS
  const status = q.status === undefined ? '' : ` AND u.payload->>'status' = ${p.add(q.status)}`
  const kind = p.add(q.prefix.kind)
  const lower = p.add(q.prefix.lower)
  const upper = q.prefix.upper === null ? '' : ` AND ${valueC('i')} < ${p.add(q.prefix.upper)}`
  const after = q.after === null ? '' : ` AND ${valueC('i')} > ${p.add(q.after)}`
  const text = `SELECT ${columns}, i.payload->>'value' AS match_value
    FROM user_engine_records i
    JOIN user_engine_records u ON u.tenant_id = i.tenant_id AND u.record_type = 'user' AND u.record_id = i.user_id
    WHERE i.tenant_id = ${tenant} AND i.record_type = 'identifier' AND i.payload->>'kind' = ${kind}
      AND ${valueC('i')} >= ${lower}${upper}${after}${status}
      AND NOT EXISTS (SELECT 1 FROM user_engine_records j
        WHERE j.tenant_id = i.tenant_id AND j.user_id = i.user_id AND j.record_type = 'identifier'
          AND j.payload->>'kind' = i.payload->>'kind' AND ${valueC('j')} >= ${lower} AND ${valueC('j')} < ${valueC('i')})
    ORDER BY ${valueC('i')} LIMIT ${p.add(q.limit + 1)}`
  return { text, values: p.values }
}

/** How many distinct users a prefix search matches, with the same range and status filter. */
export function countPrefixStatement(
  tenantId: string,
  prefix: PrefixRange,
  status: string | undefined,
): { text: string; values: unknown[] } {
  const p = new Params()
  const tenant = p.add(tenantId)
  const kind = p.add(prefix.kind)
  const lower = p.add(prefix.lower)
  const upper = prefix.upper === null ? '' : ` AND ${valueC('i')} < ${p.add(prefix.upper)}`
  const join =
    status === undefined
      ? ''
      : ` JOIN user_engine_records u ON u.tenant_id = i.tenant_id AND u.record_type = 'user'
          AND u.record_id = i.user_id AND u.payload->>'status' = ${p.add(status)}`
  const text = `SELECT count(DISTINCT i.user_id) AS n FROM user_engine_records i${join}
    WHERE i.tenant_id = ${tenant} AND i.record_type = 'identifier' AND i.payload->>'kind' = ${kind}
      AND ${valueC('i')} >= ${lower}${upper}`
  return { text, values: p.values }
}

/**
 * One page of a tenant's (or one user's) audit trail in seq order. seq is the order, never shown: a cursor
 * names the last record listed by id (user_engine_audit_id_key, 0008) and the statement resumes after its seq.
 * With a cursor, no row at all means the cursor names no record of this tenant; a row of nulls, an empty page.
 */
export function listAuditStatement(q: {
  tenantId: string
  limit: number
  afterId: string | null
  userId: string | undefined
  /** False on a schema before 8 (no request context columns). */
  requestContext: boolean
}): { text: string; values: unknown[] } {
  const p = new Params()
  const tenant = p.add(q.tenantId)
  const columns = q.requestContext ? AUDIT : AUDIT_BEFORE_8
  const user = q.userId === undefined ? '' : ` AND user_id = ${p.add(q.userId)}`
  const limit = p.add(q.limit + 1)
  if (q.afterId === null) {
    const text = `SELECT true AS found, ${columns} FROM user_engine_audit
      WHERE tenant_id = ${tenant}${user} ORDER BY seq LIMIT ${limit}`
    return { text, values: p.values }
  }
  const text = `WITH c AS (SELECT seq FROM user_engine_audit WHERE tenant_id = ${tenant} AND id = ${p.add(q.afterId)})
    SELECT true AS found, a.* FROM c LEFT JOIN LATERAL (
      SELECT seq, ${columns} FROM user_engine_audit
      WHERE tenant_id = ${tenant} AND seq > c.seq${user} ORDER BY seq LIMIT ${limit}) a ON true
    ORDER BY a.seq`
  return { text, values: p.values }
}
