import pg from 'pg'
import { listUsersStatement } from '/work/wt-reads/src/store/postgres/sql.js'
import { createNodePostgresStore } from '/work/wt-reads/src/store/postgres/node-postgres.js'
import { createTestDatabase } from '/work/wt-reads/test/support/services.js'
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
  await pool.query('VACUUM ANALYZE user_engine_records')
  for (const inc of [false, true]) {
    const s = listUsersStatement({ tenantId: t, limit: 50, after: 'usr_00005000', status: undefined, prefix: undefined, includeIdentifiers: inc })
    for (let k = 0; k < 3; k++) await pool.query(s.text, s.values)
    const r = await pool.query(`EXPLAIN (ANALYZE, BUFFERS) ${s.text}`, s.values)
    console.log(r.rows.map((x) => Object.values(x)[0]).join('\n'))
    let t0 = performance.now(); for (let k = 0; k < 200; k++) await pool.query(s.text, s.values); console.log('avg ms', (performance.now()-t0)/200)
  }
} finally { await pool.end(); await db.drop() }
