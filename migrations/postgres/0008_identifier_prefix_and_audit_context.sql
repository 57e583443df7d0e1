-- user-engine 0008: reads a service needs (identifier prefix search), and the audit trail's request context
-- and per-tenant cursor.
-- Non-transactional: the two indexes are built with CREATE INDEX CONCURRENTLY (a plain build would block every
-- commit while it reads every identifier and audit row). Every statement is re-runnable after a crash; the
-- runner refuses to record the version over an index left INVALID (see docs/operations.md).

-- Who asked, for every audit record: the caller's request id, and the client's IP address and user agent
-- (recorded only when the engine opts in). Nullable without a default: adding them rewrites nothing.
ALTER TABLE user_engine_audit
  ADD COLUMN IF NOT EXISTS request_id text,
  ADD COLUMN IF NOT EXISTS client_ip text,
  ADD COLUMN IF NOT EXISTS user_agent text;

-- 0006's function, writing the request context columns too. Same signature; older code, which sends no
-- request context, gets NULLs.
CREATE OR REPLACE FUNCTION user_engine_commit(p_tenant text, p_writes jsonb, p_audit jsonb, p_events jsonb, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  w jsonb;
  v_type text;
  v_id text;
  i integer := 0;
  n integer;
BEGIN
  FOR w IN SELECT value FROM jsonb_array_elements(p_writes) LOOP
    v_type := w->>'type';
    v_id := w->>'id';
    IF w->>'op' = 'insert' THEN
      -- The primary key decides existence first (the reference store's order: existence, then uniqueness).
      INSERT INTO user_engine_records AS r (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
      VALUES (p_tenant, v_type, v_id, w->>'userId', 1, w->'payload', p_now, p_now)
      ON CONFLICT (tenant_id, record_type, record_id) DO NOTHING;
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'UE001', MESSAGE = 'record exists', DETAIL = i::text;
      END IF;
    ELSIF w->>'op' = 'update' THEN
      UPDATE user_engine_records r
      SET version = r.version + 1, payload = w->'payload', user_id = w->>'userId', updated_at = p_now
      WHERE r.tenant_id = p_tenant AND r.record_type = v_type AND r.record_id = v_id
        AND r.version = (w->>'expectedVersion')::integer;
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'UE002', MESSAGE = 'version conflict', DETAIL = i::text;
      END IF;
    ELSIF w->>'op' = 'delete' THEN
      DELETE FROM user_engine_records r
      WHERE r.tenant_id = p_tenant AND r.record_type = v_type AND r.record_id = v_id
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

  -- The request context (0008): request id, and the client's IP and user agent when the engine records them.
  INSERT INTO user_engine_audit
    (tenant_id, id, occurred_at, action, user_id, actor_id, request_id, client_ip, user_agent, data)
  SELECT p_tenant, a.id, p_now, a.action, a."userId", a."actorId", a."requestId", a.ip, a."userAgent",
         coalesce(a.data, '{}'::jsonb)
  -- ROWS FROM: WITH ORDINALITY cannot take a column definition list directly.
  FROM ROWS FROM (jsonb_to_recordset(p_audit) AS (id text, action text, "userId" text, "actorId" text,
                  "requestId" text, ip text, "userAgent" text, data jsonb))
       WITH ORDINALITY AS a(id, action, "userId", "actorId", "requestId", ip, "userAgent", data, ord)
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

-- listAudit's cursor names the last record listed (its id), never the table-wide seq: seq stays the order,
-- but a tenant no longer sees the counter all tenants share. This index finds the cursor's record.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS user_engine_audit_id_key
  ON user_engine_audit (tenant_id, id);

-- Prefix search of identifier values within a tenant and kind: values in code-point order (COLLATE "C", the
-- reference store's order on any server locale), so `value >= prefix AND value < upper` is one index range
-- read in order and LIMIT stops early, whatever the tenant's size. 0002's unique index compares in the
-- database's default collation, which a range over a prefix cannot rely on.
CREATE INDEX CONCURRENTLY IF NOT EXISTS user_engine_identifier_prefix_idx
  ON user_engine_records (tenant_id, (payload->>'kind'), ((payload->>'value') COLLATE "C"))
  WHERE record_type = 'identifier';
