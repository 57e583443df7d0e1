// Rewrites the table of docs/status-rules.md from STATUS_RULES (test/engine/status-rules.test.ts fails when
// they differ). Run: npx tsx scripts/status-rules-doc.ts
import { readFileSync, writeFileSync } from 'node:fs'
import { statusRulesTable } from '../src/engine/status-rules.js'

const path = 'docs/status-rules.md'
const marker = '<!-- table: STATUS_RULES -->\n'
const doc = readFileSync(path, 'utf8')
const start = doc.indexOf(marker)
if (start < 0) throw new Error(`${path} has no ${marker.trim()} marker`)
const end = doc.indexOf('\n\n', start + marker.length)
writeFileSync(
  path,
  `${doc.slice(0, start)}${marker}${statusRulesTable()}${end < 0 ? '\n' : doc.slice(end + 1)}`,
)
console.log(`wrote ${path}`)
