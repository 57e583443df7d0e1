/**
 * The relay's statements (claim, settle, retry and discard of dead events, purge, lag), kept apart from the
 * store's record statements. All values are parameters ($n); nothing is ever spliced into this text.
 */

const OUTBOX = `tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at,
  status, attempts, available_at, lease_owner, lease_until, published_at, last_error`
// Delivery state may only change while the caller's lease holds, judged by the database clock. The id-only
// statements below (acknowledge, fail, release) read the pending events to find theirs (status = 'pending'
// implies the pending indexes' predicates); relays settle by tenant and id instead, through the primary key.
const HELD = `status = 'pending' AND lease_owner = $1 AND lease_until > now()`
// The relay's claim and settle statements commit without waiting for their WAL flush (set_config(..., true)
// lasts to the end of the statement's own transaction). A crash can lose the last fraction of a second of
// them: leases that vanish (the events are claimed again) and acknowledgements that vanish (the events are
// published again, and the broker drops the repeat by event id): at least once either way. Commits of units
// of work are never relaxed.
const RELAXED_COMMIT = "SELECT set_config('synchronous_commit', 'off', true) AS relaxed"
const MS = `* interval '1 millisecond'`

export const OUTBOX_SQL = {
  /**
   * Claim by state in one statement ($1 owner, $2 limit, $3 leaseMs, $4 perAggregate, $5 newAggregates,
   * $6/$7 continuation cursors as tenant and event id arrays).
   *
   * Heads: pending, due, unleased or lease-expired events with no earlier pending or dead event of their
   * aggregate, in due order (user_engine_outbox_claim_order_idx, 0005), locked with SKIP LOCKED so
   * concurrent relays pass each other's candidates. Candidates are the oldest max(4 x newAggregates, 1000)
   * due events, read in index order: a claim's work is bounded whatever the backlog (with statistics of a
   * large outbox the planner otherwise scanned and sorted every pending event, the backlog's tails
   * included), and heads further back are found as the ones before them drain. The bound is a subquery so
   * the planner cannot read it as a constant: with statistics of a larger outbox, a constant 2000 made it
   * scan and sort the whole table (26 ms per claim, every claim, while commits arrived). Only each
   * aggregate's first candidate can be its head, so the head check runs once per aggregate among them, on rows
   * fetched by ctid (joined to the candidates, the planner seq-scanned the outbox and checked every row:
   * 19k buffers for a claim over 10 users x 500 events, 4k now). The head check reads
   * user_engine_outbox_pending_aggregate_idx (0010): pending and dead events only, never published ones.
   * It asks for the aggregate's first pending or dead event (ORDER BY the index's order, LIMIT 1: one
   * index probe per candidate) and compares ids, on purpose: with fresh statistics the planner turned a
   * NOT EXISTS (earlier event) into a hash anti join whose row comparison ran as a join filter, comparing
   * every due event with every earlier event of its aggregate (118 ms for 10 users x 500 events), and a
   * LIMIT 1 without ORDER BY into a sequential scan per candidate (143 ms).
   *
   * Continuations: for each cursor, the aggregate's first pending or dead event is locked the same way, by
   * id (SKIP LOCKED under ORDER BY ... LIMIT 1 would return the next event instead), and must be this
   * owner's with a live lease (or be past the cursor: then the run starts at it, a head claim). Its lease is
   * renewed, so a relay starting the aggregate from its head, which must lock and re-check that same event,
   * sees it held.
   *
   * Each start yields a run: the events after it in order, up to perAggregate, kept while every one so far
   * is claimable (a running bool_and), so a run never skips an event. Runs are taken oldest first, whole,
   * until the limit. Only the lock holder of an aggregate's first event claims in it, so no other writer
   * changes a run's events between the snapshot and the UPDATE. Rows are named by ctid from the scans to the
   * locks and the UPDATE (TID scans): without statistics the planner looked them up by tenant through the
   * pending index instead, reading all of it per row (268k buffers for a claim of 500).
   */
  claim: `WITH relaxed AS MATERIALIZED (${RELAXED_COMMIT}),
    cursors AS MATERIALIZED (
      SELECT c.tenant_id, c.aggregate_type, c.aggregate_id, c.sequence, c.position
      FROM unnest($6::text[], $7::text[]) AS k(tenant_id, id)
      JOIN user_engine_outbox c ON c.tenant_id = k.tenant_id AND c.id = k.id),
    cursor_heads AS MATERIALIZED (
      SELECT k.tenant_id, k.aggregate_type, k.aggregate_id, k.sequence, k.position, h.id AS head_id,
        h.ctid AS head_ctid, (h.sequence, h.position) <= (k.sequence, k.position) AS held
      FROM cursors k
      CROSS JOIN LATERAL (
        SELECT h.id, h.ctid, h.sequence, h.position FROM user_engine_outbox h
        WHERE h.tenant_id = k.tenant_id AND h.aggregate_type = k.aggregate_type
          AND h.aggregate_id = k.aggregate_id AND h.status IN ('pending', 'dead')
        ORDER BY h.sequence, h.position LIMIT 1) h),
    locked_heads AS MATERIALIZED (
      SELECT l.tenant_id, l.id, l.status, l.lease_owner, l.lease_until FROM user_engine_outbox l
      WHERE l.ctid = ANY (ARRAY(SELECT head_ctid FROM cursor_heads)) AND l.status IN ('pending', 'dead')
      FOR UPDATE SKIP LOCKED),
    continuations AS MATERIALIZED (
      SELECT ch.tenant_id, ch.aggregate_type, ch.aggregate_id, ch.sequence, ch.position, ch.head_id, ch.held
      FROM cursor_heads ch JOIN locked_heads l ON l.tenant_id = ch.tenant_id AND l.id = ch.head_id
      WHERE NOT ch.held OR (l.status = 'pending' AND l.lease_owner = $1 AND l.lease_until > now())),
    candidates AS MATERIALIZED (
      SELECT c.ctid AS cid, c.available_at, c.tenant_id, c.aggregate_type, c.aggregate_id, c.sequence,
        c.position
      FROM user_engine_outbox c
      WHERE c.status = 'pending' AND c.available_at <= now()
        AND (c.lease_until IS NULL OR c.lease_until <= now())
      ORDER BY c.available_at, c.tenant_id, c.aggregate_id, c.sequence, c.position
      LIMIT (SELECT CASE WHEN $5::integer = 0 THEN 0 ELSE greatest(4 * $5::integer, 1000) END)),
    firsts AS MATERIALIZED (
      SELECT DISTINCT ON (f.tenant_id, f.aggregate_type, f.aggregate_id) f.cid, f.available_at, f.tenant_id,
        f.aggregate_id, f.sequence, f.position
      FROM candidates f
      ORDER BY f.tenant_id, f.aggregate_type, f.aggregate_id, f.sequence, f.position),
    heads AS MATERIALIZED (
      SELECT h.tenant_id, h.aggregate_type, h.aggregate_id, h.sequence, h.position
      FROM (SELECT cid FROM firsts
        ORDER BY available_at, tenant_id, aggregate_id, sequence, position) f
      CROSS JOIN LATERAL (
        SELECT o.tenant_id, o.aggregate_type, o.aggregate_id, o.sequence, o.position
        FROM user_engine_outbox o
        WHERE o.ctid = f.cid AND o.status = 'pending' AND o.available_at <= now()
          AND (o.lease_until IS NULL OR o.lease_until <= now())
          AND o.id = (SELECT p.id FROM user_engine_outbox p
            WHERE p.tenant_id = o.tenant_id AND p.aggregate_type = o.aggregate_type
              AND p.aggregate_id = o.aggregate_id AND p.status IN ('pending', 'dead')
            ORDER BY p.sequence, p.position LIMIT 1)
          AND NOT EXISTS (
            SELECT 1 FROM cursors k WHERE k.tenant_id = o.tenant_id
              AND k.aggregate_type = o.aggregate_type AND k.aggregate_id = o.aggregate_id)
        FOR UPDATE SKIP LOCKED) h
      LIMIT $5),
    starts AS (
      SELECT tenant_id, aggregate_type, aggregate_id, sequence, position - 1 AS position FROM heads
      UNION ALL
      SELECT tenant_id, aggregate_type, aggregate_id, sequence, position FROM continuations),
    runs AS (
      SELECT r.tenant_id, r.id, r.ctid, s.aggregate_type, s.aggregate_id, r.sequence, r.position,
        bool_and(r.ready) OVER w AS ready, first_value(r.available_at) OVER w AS run_at
      FROM starts s
      CROSS JOIN LATERAL (
        SELECT p.tenant_id, p.id, p.ctid, p.sequence, p.position, p.available_at,
          (p.status = 'pending' AND p.available_at <= now()
            AND (p.lease_until IS NULL OR p.lease_until <= now())) AS ready
        FROM user_engine_outbox p
        WHERE p.tenant_id = s.tenant_id AND p.aggregate_type = s.aggregate_type
          AND p.aggregate_id = s.aggregate_id AND p.status IN ('pending', 'dead')
          AND (p.sequence, p.position) > (s.sequence, s.position)
        ORDER BY p.sequence, p.position
        LIMIT $4) r
      WINDOW w AS (PARTITION BY s.tenant_id, s.aggregate_type, s.aggregate_id ORDER BY r.sequence, r.position)),
    picked AS (
      SELECT ctid FROM runs WHERE ready
      ORDER BY run_at, tenant_id, aggregate_type, aggregate_id, sequence, position
      LIMIT $2),
    renewed AS (
      UPDATE user_engine_outbox u
      SET lease_until = greatest(u.lease_until, now() + $3::integer ${MS})
      FROM continuations c
      WHERE c.held AND u.tenant_id = c.tenant_id AND u.id = c.head_id
      RETURNING u.id)
    UPDATE user_engine_outbox u SET lease_owner = $1, lease_until = now() + $3::integer ${MS}
    FROM relaxed
    WHERE u.ctid = ANY (ARRAY(SELECT ctid FROM picked))
      AND u.status = 'pending' AND (u.lease_until IS NULL OR u.lease_until <= now())
    RETURNING u.tenant_id, u.id, u.aggregate_type, u.aggregate_id, u.sequence, u.position, u.type, u.payload,
      u.occurred_at, u.status, u.attempts, u.available_at, u.lease_owner, u.lease_until, u.published_at,
      u.last_error`,
  /**
   * Acknowledgements, failures and releases of one batch in one statement ($1 owner, $2..$6 arrays of
   * tenant, id, outcome, error, backoff ms; $7 maxAttempts). Rows are found by primary key. The lease check
   * sits in a coalesce on purpose: written as plain conditions, its estimate (one row of ours) made the
   * planner scan the outbox and compare every row with every item (150 ms for 500 items), or read the whole
   * pending index; hidden, it looks the items up by key (or hashes them against a small outbox).
   */
  settle: `WITH relaxed AS MATERIALIZED (${RELAXED_COMMIT}),
    input AS MATERIALIZED (
      SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::integer[])
        AS i(tenant_id, id, outcome, error, backoff_ms))
    UPDATE user_engine_outbox u SET
      lease_owner = NULL, lease_until = NULL,
      status = CASE i.outcome
        WHEN 'published' THEN 'published'
        WHEN 'failed' THEN CASE WHEN u.attempts + 1 >= $7::integer THEN 'dead' ELSE 'pending' END
        ELSE u.status END,
      published_at = CASE WHEN i.outcome = 'published' THEN now() ELSE u.published_at END,
      attempts = CASE WHEN i.outcome = 'failed' THEN u.attempts + 1 ELSE u.attempts END,
      last_error = CASE WHEN i.outcome = 'failed' THEN i.error ELSE u.last_error END,
      available_at = CASE WHEN i.outcome = 'failed' AND u.attempts + 1 < $7::integer
        THEN now() + i.backoff_ms ${MS} ELSE u.available_at END
    FROM input i, relaxed
    WHERE u.tenant_id = i.tenant_id AND u.id = i.id
      AND coalesce(u.status = 'pending' AND u.lease_owner = $1 AND u.lease_until > now(), false)
    RETURNING u.id, u.status, i.outcome`,
  /** A wake-up for LISTENing relays, sent after a commit (never inside it: see PostgresOutbox.committed). */
  notify: `SELECT pg_notify($1, '')`,
  /** Pending or dead events in (tenant, aggregate, sequence) order, keyset after $4..$8, through 0010's index. */
  list: `SELECT ${OUTBOX} FROM user_engine_outbox
    WHERE status IN ('pending', 'dead') AND status = $1
      AND ($2::text IS NULL OR tenant_id = $2) AND ($3::text IS NULL OR aggregate_id = $3)
      AND ($4::text IS NULL
        OR (tenant_id, aggregate_type, aggregate_id, sequence, position) > ($4, $5, $6, $7::integer, $8::integer))
    ORDER BY tenant_id, aggregate_type, aggregate_id, sequence, position
    LIMIT $9`,
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
  // status = 'dead' implies the predicate of user_engine_outbox_dead_idx (0010): no full read.
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
} as const
