-- user-engine 0003: the relay's claim index, built without blocking writers.
-- Non-transactional: CREATE INDEX CONCURRENTLY cannot run inside a transaction, and a plain CREATE INDEX
-- would block every commit's outbox insert on a live database while it builds.
-- IF NOT EXISTS makes a re-run after a crash safe; see docs/operations.md for an index left INVALID.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_engine_outbox_due_idx
  ON user_engine_outbox (tenant_id, available_at)
  WHERE status = 'pending';
