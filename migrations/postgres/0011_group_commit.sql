-- user-engine 0011: group commit. Several units of work in one statement, one transaction and one WAL flush,
-- each applied in a subtransaction of its own so a failing one rolls back alone.
-- Transactional: a function only, landing with its history row.

-- p_units: a JSON array of commit plans ({tenantId, now, writes, audit, events}), applied in array order
-- through 0008's user_engine_commit. Returns one row per unit that failed, naming its position and the
-- error as user_engine_commit raised it (SQLSTATE, DETAIL, constraint, table, column), so the caller types
-- each failure exactly as for a commit of its own. Units without a row committed with the statement.
-- A unit's failure is caught (EXCEPTION rolls back its subtransaction alone); a cancel (statement timeout)
-- is not caught by WHEN OTHERS and fails the whole statement, so nothing is applied.
CREATE OR REPLACE FUNCTION user_engine_commit_batch(p_units jsonb)
RETURNS TABLE (unit_index integer, sql_state text, error_detail text, constraint_name text, table_name text,
               column_name text)
LANGUAGE plpgsql AS $$
DECLARE
  u jsonb;
  i integer := 0;
BEGIN
  FOR u IN SELECT value FROM jsonb_array_elements(p_units) LOOP
    BEGIN
      PERFORM user_engine_commit(u->>'tenantId', u->'writes', u->'audit', u->'events', (u->>'now')::timestamptz);
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS sql_state = RETURNED_SQLSTATE, error_detail = PG_EXCEPTION_DETAIL,
        constraint_name = CONSTRAINT_NAME, table_name = TABLE_NAME, column_name = COLUMN_NAME;
      unit_index := i;
      RETURN NEXT;
    END;
    i := i + 1;
  END LOOP;
END
$$;
