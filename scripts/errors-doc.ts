// Rewrites the code table of docs/errors.md from ERROR_CODE_MEANINGS (test/errors/error-codes.test.ts
// fails when they differ). Run: npx tsx scripts/errors-doc.ts
import { readFileSync, writeFileSync } from 'node:fs'
import { ERROR_CODE_MEANINGS } from '../src/domain/errors.js'

const path = 'docs/errors.md'
const header = '| Code | Meaning |\n| --- | --- |\n'
const doc = readFileSync(path, 'utf8')
const start = doc.indexOf(header)
if (start < 0) throw new Error(`${path} has no code table`)
const rows = Object.entries(ERROR_CODE_MEANINGS)
  .map(([code, meaning]) => `| \`${code}\` | ${meaning.replace(/\|/g, '\\|')} |`)
  .join('\n')
writeFileSync(path, `${doc.slice(0, start)}${header}${rows}\n`)
console.log(`wrote ${path}`)
