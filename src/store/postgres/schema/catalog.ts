import type { SqlSession } from '../driver/driver.js'

/** A comparable description of the user-engine objects in the public schema (tests, `doctor`-style checks). */
export interface SchemaCatalog {
  readonly tables: string[]
  /** `table.column type [collate c] [not null] [default ...] [identity]`, one line per column. */
  readonly columns: string[]
  /** Index definitions, with validity (an interrupted CREATE INDEX CONCURRENTLY leaves one invalid). */
  readonly indexes: string[]
  readonly constraints: string[]
  readonly functions: string[]
}

const CATALOG_SQL = {
  tables: `SELECT c.relname AS line FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1`,
  columns: `SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
      || coalesce(' collate ' || nullif(co.collname, 'default'), '')
      || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
      || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
      || CASE a.attidentity WHEN 'a' THEN ' identity always' WHEN 'd' THEN ' identity by default' ELSE '' END AS line
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY c.relname, a.attnum`,
  indexes: `SELECT pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END AS line
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' ORDER BY c.relname`,
  constraints: `SELECT t.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid) AS line
    FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = k.connamespace
    WHERE n.nspname = 'public' ORDER BY t.relname, k.conname`,
  functions: `SELECT pg_get_functiondef(p.oid) AS line
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' ORDER BY p.proname, pg_get_function_identity_arguments(p.oid)`,
} as const

export async function readSchemaCatalog(session: SqlSession): Promise<SchemaCatalog> {
  const lines = async (sql: string) => (await session.query<{ line: string }>(sql)).rows.map((r) => r.line)
  return {
    tables: await lines(CATALOG_SQL.tables),
    columns: await lines(CATALOG_SQL.columns),
    indexes: await lines(CATALOG_SQL.indexes),
    constraints: await lines(CATALOG_SQL.constraints),
    functions: await lines(CATALOG_SQL.functions),
  }
}
