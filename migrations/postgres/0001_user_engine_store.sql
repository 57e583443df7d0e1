-- user-engine 0001: the generic store. Providers translate these four tables; tenant_id leads every key.

CREATE TABLE IF NOT EXISTS user_engine_schema_versions (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  execution_ms integer NOT NULL
);

-- Every logical record (tenant, user, identifier, profile, factor) is one row; payload holds its fields.
CREATE TABLE user_engine_records (
  tenant_id text NOT NULL,
  record_type text NOT NULL CHECK (record_type IN ('tenant', 'user', 'identifier', 'profile', 'factor')),
  -- C collation: keyset order is code-point order on every server locale, as in the reference store.
  record_id text COLLATE "C" NOT NULL,
  user_id text,
  version integer NOT NULL CHECK (version >= 1),
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, record_type, record_id)
);

-- Append-only. seq orders a tenant's audit trail and is its keyset.
CREATE TABLE user_engine_audit (
  tenant_id text NOT NULL,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  id text NOT NULL,
  occurred_at timestamptz NOT NULL,
  action text NOT NULL,
  user_id text,
  actor_id text,
  data jsonb NOT NULL DEFAULT '{}'::jsonb,
  PRIMARY KEY (tenant_id, seq)
);

-- The transactional outbox. (aggregate, sequence, position) totally orders one aggregate's events.
CREATE TABLE user_engine_outbox (
  tenant_id text NOT NULL,
  id text NOT NULL,
  aggregate_type text NOT NULL CHECK (aggregate_type IN ('tenant', 'user')),
  aggregate_id text NOT NULL,
  sequence integer NOT NULL,
  position integer NOT NULL,
  type text NOT NULL,
  payload jsonb NOT NULL,
  occurred_at timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published', 'dead', 'discarded')),
  attempts integer NOT NULL DEFAULT 0,
  available_at timestamptz NOT NULL,
  lease_owner text,
  lease_until timestamptz,
  published_at timestamptz,
  last_error text,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, aggregate_type, aggregate_id, sequence, position)
);

-- One unit of work in one statement, so a commit is one round trip. Raises:
--   UE001 a record that must not exist exists      UE002 an expected version did not match
--   UE003 an identifier value is taken (sequential case; 0002's unique index catches the racing case as 23505)
--   UE004 the tenant has no tenant record and this commit does not create it
-- DETAIL carries the index of the failing write, never a value.
CREATE FUNCTION user_engine_commit(p_tenant text, p_writes jsonb, p_audit jsonb, p_events jsonb, p_now timestamptz)
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

  INSERT INTO user_engine_outbox
    (tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at, available_at)
  SELECT p_tenant, e.id, e."aggregateType", e."aggregateId", e.sequence, e.position, e.type,
         coalesce(e.payload, '{}'::jsonb), p_now, p_now
  FROM jsonb_to_recordset(p_events) AS e(id text, "aggregateType" text, "aggregateId" text, sequence integer,
                                         position integer, type text, payload jsonb);
END
$$;
