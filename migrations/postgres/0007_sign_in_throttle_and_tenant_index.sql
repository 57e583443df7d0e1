-- user-engine 0007: failed sign-in counts and lockouts (ThrottleAccess in src/store/throttle.ts).
-- A key is an opaque digest ("identifier:<sha256>", "user:<sha256>", "caller:<sha256>"): no email or IP is
-- stored here. Rows change outside units of work, one statement per call, so a count is exact under any
-- number of concurrent callers and processes (INSERT ... ON CONFLICT DO UPDATE locks the row).
CREATE TABLE user_engine_throttle (
  tenant_id text NOT NULL,
  key text COLLATE "C" NOT NULL,
  failures integer NOT NULL CHECK (failures >= 1),
  last_failure_at timestamptz NOT NULL,
  locked_until timestamptz,
  PRIMARY KEY (tenant_id, key)
);

-- The lockout after p_failures failures: none below p_lock_after, then base, 2 x base, ... up to max
-- (the same formula as lockUntil in src/store/throttle.ts; the harness compares the two).
CREATE FUNCTION user_engine_lock_until(p_failures integer, p_lock_after integer, p_base_ms bigint,
  p_max_ms bigint, p_now timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_failures < p_lock_after THEN NULL
    ELSE p_now + least(p_max_ms::numeric, p_base_ms * power(2::numeric, least(p_failures - p_lock_after, 40)))
      * interval '1 millisecond'
  END
$$;

-- listTenants, the one read across tenants, in code-point order (as the reference store sorts): only the
-- tenant records, so the index stays as small as the number of tenants.
CREATE INDEX user_engine_tenants_idx ON user_engine_records ((tenant_id COLLATE "C")) WHERE record_type = 'tenant';
