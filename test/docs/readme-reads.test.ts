import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKey } from '../../src/engine/keyring.js'
import { readmeBlock, runReadmeBlock } from './run-readme-block.js'

// The README's reads and audit-context example, as written, against the sources.
test('the README reads example runs as written', async () => {
  const heading = '## Reading users, and who did what'
  assert.match(readmeBlock(heading), /engine\.getUserDetails\(/)
  const run = await runReadmeBlock(heading, {
    env: { USER_ENGINE_KEYS: `k1:${generateKey()}`, USER_ENGINE_CURRENT_KEY: '' },
  })
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}\n--- block as run:\n${run.source}`)
  assert.match(run.stdout, /^audit: tenant\.created, user\.registered, username\.changed, user\.disabled$/m)
})
