// `user-engine relay` at its edges: a malformed --nats (exit 2), credentials in --nats, NATS down at start-up
// (the relay waits; --once fails), and SIGTERM while Postgres is down (exit 0). Spawned where a signal is sent:
// a signal is only real for a process of its own.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { AuthNatsServer, natsServerSkip } from '../outbox/auth-nats-server.js'
import { commitEvents, waitFor } from '../outbox/helpers.js'
import { FreezingProxy } from '../support/freezing-proxy.js'
import {
  createTestDatabase,
  freePort,
  NATS_URL,
  natsSkip,
  postgresSkip,
  type TestDatabase,
} from '../support/services.js'
import { runCli, startCli } from './run-cli.js'

const SECRET = 'S3cretNats'

/** Waits (bounded) until the child's stderr matches `pattern`. */
async function stderrMatches(output: () => { stderr: string }, pattern: RegExp, what: string) {
  await waitFor(() => pattern.test(output().stderr), 30_000, what).catch((error: Error) => {
    throw new Error(`${error.message}\n${output().stderr}`)
  })
}

describe('relay --nats usage errors', () => {
  test('a malformed --nats is a usage error (exit 2) that never echoes its password', async () => {
    for (const nats of [
      `nats://natsuser:${SECRET}@[bad`,
      `nats://natsuser:${SECRET}@host:99999`,
      'nats://127.0.0.1:4222,',
      `nats://a:${SECRET}@h1:4222,nats://b:other@h2:4222`,
    ]) {
      const r = await runCli(['relay', '--nats', nats, '--database-url', 'memory:'])
      assert.equal(r.code, 2, `${nats}: ${r.stderr}`)
      assert.match(r.stderr, /--nats/)
      assert.ok(!(r.stdout + r.stderr).includes(SECRET), r.stdout + r.stderr)
    }
    const fromEnv = await runCli(['relay', '--database-url', 'memory:', '--json'], {
      USER_ENGINE_RELAY_NATS: `nats://natsuser:${SECRET}@[bad`,
    })
    assert.equal(fromEnv.code, 2, fromEnv.stderr)
    assert.match(fromEnv.stderr, /USER_ENGINE_RELAY_NATS: nats:\/\/\*\*\*@\[bad is not a NATS server URL/)
    assert.equal(JSON.parse(fromEnv.stdout).error.code, 'USAGE')
    assert.ok(!(fromEnv.stdout + fromEnv.stderr).includes(SECRET))
  })
})

const pgSkip = await postgresSkip()

describe('relay with NATS down at start-up (Postgres server)', { skip: pgSkip }, () => {
  let db: TestDatabase
  let store: UserEngineStore

  before(async () => {
    db = await createTestDatabase('ue_relay_start', LATEST_SCHEMA_VERSION)
    store = await createNodePostgresStore({ connectionString: db.url })
  })
  after(async () => {
    await store?.close()
    await db?.drop()
  })

  test('waits for the broker, saying so, and stops cleanly (exit 0) on SIGTERM', async () => {
    const port = await freePort()
    const { child, output, done } = startCli([
      'relay',
      '--database-url',
      db.url,
      '--nats',
      `nats://natsuser:${SECRET}@127.0.0.1:${port}`,
      '--broker-retry-base',
      '50ms',
      '--broker-retry-max',
      '200ms',
    ])
    await stderrMatches(output, /waiting for the broker/, 'the relay waiting for the broker')
    // Well past the ~600 ms after which it used to exit 1.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal(child.exitCode, null, `the relay exited while waiting:\n${output().stderr}`)
    child.kill('SIGTERM')
    const { code, stdout, stderr } = await done
    assert.equal(code, 0, stderr)
    assert.match(stderr, /SIGTERM: stopped while waiting for the broker/)
    assert.match(stdout, /stopped while waiting for the broker/)
    assert.ok(!(stdout + stderr).includes(SECRET), stdout + stderr)
  })

  test('--once does not wait: NATS down fails it at once (exit 1)', async () => {
    const port = await freePort()
    const r = await runCli([
      'relay',
      '--once',
      '--database-url',
      db.url,
      '--nats',
      `nats://natsuser:${SECRET}@127.0.0.1:${port}`,
    ])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, /PUBLISH_FAILED: connecting to NATS failed: NATS unreachable/)
    assert.ok(!(r.stdout + r.stderr).includes(SECRET))
  })

  describe('with a nats-server of its own that needs a password', { skip: natsServerSkip() }, () => {
    // '@' and ':' in the password: percent-encoded in the URL.
    const pass = `pw:${SECRET}@x`
    const url = (port: number, password = pass) =>
      `nats://natsuser:${encodeURIComponent(password)}@127.0.0.1:${port}`

    test('credentials in --nats authenticate: --once publishes, and prints none of them', async () => {
      const server = await AuthNatsServer.start({ user: 'natsuser', pass })
      try {
        const run = randomBytes(4).toString('hex')
        const tenant = `t_auth_${run}`
        for (let u = 0; u < 3; u++) await commitEvents(store, tenant, `u${u}`, 2)
        const before = (await store.outbox.lag()).pending
        const args = ['relay', '--once', '--json', '--database-url', db.url, '--stream', `UE_AUTH_${run}`]
        const r = await runCli([...args, '--subject-prefix', `ue-auth-${run}`, '--nats', url(server.port)])
        assert.equal(r.code, 0, r.stderr)
        assert.equal(JSON.parse(r.stdout).published, before)
        assert.ok(!(r.stdout + r.stderr).includes(SECRET), r.stdout + r.stderr)
        // A wrong password is refused at once, also without --once: it is no outage to wait out.
        const wrong = await runCli(['relay', '--database-url', db.url, '--nats', url(server.port, 'wrong')])
        assert.equal(wrong.code, 1, wrong.stderr)
        assert.match(wrong.stderr, /PUBLISH_FAILED: connecting to NATS failed \(AuthorizationError/)
      } finally {
        await server.stop()
      }
    })

    test('a relay started before its broker publishes once the broker is up', async () => {
      const run = randomBytes(4).toString('hex')
      const tenant = `t_late_${run}`
      for (let u = 0; u < 3; u++) await commitEvents(store, tenant, `u${u}`, 2)
      const port = await freePort()
      const { child, output, done } = startCli([
        'relay',
        '--database-url',
        db.url,
        '--nats',
        url(port),
        '--stream',
        `UE_LATE_${run}`,
        '--subject-prefix',
        `ue-late-${run}`,
        '--broker-retry-base',
        '50ms',
        '--broker-retry-max',
        '200ms',
      ])
      let server: AuthNatsServer | undefined
      try {
        await stderrMatches(output, /waiting for the broker/, 'the relay waiting for the broker')
        server = await AuthNatsServer.start({ user: 'natsuser', pass }, port)
        await stderrMatches(output, /broker reachable: starting/, 'the relay connecting')
        await waitFor(async () => (await store.outbox.lag()).pending === 0, 30_000, 'the backlog drained')
        child.kill('SIGTERM')
        const { code, stderr, stdout } = await done
        assert.equal(code, 0, stderr)
        assert.ok(!(stdout + stderr).includes(SECRET), stdout + stderr)
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL')
        await server?.stop()
      }
    })
  })
})

const serverSkip = pgSkip || (await natsSkip())

describe('relay stopped while Postgres is down (Postgres server, NATS)', { skip: serverSkip }, () => {
  test('SIGTERM exits 0 and logs the failed final report instead of failing on it', async () => {
    const db = await createTestDatabase('ue_relay_pgdown', LATEST_SCHEMA_VERSION)
    // The relay reaches Postgres through a proxy the test closes: connections drop, new ones are refused.
    const proxy = new FreezingProxy()
    await proxy.start()
    const stream = `UE_PGDOWN_${randomBytes(4).toString('hex')}`
    try {
      const { child, output, done } = startCli([
        'relay',
        '--database-url',
        proxy.url(db.name),
        '--nats',
        NATS_URL,
        '--stream',
        stream,
        '--subject-prefix',
        stream.toLowerCase(),
        '--poll-interval',
        '100ms',
        '--progress-interval',
        '200ms',
      ])
      try {
        await stderrMatches(output, /relay started/, 'the relay started')
        await proxy.close()
        await stderrMatches(output, /store error|progress failed/, 'the relay noticing the database is gone')
        child.kill('SIGTERM')
        const { code, stdout, stderr } = await done
        assert.equal(code, 0, stderr)
        assert.match(stderr, /SIGTERM: finishing the batch in flight/)
        assert.match(stderr, /final progress report failed/)
        assert.match(stdout, /relay: /)
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL')
      }
    } finally {
      await proxy.close().catch(() => undefined)
      const nc = await connect({ servers: NATS_URL })
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined)
      await nc.close()
      await db.drop()
    }
  })
})
