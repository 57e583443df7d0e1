-- user-engine 0013: group commit refuses a suspended tenant itself. A unit may ask (refuseSuspendedTenant: true,
-- as a registration does) that it not apply when its tenant is suspended; until now the store wrapped the batch
-- in a statement that read each such unit's tenant first and left the suspended ones out, which cost the server
-- about as much as a third of the batch (docs/performance.md, "The batch refuses a suspended tenant itself").
-- Now the batch function checks: the set-based path's tenant check covers it, and the unit-by-unit loop reads
-- the tenant as each such unit's turn comes, so a suspension earlier in the same batch refuses the units after it,
-- as it would one commit after another.
-- Transactional: functions only, landing with their history row.

-- 0012's function with one change: the tenant check also fails when a unit that refuses a suspended tenant names
-- one, so that the batch goes to the loop below.
CREATE OR REPLACE FUNCTION user_engine_commit_set(p_units jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_unsafe boolean;
  v_identifier_changes boolean;
  v_updates integer;
  v_deletes integer;
  n integer;
BEGIN
  SELECT bool_or(coalesce(w.op NOT IN ('insert', 'update', 'delete'), true) OR w.record_type = 'tenant')
           OR count(*) <> count(DISTINCT (w.tenant_id, w.record_type, w.record_id)),
         coalesce(bool_or(w.record_type = 'identifier' AND w.op <> 'insert'), false),
         count(*) FILTER (WHERE w.op = 'update'),
         count(*) FILTER (WHERE w.op = 'delete')
    INTO v_unsafe, v_identifier_changes, v_updates, v_deletes
  FROM user_engine_batch_writes(p_units) w;
  IF v_unsafe THEN
    RAISE EXCEPTION USING ERRCODE = 'UE009', MESSAGE = 'batch not applicable set-based';
  END IF;
  IF v_identifier_changes AND EXISTS (
    SELECT 1
    FROM user_engine_batch_writes(p_units) f
    JOIN user_engine_records r
      ON r.tenant_id = f.tenant_id AND r.record_type = 'identifier' AND r.record_id = f.record_id
    JOIN user_engine_batch_writes(p_units) c
      ON c.tenant_id = f.tenant_id AND c.record_type = 'identifier' AND c.op IN ('insert', 'update')
     AND c.record_id <> f.record_id
     AND c.payload->>'kind' = r.payload->>'kind' AND c.payload->>'value' = r.payload->>'value'
    WHERE f.record_type = 'identifier' AND f.op IN ('update', 'delete')
  ) THEN
    RAISE EXCEPTION USING ERRCODE = 'UE009', MESSAGE = 'batch not applicable set-based';
  END IF;

  -- Once per distinct tenant: no unit writes a tenant record, so each unit's check is this one. A tenant that a
  -- unit asking to refuse a suspended tenant names must not be suspended; if one is, the caller's loop decides
  -- which units that refuses.
  IF EXISTS (
    SELECT 1
    FROM (SELECT u.unit->>'tenantId' AS t,
                 bool_or(coalesce(u.unit->'refuseSuspendedTenant' = 'true'::jsonb, false)) AS refuse
          FROM jsonb_array_elements(p_units) AS u(unit) GROUP BY 1) d
    WHERE NOT EXISTS (
      SELECT 1 FROM user_engine_records r
      WHERE r.tenant_id = d.t AND r.record_type = 'tenant' AND r.record_id = d.t
        AND NOT (d.refuse AND coalesce(r.payload->>'status' = 'suspended', false)))
  ) THEN
    RAISE EXCEPTION USING ERRCODE = 'UE004', MESSAGE = 'tenant not found or suspended';
  END IF;

  -- Each record is written once in the batch, so the version checks are all against the rows as they were.
  IF v_updates > 0 THEN
    UPDATE user_engine_records r
    SET version = r.version + 1, payload = w.payload, user_id = w.user_id, updated_at = w.at
    FROM user_engine_batch_writes(p_units) w
    WHERE w.op = 'update' AND r.tenant_id = w.tenant_id AND r.record_type = w.record_type
      AND r.record_id = w.record_id AND r.version = w.expected_version;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> v_updates THEN
      RAISE EXCEPTION USING ERRCODE = 'UE002', MESSAGE = 'version conflict';
    END IF;
  END IF;
  IF v_deletes > 0 THEN
    DELETE FROM user_engine_records r
    USING user_engine_batch_writes(p_units) w
    WHERE w.op = 'delete' AND r.tenant_id = w.tenant_id AND r.record_type = w.record_type
      AND r.record_id = w.record_id AND r.version = w.expected_version;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> v_deletes THEN
      RAISE EXCEPTION USING ERRCODE = 'UE002', MESSAGE = 'version conflict';
    END IF;
  END IF;

  -- A record that exists raises unique_violation here (one by one it is UE001; the caller redoes it so).
  INSERT INTO user_engine_records (tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at)
  SELECT w.tenant_id, w.record_type, w.record_id, w.user_id, 1, w.payload, w.at, w.at
  FROM user_engine_batch_writes(p_units) w
  WHERE w.op = 'insert'
  ORDER BY w.unit_ord, w.write_ord;

  -- In unit then record order, so seq orders a tenant's audit trail as one-by-one commits would.
  INSERT INTO user_engine_audit
    (tenant_id, id, occurred_at, action, user_id, actor_id, request_id, client_ip, user_agent, data)
  SELECT u.unit->>'tenantId', a.id, (u.unit->>'now')::timestamptz, a.action, a."userId", a."actorId",
         a."requestId", a.ip, a."userAgent", coalesce(a.data, '{}'::jsonb)
  FROM jsonb_array_elements(p_units) WITH ORDINALITY AS u(unit, ord),
       ROWS FROM (jsonb_to_recordset(u.unit->'audit') AS (id text, action text, "userId" text, "actorId" text,
                  "requestId" text, ip text, "userAgent" text, data jsonb))
       WITH ORDINALITY AS a(id, action, "userId", "actorId", "requestId", ip, "userAgent", data, ord)
  ORDER BY u.ord, a.ord;

  INSERT INTO user_engine_outbox
    (tenant_id, id, aggregate_type, aggregate_id, sequence, position, type, payload, occurred_at, available_at)
  SELECT u.unit->>'tenantId', e.id, e."aggregateType", e."aggregateId", e.sequence, e.position, e.type,
         coalesce(e.payload, '{}'::jsonb), (u.unit->>'now')::timestamptz, now()
  FROM jsonb_array_elements(p_units) WITH ORDINALITY AS u(unit, ord),
       ROWS FROM (jsonb_to_recordset(u.unit->'events') AS (id text, "aggregateType" text, "aggregateId" text,
                  sequence integer, position integer, type text, payload jsonb))
       WITH ORDINALITY AS e(id, "aggregateType", "aggregateId", sequence, position, type, payload, ord)
  ORDER BY u.ord, e.ord;
END
$$;

-- 0012's function, same signature and result, with one more outcome: a unit carrying refuseSuspendedTenant: true
-- whose tenant is suspended when its turn comes is not applied, and its row carries SQLSTATE UE005 (what the
-- store's single commit reports as TENANT_SUSPENDED). Units without the key are applied as before.
CREATE OR REPLACE FUNCTION user_engine_commit_batch(p_units jsonb)
RETURNS TABLE (unit_index integer, sql_state text, error_detail text, constraint_name text, table_name text,
               column_name text)
LANGUAGE plpgsql AS $$
DECLARE
  u jsonb;
  i integer := 0;
BEGIN
  IF jsonb_array_length(p_units) > 1 THEN
    BEGIN
      PERFORM user_engine_commit_set(p_units);
      RETURN;
    EXCEPTION WHEN OTHERS THEN
      NULL; -- rolled back; the loop below finds out which unit failed
    END;
  END IF;
  FOR u IN SELECT value FROM jsonb_array_elements(p_units) LOOP
    IF u->'refuseSuspendedTenant' = 'true'::jsonb AND EXISTS (
      SELECT 1 FROM user_engine_records r
      WHERE r.tenant_id = u->>'tenantId' AND r.record_type = 'tenant' AND r.record_id = u->>'tenantId'
        AND r.payload->>'status' = 'suspended')
    THEN
      unit_index := i;
      sql_state := 'UE005';
      error_detail := NULL;
      constraint_name := NULL;
      table_name := NULL;
      column_name := NULL;
      RETURN NEXT;
    ELSE
      BEGIN
        PERFORM user_engine_commit(u->>'tenantId', u->'writes', u->'audit', u->'events', (u->>'now')::timestamptz);
      EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS sql_state = RETURNED_SQLSTATE, error_detail = PG_EXCEPTION_DETAIL,
          constraint_name = CONSTRAINT_NAME, table_name = TABLE_NAME, column_name = COLUMN_NAME;
        unit_index := i;
        RETURN NEXT;
      END;
    END IF;
    i := i + 1;
  END LOOP;
END
$$;
