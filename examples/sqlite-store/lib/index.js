// @ts-check
export { refusingTrigger, SanitizedSqliteError, SqliteDatabase } from './database.js'
export { MIGRATIONS } from './schema.js'
export { SqliteUserEngineStore } from './sqlite-store.js'
