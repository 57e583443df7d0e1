import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runWalkthrough } from '../../src/cli/shared/walkthrough.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'

test('runWalkthrough migrates, exercises every flow and prints no secret', async () => {
  const store = new InMemoryUserEngineStore()
  const lines: string[] = []
  await runWalkthrough(store, (line) => lines.push(line))
  const out = lines.join('\n')
  for (const expected of [
    "ann's password verifies: true",
    'a wrong password verifies: false',
    'an unknown email verifies: false',
    'DUPLICATE_IDENTIFIER',
    "the app's current code verifies: true",
    'the same code again (replay) verifies: false',
    'using one: true',
    'using it again: false',
    'recovery_code.used',
    'user.recovery_code_used',
    'outbox_pending',
  ]) {
    assert.ok(out.includes(expected), `missing: ${expected}`)
  }
  assert.doesNotMatch(out, /otpauth:|secret=|correct horse|\b[0-9a-z]{5}-[0-9a-z]{5}\b/)
  assert.equal((await store.readiness()).ready, true)
  const counts = (await store.diagnostics()).counts
  assert.equal(counts.users, 3)
  assert.equal(counts.tenants, 1)
})
