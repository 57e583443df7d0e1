// Writes migrations/postgres/schema.sql: every migration in order plus history rows (see schema-sql.ts).
// Run: npx tsx scripts/generate-schema.ts    (test/migrations/schema-sql.test.ts fails when it is stale)
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateSchemaSql } from '../src/store/postgres/schema/schema-sql.js'
import { migrationsDirectory } from '../src/store/postgres/schema/sql-files.js'

const target = join(migrationsDirectory(), 'schema.sql')
writeFileSync(target, generateSchemaSql())
console.log(`wrote ${target}`)
