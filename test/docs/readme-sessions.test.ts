import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKey } from '../../src/engine/keyring.js'
import { readmeBlock, runReadmeBlock } from './run-readme-block.js'

// The README's account flow exactly as written: sign-up, email verification, sign-in, the TOTP challenge, a
// session, a password reset, and every session revoked.
test('the README sessions section runs as written', async () => {
  const heading = '## Sessions, email verification, password reset'
  const block = readmeBlock(heading)
  for (const call of [
    'registerUser',
    'issueEmailVerification',
    'verifyEmail',
    'authenticate',
    'completeSignIn',
    'validateSession',
    'requestPasswordReset',
    'resetPassword',
  ]) {
    assert.match(block, new RegExp(`engine\\.${call}\\(`), call)
  }
  assert.match(block, /assert\.rejects\(engine\.validateSession\(phone\), invalid\)/)
  const run = await runReadmeBlock(heading, {
    env: { USER_ENGINE_KEYS: `k1:${generateKey()}`, USER_ENGINE_CURRENT_KEY: '' },
  })
  assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}\n--- block as run:\n${run.source}`)
  assert.equal(run.stdout, '"[redacted]"\nsessions after the reset: 0\n')
})
