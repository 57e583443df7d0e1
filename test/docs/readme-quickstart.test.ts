import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKey } from '../../src/engine/keyring.js'
import { readmeBlock, runReadmeBlock } from './run-readme-block.js'

// The README's quickstart exactly as written (extracted, not copied), run as its own process against the sources.
test('the README quickstart runs as written', async () => {
  const block = readmeBlock('## Quickstart')
  // The block checks the API itself; without its asserts it would only prove that nothing throws.
  assert.match(block, /engine\.authenticate\(/)
  assert.match(block, /assert\.equal\(signIn\.status, 'signed_in'\)/)
  const run = await runReadmeBlock('## Quickstart', {
    env: { USER_ENGINE_KEYS: `k1:${generateKey()}`, USER_ENGINE_CURRENT_KEY: '' },
  })
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}\n--- block as run:\n${run.source}`)
  assert.match(run.stdout, /^signed in usr_[0-9a-f]{32}; tenants: 1$/m)
  assert.doesNotMatch(run.stdout + run.stderr, /otpauth:|secret=/)
})
