export * from './domain/index.js'
export * from './migrations/manifest.js'
export { checksumOf, migrationsDirectory, normalizeSql, readMigrationSql } from './migrations/sql-files.js'
export * from './store/index.js'
