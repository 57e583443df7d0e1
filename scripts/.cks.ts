import { readFileSync } from 'node:fs'
import { checksumOf } from '../src/store/postgres/schema/sql-files.js'

console.log(checksumOf(readFileSync('migrations/postgres/0008_outbox_pending_aggregate_index.sql', 'utf8')))
