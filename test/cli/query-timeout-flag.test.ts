import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { FreezingProxy } from '../support/freezing-proxy.js'
import { createTestDatabase, postgresSkip, type TestDatabase } from '../support/services.js'
import { runCli } from './run-cli.js'

const serverSkip = await postgresSkip()

describe('--query-timeout and USER_ENGINE_QUERY_TIMEOUT', () => {
  test('a bad duration, or the flag on a store without a server, is a usage error (exit 2)', async () => {
    for (const args of [
      ['diagnostics', '--database-url', 'memory:', '--query-timeout', '5s'],
      ['diagnostics', '--database-url', 'postgres://127.0.0.1:1/x', '--query-timeout', 'soon'],
      ['diagnostics', '--database-url', 'postgres://127.0.0.1:1/x', '--query-timeout', '5'],
    ]) {
      const r = await runCli(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, /--query-timeout/)
    }
    const env = await runCli(['diagnostics', '--database-url', 'postgres://127.0.0.1:1/x'], {
      USER_ENGINE_QUERY_TIMEOUT: 'soon',
    })
    assert.equal(env.code, 2, env.stderr)
    assert.match(env.stderr, /USER_ENGINE_QUERY_TIMEOUT/)
  })

  describe('on a server that stops answering', { skip: serverSkip }, () => {
    let db: TestDatabase
    before(async () => {
      db = await createTestDatabase('ue_cli_qtimeout', LATEST_SCHEMA_VERSION)
    })
    after(async () => {
      await db?.drop()
    })

    for (const [how, args, env] of [
      ['the flag', ['--query-timeout', '300ms'], {}],
      ['the variable', [], { USER_ENGINE_QUERY_TIMEOUT: '300ms' }],
    ] as const) {
      test(`${how}: the command fails within the bound, saying what ran out (exit 1)`, async () => {
        const proxy = new FreezingProxy()
        await proxy.start()
        try {
          // Frozen right after the first statement on the store's tables goes out: its answer never comes.
          proxy.watch(['user_engine'])
          const started = performance.now()
          const r = await runCli(['diagnostics', '--database-url', proxy.url(db.name), ...args], env)
          const ms = performance.now() - started
          assert.equal(r.code, 1, r.stderr)
          assert.match(r.stderr, /STORE_UNAVAILABLE/)
          assert.match(r.stderr, /did not answer within 300 ms/)
          assert.equal(proxy.marked, 1, 'the freeze came from a statement, not the connection')
          assert.ok(ms < 5000, `failed after ${Math.round(ms)} ms (bound 300 ms)`)
        } finally {
          await proxy.close()
        }
      })
    }
  })
})
