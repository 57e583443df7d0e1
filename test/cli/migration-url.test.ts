import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runCli } from './run-cli.js'

// A pooled service URL that refuses connections (port 1), and a direct URL for schema work.
const env = { DATABASE_URL: 'postgres://svc@127.0.0.1:1/app', USER_ENGINE_MIGRATION_URL: 'pglite:memory' }

test('schema commands use USER_ENGINE_MIGRATION_URL before DATABASE_URL; other commands do not', async () => {
  for (const command of ['migrate', 'status', 'plan']) {
    const run = await runCli([command, '--json'], env)
    assert.notEqual(run.code, 1, `${command}: ${run.stderr}`)
    assert.doesNotMatch(run.stderr, /127\.0\.0\.1:1/, `${command} went to DATABASE_URL`)
  }
  const diagnostics = await runCli(['diagnostics', '--json'], env)
  assert.equal(diagnostics.code, 1, 'diagnostics uses the service URL, which refuses')
  assert.match(diagnostics.stderr, /STORE_UNAVAILABLE/)
  const flag = await runCli(['migrate', '--json', '--database-url', 'memory:'], env)
  assert.equal(flag.code, 0, 'the flag wins over both')
})
