import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

const LIMIT = 400
const REASON = '// Long on purpose:'

test(`a source file over ${LIMIT} lines opens with the reason it is long`, () => {
  const unexplained = readdirSync('src', { recursive: true })
    .map((f) => join('src', String(f)))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ f, text: readFileSync(f, 'utf8') }))
    .filter(({ text }) => text.split('\n').length > LIMIT && !text.startsWith(REASON))
    .map(({ f }) => f)
  assert.deepEqual(unexplained, [], `split these, or start them with "${REASON} ..."`)
})
