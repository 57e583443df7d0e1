import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { generateApiReport, REPORT_PATH } from '../../scripts/api-report.js'

test('the public API matches the checked-in report (api/public-api.md)', () => {
  const checkedIn = readFileSync(REPORT_PATH, 'utf8')
  const current = generateApiReport()
  assert.ok(
    current === checkedIn,
    'the exported surface changed: review it, then run `npx tsx scripts/api-report.ts` and commit api/public-api.md',
  )
})

test('the root entry point exposes no internals', () => {
  const report = generateApiReport()
  const root = report.split('\n## ')[1] ?? ''
  for (const internal of [
    'sealSeed',
    'openSeed',
    'assertString',
    'normalizeSql',
    'migrationsDirectory',
    'runWalkthrough',
    'JetStreamPublisher',
  ]) {
    assert.ok(!root.includes(`\`${internal}\``), `${internal} is exported from the root`)
  }
})
