-- user-engine 0009: sessions and single-use tokens as records, and the key id of every sealed factor secret.
-- Non-transactional: the expiry index is built with CREATE INDEX CONCURRENTLY (a plain build would block every
-- commit while it reads every record). Every statement is re-runnable after a crash; the runner refuses to
-- record the version over an index left INVALID (see docs/operations.md).

-- The record types a row may hold, now with 'session' and 'token'. NOT VALID first, so swapping the check
-- takes its lock only for a catalog change; the new check is looser than 0001's, so every existing row passes
-- the validation below, which reads the table without blocking writes.
DO $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_constraint
    WHERE conrelid = 'user_engine_records'::regclass AND conname = 'user_engine_records_type_check'
  ) THEN
    ALTER TABLE user_engine_records
      DROP CONSTRAINT IF EXISTS user_engine_records_record_type_check,
      ADD CONSTRAINT user_engine_records_type_check CHECK (record_type IN
        ('tenant', 'user', 'identifier', 'profile', 'factor', 'session', 'token')) NOT VALID;
  END IF;
END
$$;

ALTER TABLE user_engine_records VALIDATE CONSTRAINT user_engine_records_type_check;

-- Expired sessions and tokens of one tenant, oldest expiry first (then type and id, so every store deletes
-- the same rows for one limit): the bounded purge (store rule 11) reads only dead rows and stops at its
-- limit. Expiries are ISO 8601 instants compared as text in code-point order (COLLATE "C"), which is their
-- time order. Session validation needs no new index: it reads the session by primary key.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_engine_expiry_idx
  ON user_engine_records (tenant_id, ((payload->>'expiresAt') COLLATE "C"), record_type, record_id)
  WHERE record_type IN ('session', 'token');

-- FactorRecord.keyId: the key a sealed secret (a TOTP seed) names, lifted out of the secret so seeds can be
-- counted and re-sealed per key without opening them. Factors written before this version get it from
-- their secret; a hashed secret names no key and stays without one (read as null).
UPDATE user_engine_records
SET payload = payload || jsonb_build_object('keyId', payload->'secret'->'keyId')
WHERE record_type = 'factor' AND jsonb_typeof(payload->'secret'->'keyId') = 'string' AND NOT payload ? 'keyId';
