-- user-engine 0002: make identifier uniqueness race-proof and give every query an index.

-- Two registrations of one email racing each other both pass user_engine_commit's EXISTS check;
-- this index makes the second fail with unique_violation (mapped to DUPLICATE_IDENTIFIER).
CREATE UNIQUE INDEX user_engine_identifier_value_key
  ON user_engine_records (tenant_id, (payload->>'kind'), (payload->>'value'))
  WHERE record_type = 'identifier';

-- A user's identifiers, profile and factors.
CREATE INDEX user_engine_records_user_idx
  ON user_engine_records (tenant_id, user_id, record_type)
  WHERE user_id IS NOT NULL;

-- Keyset listing of users filtered by status.
CREATE INDEX user_engine_users_status_idx
  ON user_engine_records (tenant_id, (payload->>'status'), record_id)
  WHERE record_type = 'user';

-- Keyset listing of one user's audit trail.
CREATE INDEX user_engine_audit_user_idx
  ON user_engine_audit (tenant_id, user_id, seq);

-- An aggregate's events in order: the relay's head-of-sequence check.
CREATE INDEX user_engine_outbox_aggregate_idx
  ON user_engine_outbox (tenant_id, aggregate_id, sequence, position)
  WHERE status IN ('pending', 'dead');
