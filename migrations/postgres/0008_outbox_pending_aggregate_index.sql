-- user-engine 0008: relay claims that never read published events.
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
