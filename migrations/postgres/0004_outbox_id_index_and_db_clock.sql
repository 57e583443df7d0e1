-- user-engine 0004: relay statements that read only leased or dead events, and due times on the database clock.
-- Transactional: it replaces user_engine_commit, which must land together with its history row. The index
-- is built with a plain CREATE INDEX, so outbox writes (commits that emit events, relay updates) wait while
-- it reads the outbox once; it holds only leased and dead events, so it is small and quick to write.

-- acknowledge, fail and release name events by id and lease owner; retryDead and discardDead name a dead
-- event by id. None of them knows the tenant (a relay drains every tenant), so with only tenant-led keys
-- each read the whole outbox. This index holds only the events a relay holds (its in-flight batches)
-- and dead events (each one an alert): scanning all of it for an id costs the in-flight count, not the
-- outbox size. `lease_owner = $1` and `status = 'dead'` each imply its predicate, so the planner uses it.
CREATE INDEX user_engine_outbox_leased_or_dead_idx
  ON user_engine_outbox (tenant_id, id)
  WHERE lease_owner IS NOT NULL OR status = 'dead';

-- Same signature and behaviour as 0001's function, except that events become due at the database clock's
-- now() rather than at p_now (the application host's clock): claims compare available_at with the
-- database clock, so a host whose clock runs ahead or behind delayed or advanced its events' first claim.
-- occurred_at, created_at and updated_at keep p_now, as before.
CREATE OR REPLACE FUNCTION user_engine_commit(p_tenant text, p_writes jsonb, p_audit jsonb, p_events jsonb, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  w jsonb;
  i integer := 0;
  n integer;
BEGIN
  FOR w IN SELECT value FROM jsonb_array_elements(p_writes) LOOP
    IF w->>'op' = 'insert' THEN
      -- Existence before uniqueness (the reference store's order), so both stores raise the same code.
      IF w->>'type' = 'identifier' THEN
        IF EXISTS (
          SELECT 1 FROM user_engine_records r
          WHERE r.tenant_id = p_tenant AND r.record_type = 'identifier' AND r.record_id = w->>'id'
        ) THEN
          RAISE EXCEPTION USING ERRCODE = 'UE001', MESSAGE = 'record exists', DETAIL = i::text;
        END IF;
        IF EXISTS (
          SELECT 1 FROM user_engine_records r
          WHERE r.tenant_id = p_tenant AND r.record_type = 'identifier'
            AND r.payload->>'kind' = w->'payload'->>'kind' AND r.payload->>'value' = w->'payload'->>'value'
        ) THEN
          RAISE EXCEPTION USING ERRCODE = 'UE003', MESSAGE = 'identifier taken', DETAIL = i::text;
        END IF;
      END IF;
      INSERT INTO user_engine_records AS r (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
      VALUES (p_tenant, w->>'type', w->>'id', w->>'userId', 1, w->'payload', p_now, p_now)
      ON CONFLICT (tenant_id, record_type, record_id) DO NOTHING;
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'UE001', MESSAGE = 'record exists', DETAIL = i::text;
      END IF;
    ELSIF w->>'op' = 'update' THEN
      -- Version before uniqueness, as above; the UPDATE below re-checks the version under its row lock.
      IF w->>'type' = 'identifier' THEN
        IF NOT EXISTS (
          SELECT 1 FROM user_engine_records r
          WHERE r.tenant_id = p_tenant AND r.record_type = 'identifier' AND r.record_id = w->>'id'
            AND r.version = (w->>'expectedVersion')::integer
        ) THEN
          RAISE EXCEPTION USING ERRCODE = 'UE002', MESSAGE = 'version conflict', DETAIL = i::text;
        END IF;
        IF EXISTS (
          SELECT 1 FROM user_engine_records r
          WHERE r.tenant_id = p_tenant AND r.record_type = 'identifier' AND r.record_id <> w->>'id'
            AND r.payload->>'kind' = w->'payload'->>'kind' AND r.payload->>'value' = w->'payload'->>'value'
        ) THEN
          RAISE EXCEPTION USING ERRCODE = 'UE003', MESSAGE = 'identifier taken', DETAIL = i::text;
        END IF;
      END IF;
      UPDATE user_engine_records r
      SET version = r.version + 1, payload = w->'payload', user_id = w->>'userId', updated_at = p_now
      WHERE r.tenant_id = p_tenant AND r.record_type = w->>'type' AND r.record_id = w->>'id'
        AND r.version = (w->>'expectedVersion')::integer;
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'UE002', MESSAGE = 'version conflict', DETAIL = i::text;
      END IF;
    ELSIF w->>'op' = 'delete' THEN
      DELETE FROM user_engine_records r
      WHERE r.tenant_id = p_tenant AND r.record_type = w->>'type' AND r.record_id = w->>'id'
        AND r.version = (w->>'expectedVersion')::integer;
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'UE002', MESSAGE = 'version conflict', DETAIL = i::text;
      END IF;
    ELSE
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'unknown write op', DETAIL = i::text;
    END IF;
    i := i + 1;
  END LOOP;

  -- Nothing is committed into a tenant that does not exist, unless this commit created it.
  IF NOT EXISTS (
    SELECT 1 FROM user_engine_records r
    WHERE r.tenant_id = p_tenant AND r.record_type = 'tenant' AND r.record_id = p_tenant
  ) THEN
    RAISE EXCEPTION USING ERRCODE = 'UE004', MESSAGE = 'tenant not found';
  END IF;

  INSERT INTO user_engine_audit (tenant_id, id, occurred_at, action, user_id, actor_id, data)
  SELECT p_tenant, a.id, p_now, a.action, a."userId", a."actorId", coalesce(a.data, '{}'::jsonb)
  -- ROWS FROM: WITH ORDINALITY cannot take a column definition list directly.
  FROM ROWS FROM (jsonb_to_recordset(p_audit) AS (id text, action text, "userId" text, "actorId" text, data jsonb))
       WITH ORDINALITY AS a(id, action, "userId", "actorId", data, ord)
  ORDER BY a.ord;

  -- available_at: the database clock (0004), the clock every claim compares it with.
  INSERT INTO user_engine_outbox
    (tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at, available_at)
  SELECT p_tenant, e.id, e."aggregateType", e."aggregateId", e.sequence, e.position, e.type,
         coalesce(e.payload, '{}'::jsonb), p_now, now()
  FROM jsonb_to_recordset(p_events) AS e(id text, "aggregateType" text, "aggregateId" text, sequence integer,
                                         position integer, type text, payload jsonb);
END
$$;
