import pg from 'pg'
import { createNodePostgresStore } from '../src/store/postgres/node-postgres.js'
import { createTestDatabase } from '../test/support/services.js'
const db = await createTestDatabase('ue_explain')
const pool = new pg.Pool({ connectionString: db.url, max: 2 })
try {
  const store = await createNodePostgresStore({ pool })
  await store.migrate()
  const t = 'ten_page'
  const C = 'tenant_id, record_type, record_id, user_id, version, payload, created_at, updated_at'
  await pool.query(`INSERT INTO user_engine_records (${C}) VALUES ('${t}','tenant','${t}',NULL,1,'{"name":"x","status":"active"}',now(),now())`)
  await pool.query(`INSERT INTO user_engine_records (${C}) SELECT '${t}','user','usr_'||lpad(i::text,8,'0'),'usr_'||lpad(i::text,8,'0'),1,'{"status":"active"}',now(),now() FROM generate_series(1,10000) i`)
  await pool.query(`INSERT INTO user_engine_records (${C}) SELECT '${t}','identifier','idn_'||lpad(i::text,8,'0')||'e','usr_'||lpad(i::text,8,'0'),1,jsonb_build_object('kind','email','value',md5(i::text)||'@example.com','verified',false),now(),now() FROM generate_series(1,10000) i`)
  await pool.query(`INSERT INTO user_engine_records (${C}) SELECT '${t}','identifier','idn_'||lpad(i::text,8,'0')||'u','usr_'||lpad(i::text,8,'0'),1,jsonb_build_object('kind','username','value','user'||i,'verified',false),now(),now() FROM generate_series(1,10000) i`)
  await pool.query(`INSERT INTO user_engine_records (${C}) SELECT '${t}','profile','usr_'||lpad(i::text,8,'0'),'usr_'||lpad(i::text,8,'0'),1,'{"attributes":{"name":"x"}}',now(),now() FROM generate_series(1,10000) i`)
  await pool.query(`INSERT INTO user_engine_records (${C}) SELECT '${t}','factor','fac_'||lpad(i::text,8,'0'),'usr_'||lpad(i::text,8,'0'),1,'{"kind":"password","secret":{"phc":"x"},"state":{}}',now(),now() FROM generate_series(1,10000) i`)
  await pool.query(`CREATE INDEX ident_by_user_idx ON user_engine_records (tenant_id, (user_id COLLATE "C")) WHERE record_type = 'identifier'`)
  await pool.query('VACUUM ANALYZE user_engine_records')
  const ROW = 'record_type, record_id, user_id, version, payload, created_at, updated_at'
  const U = ROW.split(', ').map((c) => 'u.' + c).join(', ')
  const W = `WHERE u.tenant_id = $1 AND u.record_type = 'user' AND u.record_id > $2 ORDER BY u.record_id LIMIT $3`
  const SUB = (expr: string, order = '') => `SELECT ${U}, (SELECT json_agg(${expr}${order}) FROM user_engine_records x WHERE x.tenant_id = u.tenant_id AND x.user_id = u.record_id COLLATE "default" AND x.record_type = 'identifier') AS identifiers FROM user_engine_records u ${W}`
  const variants: Record<string, string> = {
    plain: `SELECT ${U} FROM user_engine_records u ${W}`,
    count: SUB('x.record_id').replace('json_agg(x.record_id)', 'count(*)'),
    ids: SUB('x.record_id'),
    payload: SUB('x.payload'),
    arr: SUB(`json_build_array(x.record_id, x.version, x.payload, x.created_at, x.updated_at)`),
    arrsort: SUB(`json_build_array(x.record_id, x.version, x.payload, x.created_at, x.updated_at)`, ' ORDER BY x.record_id'),
    arrepoch: SUB(`json_build_array(x.record_id, x.version, x.payload, floor(extract(epoch FROM x.created_at) * 1000), floor(extract(epoch FROM x.updated_at) * 1000))`),
    grouped: `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W}),
      ids AS (SELECT x.user_id, json_agg(json_build_array(x.record_id, x.version, x.payload, x.created_at, x.updated_at)) AS identifiers
        FROM user_engine_records x WHERE x.tenant_id = $1 AND x.record_type = 'identifier'
          AND x.user_id IN (SELECT record_id COLLATE "default" FROM page) GROUP BY x.user_id)
      SELECT page.*, ids.identifiers FROM page LEFT JOIN ids ON ids.user_id = page.record_id COLLATE "default" ORDER BY page.record_id`,
    anyarr: `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
      SELECT page.*, (SELECT json_agg(json_build_array(x.record_id, x.user_id, x.version, x.payload, x.created_at, x.updated_at)) FROM user_engine_records x WHERE x.tenant_id = $1 AND x.record_type = 'identifier'
          AND x.user_id = ANY (SELECT record_id COLLATE "default" FROM page)) AS identifiers FROM page ORDER BY page.record_id`,
  }
  variants.jsonb = `SELECT ${U}, (SELECT coalesce(jsonb_agg(jsonb_build_object('id', x.record_id, 'userId', x.user_id, 'version', x.version, 'payload', x.payload, 'createdAt', x.created_at, 'updatedAt', x.updated_at) ORDER BY x.record_id), '[]'::jsonb) FROM user_engine_records x WHERE x.tenant_id = u.tenant_id AND x.user_id = u.record_id COLLATE "default" AND x.record_type = 'identifier') AS identifiers FROM user_engine_records u ${W}`
  variants.union = `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
      SELECT ${ROW} FROM page
      UNION ALL
      SELECT x.record_type, x.record_id, x.user_id, x.version, x.payload, x.created_at, x.updated_at FROM page p JOIN user_engine_records x ON x.tenant_id = p.tenant_id AND x.user_id = p.record_id COLLATE "default" AND x.record_type = 'identifier'`
  variants.onerow = `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
      SELECT ${ROW}, NULL::json AS identifiers FROM page
      UNION ALL
      SELECT 'identifiers', NULL, NULL, NULL, NULL, NULL, NULL,
        json_agg(json_build_array(x.record_id, x.user_id, x.version, x.payload, x.created_at, x.updated_at))
      FROM user_engine_records x WHERE x.tenant_id = $1 AND x.record_type = 'identifier'
        AND x.user_id = ANY (ARRAY(SELECT record_id COLLATE "default" FROM page))`
  variants.onerowepoch = variants.onerow.replace('x.created_at, x.updated_at))', 'floor(extract(epoch FROM x.created_at) * 1000), floor(extract(epoch FROM x.updated_at) * 1000)))')
  variants.onerowids = variants.onerow.replace('json_agg(json_build_array(x.record_id, x.user_id, x.version, x.payload, x.created_at, x.updated_at))', 'json_agg(x.record_id)')
  variants.onerowlean = variants.onerow.replace('json_build_array(x.record_id, x.user_id, x.version, x.payload, x.created_at, x.updated_at)', "json_build_array(x.record_id, x.user_id, x.version, x.payload->>'kind', x.payload->>'value', x.payload->'verified')")
  variants.unionany = `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
      SELECT ${ROW} FROM page
      UNION ALL
      SELECT x.record_type, x.record_id, x.user_id, x.version, x.payload, x.created_at, x.updated_at
      FROM user_engine_records x WHERE x.tenant_id = $1 AND x.record_type = 'identifier'
        AND x.user_id = ANY (ARRAY(SELECT record_id COLLATE "default" FROM page))`
  variants.range = `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
      SELECT ${ROW} FROM page
      UNION ALL
      SELECT x.record_type, x.record_id, x.user_id, x.version, x.payload, x.created_at, x.updated_at
      FROM user_engine_records x WHERE x.tenant_id = $1 AND x.user_id COLLATE "C" > $2
        AND x.user_id COLLATE "C" <= (SELECT max(record_id) FROM page) AND x.record_type = 'identifier'`
  variants.rangejson = `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
      SELECT ${ROW}, NULL::json AS identifiers FROM page
      UNION ALL
      SELECT 'identifiers', NULL, NULL, NULL, NULL, NULL, NULL,
        json_agg(json_build_array(x.record_id, x.user_id, x.version, x.payload, x.created_at, x.updated_at))
      FROM user_engine_records x WHERE x.tenant_id = $1 AND x.user_id COLLATE "C" > $2
        AND x.user_id COLLATE "C" <= (SELECT max(record_id) FROM page) AND x.record_type = 'identifier'`
  variants.subjson = `SELECT ${U}, (SELECT json_agg(json_build_array(x.record_id, x.version, x.payload, x.created_at, x.updated_at)) FROM user_engine_records x WHERE x.tenant_id = u.tenant_id AND x.user_id = u.record_id COLLATE "default" AND x.record_type = 'identifier') AS identifiers FROM user_engine_records u ${W}`
  const params = [t, 'usr_00005000', 51]
  const iso = (v: Date | string) => (v instanceof Date ? v : new Date(v)).toISOString()
  const mapUser = (r: any) => ({ type: r.record_type, id: r.record_id, userId: r.user_id, version: Number(r.version), payload: r.payload, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) })
  variants.lean1 = variants.subjson.replace('json_build_array(x.record_id, x.version, x.payload, x.created_at, x.updated_at)', 'json_build_array(x.record_id, x.payload)')
  variants.rangelean = `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
    SELECT p.record_type, p.record_id, p.user_id, p.version, p.payload, p.created_at, p.updated_at, i.identifiers
    FROM page p LEFT JOIN (
      SELECT x.user_id, json_agg(json_build_array(x.record_id, x.payload)) AS identifiers
      FROM user_engine_records x
      WHERE x.tenant_id = $1 AND x.record_type = 'identifier'
        AND x.user_id COLLATE "C" > $2 AND x.user_id COLLATE "C" <= (SELECT max(record_id) FROM page)
      GROUP BY x.user_id) i ON i.user_id = p.record_id COLLATE "default"
    ORDER BY p.record_id`
  variants.rangefull = variants.rangelean.replace('json_build_array(x.record_id, x.payload)', 'json_build_array(x.record_id, x.version, x.payload, x.created_at, x.updated_at)')
  const leanMap = async (v: string) => (await pool.query(variants[v]!, params)).rows.map((r: any) => ({ ...mapUser(r), identifiers: (r.identifiers ?? []).map((a: any[]) => ({ id: a[0], kind: a[1].kind, value: a[1].value, verified: a[1].verified })) }))
  const fullMap = async (v: string) => (await pool.query(variants[v]!, params)).rows.map((r: any) => ({ ...mapUser(r), identifiers: (r.identifiers ?? []).map((a: any[]) => ({ id: a[0], version: a[1], payload: a[2], createdAt: iso(a[3]), updatedAt: iso(a[4]) })) }))
  variants.anyrows = `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
      SELECT ${ROW} FROM page
      UNION ALL
      SELECT 'identifier', x.record_id, x.user_id, NULL, x.payload, NULL, NULL
      FROM user_engine_records x WHERE x.tenant_id = $1 AND x.record_type = 'identifier'
        AND x.user_id = ANY (ARRAY(SELECT record_id COLLATE "default" FROM page))`
  variants.rangerows = `WITH page AS (SELECT u.tenant_id, ${U} FROM user_engine_records u ${W})
      SELECT ${ROW} FROM page
      UNION ALL
      SELECT 'identifier', x.record_id, x.user_id, NULL, x.payload, NULL, NULL
      FROM user_engine_records x WHERE x.tenant_id = $1 AND x.record_type = 'identifier'
        AND x.user_id COLLATE "C" > $2 AND x.user_id COLLATE "C" <= (SELECT max(record_id) FROM page)`
  const rowsMap = async (v: string) => {
    const rows = (await pool.query(variants[v]!, params)).rows
    const users: any[] = []
    const byUser = new Map<string, any[]>()
    for (const r of rows) {
      if (r.record_type === 'user') users.push(mapUser(r))
      else {
        const l = byUser.get(r.user_id) ?? []
        l.push({ id: r.record_id, kind: r.payload.kind, value: r.payload.value, verified: r.payload.verified })
        byUser.set(r.user_id, l)
      }
    }
    return users.map((u) => ({ ...u, identifiers: byUser.get(u.id) ?? [] }))
  }
  const fns: Record<string, () => Promise<unknown>> = {
    plain: async () => (await pool.query(variants.plain!, params)).rows.map(mapUser),
    lean1: () => leanMap('lean1'),
    rangelean: () => leanMap('rangelean'),
    anyrows: () => rowsMap('anyrows'),
    rangerows: () => rowsMap('rangerows'),
  }
  const names = Object.keys(fns)
  for (const name of names) for (let k = 0; k < 200; k++) await fns[name]!()
  const total: Record<string, number> = {}
  for (let k = 0; k < 2000; k++) {
    for (const name of names) {
      const t0 = performance.now()
      await fns[name]!()
      total[name] = (total[name] ?? 0) + performance.now() - t0
    }
  }
  for (const name of names) console.log(name.padEnd(9), (total[name]! / 2000).toFixed(3), 'ms', (total[name]! / total.plain!).toFixed(2))
  for (const v of ['plain', 'lean1', 'rangelean', 'anyrows', 'rangerows']) {
    const ex: number[] = []
    for (let k = 0; k < 100; k++) { const r = await pool.query(`EXPLAIN (ANALYZE, TIMING OFF) ${variants[v]}`, params); ex.push(Number(/([\d.]+) ms/.exec(r.rows.map((x) => String(Object.values(x)[0])).find((l) => l.startsWith('Execution'))!)![1])) }
    console.log(v, 'server median', ex.sort((a, b) => a - b)[50])
  }
} finally { await pool.end(); await db.drop() }
