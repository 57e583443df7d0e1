-- user-engine 0007: prefix claims that never read published events, and a wake-up on every commit with events.
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

-- Relays LISTEN on user_engine_outbox and claim at once instead of waiting for their next poll. One
-- notification per statement that inserted events (the commit function inserts them in one statement), with
-- an empty payload: Postgres folds identical notifications of one transaction into one, and a payload would
-- tell a listener nothing it may use (it claims by state). Delivered only when the transaction commits.
CREATE OR REPLACE FUNCTION user_engine_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM inserted) THEN
    PERFORM pg_notify('user_engine_outbox', '');
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER user_engine_outbox_notify
  AFTER INSERT ON user_engine_outbox
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION user_engine_outbox_notify();
