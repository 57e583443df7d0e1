-- user-engine 0010: relay claims that never read published events, and claims that are HOT updates.
-- Non-transactional: CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction, and a plain build would block
-- every commit that emits an event. Every statement is safe to re-run after a crash.

-- The relay claims each aggregate's ready prefix, and checks that a candidate is its aggregate's head (no
-- earlier pending or dead event). 0002's index for that check lacks aggregate_type, so with fresh statistics
-- the planner ran the check through the unique (tenant_id, aggregate_type, aggregate_id, sequence, position)
-- key instead, which holds every published event kept: a claim read 570k buffers halfway through a 5,000-event
-- backlog of 10 users (measured 2026-11-30). This index has every column the check and the prefix scan name,
-- and only pending and dead events, so its size is the backlog's, whatever retention keeps.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_engine_outbox_pending_aggregate_idx
  ON user_engine_outbox (tenant_id, aggregate_type, aggregate_id, sequence, position)
  WHERE status IN ('pending', 'dead');

DROP INDEX CONCURRENTLY IF EXISTS user_engine_outbox_aggregate_idx;

-- A claim changes only lease_owner and lease_until. 0004's index of leased or dead events names lease_owner in
-- its predicate, so no claim could be a HOT update: each wrote a new entry into all five outbox indexes. Dead
-- events keep an index of their own (retryDead and discardDead name them by id); the id-only acknowledge,
-- fail and release of a lease owner read the pending events instead (relays settle by tenant and id, through
-- the primary key). Measured on a claim of 500 events (EXPLAIN (ANALYZE, BUFFERS, WAL), 2026-11-30): 4036 WAL
-- records and 11763 buffers before, 2522 and 8857 with HOT claims.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_engine_outbox_dead_idx
  ON user_engine_outbox (tenant_id, id)
  WHERE status = 'dead';

DROP INDEX CONCURRENTLY IF EXISTS user_engine_outbox_leased_or_dead_idx;

-- Room on every page for a claimed event's new version (a HOT update stays on its page). Pages written from
-- now on; existing pages keep what they have until rewritten.
ALTER TABLE user_engine_outbox SET (fillfactor = 70);
