// The relay's flags and environment variables, its log lines, and `outbox list`.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { RELAY_FLAGS, relayEnvName, relaySettings } from '../../src/cli/commands/relay-settings.js'
import { UsageError } from '../../src/cli/shared/usage-error.js'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { createPgliteStore } from '../../src/store/postgres/pglite.js'
import { commitEvents } from '../outbox/helpers.js'
import { dataDirFromImage } from '../support/images.js'
import { createTestDatabase, NATS_URL, natsSkip, postgresSkip } from '../support/services.js'
import { runCli, spawnCli } from './run-cli.js'

describe('relay settings from flags and USER_ENGINE_RELAY_* variables', () => {
  test('every flag has a variable; a flag wins over its variable; durations take units', () => {
    assert.equal(relayEnvName('batch-size'), 'USER_ENGINE_RELAY_BATCH_SIZE')
    const s = relaySettings(
      { 'batch-size': '250', lease: '45s', once: true },
      {
        USER_ENGINE_RELAY_BATCH_SIZE: '999',
        USER_ENGINE_RELAY_PER_AGGREGATE: '40',
        USER_ENGINE_RELAY_RETENTION: '7d',
        USER_ENGINE_RELAY_POLL_INTERVAL: '250ms',
        USER_ENGINE_RELAY_BACKOFF_MAX: '2m',
        USER_ENGINE_RELAY_LOG_FORMAT: 'json',
        USER_ENGINE_RELAY_NATS: 'nats://127.0.0.1:4222',
        USER_ENGINE_RELAY_REPLICAS: '3',
        USER_ENGINE_RELAY_WAKE: 'poll',
      },
    )
    assert.deepEqual(s, {
      nats: 'nats://127.0.0.1:4222',
      replicas: 3,
      'batch-size': 250,
      'per-aggregate': 40,
      lease: 45_000,
      'backoff-max': 120_000,
      'poll-interval': 250,
      wake: 'poll',
      retention: 7 * 86_400_000,
      'log-format': 'json',
      once: true,
    })
    for (const name of Object.keys(RELAY_FLAGS))
      assert.match(relayEnvName(name), /^USER_ENGINE_RELAY_[A-Z_]+$/)
  })

  test('a malformed value is a usage error naming the flag or variable, never echoing the value', () => {
    const bad: [Record<string, string>, Record<string, string>, RegExp][] = [
      [{ 'batch-size': '0' }, {}, /--batch-size must be an integer from 1 to 10000/],
      [{ lease: 'soon' }, {}, /--lease must be an integer/],
      [{}, { USER_ENGINE_RELAY_MAX_ATTEMPTS: '1.5' }, /USER_ENGINE_RELAY_MAX_ATTEMPTS must be/],
      [{ 'log-format': 'xml' }, {}, /--log-format must be one of text, json/],
      [{}, { USER_ENGINE_RELAY_REPLICAS: '9' }, /USER_ENGINE_RELAY_REPLICAS must be an integer from 1 to 5/],
    ]
    for (const [flags, env, message] of bad) {
      assert.throws(
        () => relaySettings(flags, env),
        (e: unknown) => e instanceof UsageError && message.test(e.message),
      )
    }
  })
})

describe('outbox list (PGlite data directory)', () => {
  test('finds dead and pending events by user, pages them, never prints payloads; retry takes the listed id', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ue-outbox-list-'))
    // Migrated from the image: this test is about the outbox commands, not initdb.
    const url = `pglite:${await dataDirFromImage(join(dir, 'data'))}`
    let deadId: string
    try {
      const store = await createPgliteStore({ dataDir: join(dir, 'data') })
      try {
        await store.migrate()
        for (let i = 0; i < 3; i++) await commitEvents(store, 't1', 'u1', 1, { secret: 'payload-value-7' })
        await commitEvents(store, 't1', 'u2', 2)
        const [head] = await store.outbox.claim({ owner: 'ops', limit: 1, leaseMs: 60_000 })
        assert.ok(head)
        deadId = head.id
        await store.outbox.fail({
          owner: 'ops',
          eventId: head.id,
          error: 'poison',
          maxAttempts: 1,
          backoffMs: 0,
        })
      } finally {
        await store.close()
      }
      const dead = await runCli(['outbox', 'list', '--dead', '--database-url', url, '--json'])
      assert.equal(dead.code, 0, dead.stderr)
      const page = JSON.parse(dead.stdout) as { items: { id: string; lastError: string }[]; nextCursor: null }
      assert.deepEqual(
        page.items.map((e) => [e.id, e.lastError]),
        [[deadId, 'poison']],
      )
      assert.ok(!dead.stdout.includes('payload-value-7'), 'a payload was printed')
      const extra = await runCli(['outbox', 'list', 'pw-s3cret', '--dead', '--database-url', url])
      assert.equal(extra.code, 2, extra.stderr)
      assert.ok(!extra.stderr.includes('s3cret'), 'a stray argument is not echoed')

      const text = await runCli(['outbox', 'list', '--dead', '--database-url', url])
      assert.match(text.stdout, new RegExp(`${deadId}.*attempts 1.*last error: poison`))
      assert.match(text.stdout, /outbox retry\|discard --event ID/)

      const first = await runCli([
        'outbox',
        'list',
        '--pending',
        '--limit',
        '2',
        '--database-url',
        url,
        '--json',
      ])
      const p1 = JSON.parse(first.stdout) as { items: { id: string }[]; nextCursor: string }
      assert.equal(p1.items.length, 2)
      const second = await runCli([
        'outbox',
        'list',
        '--pending',
        '--limit',
        '2',
        '--cursor',
        p1.nextCursor,
        '--database-url',
        url,
        '--json',
      ])
      const p2 = JSON.parse(second.stdout) as { items: { id: string }[]; nextCursor: string | null }
      assert.equal(p1.items.length + p2.items.length, 4, 'four pending events behind and beside the dead one')
      const ofU2 = await runCli([
        'outbox',
        'list',
        '--pending',
        '--user',
        'u2',
        '--database-url',
        url,
        '--json',
      ])
      assert.equal((JSON.parse(ofU2.stdout) as { items: unknown[] }).items.length, 2)

      const usage = await runCli(['outbox', 'list', '--database-url', url])
      assert.equal(usage.code, 2)
      assert.match(usage.stderr, /exactly one of --dead or --pending/)
      const badCursor = await runCli([
        'outbox',
        'list',
        '--pending',
        '--cursor',
        'nope',
        '--database-url',
        url,
      ])
      assert.equal(badCursor.code, 2, badCursor.stderr)
      assert.match(badCursor.stderr, /--cursor is not a cursor/)
      const retried = await runCli(['outbox', 'retry', '--event', deadId, '--database-url', url])
      assert.equal(retried.code, 0, retried.stderr)
      const none = await runCli(['outbox', 'list', '--dead', '--database-url', url])
      assert.match(none.stdout, /no dead events/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

const serverSkip = (await postgresSkip()) || (await natsSkip())

describe('relay command logs (Postgres server, NATS)', { skip: serverSkip }, () => {
  test('--log-format json: stderr is JSON lines with time and level; settings come from the environment', async () => {
    const db = await createTestDatabase('ue_relay_opts')
    const store = await createNodePostgresStore({ connectionString: db.url })
    const stream = `UE_OPTS_${Date.now()}`
    try {
      await store.migrate()
      for (let u = 0; u < 3; u++) await commitEvents(store, 't1', `u${u}`, 2)
      const r = await spawnCli(['relay', '--once', '--log-format', 'json', '--database-url', db.url], {
        USER_ENGINE_RELAY_NATS: NATS_URL,
        USER_ENGINE_RELAY_STREAM: stream,
        USER_ENGINE_RELAY_SUBJECT_PREFIX: `ue-opts-${Date.now()}`,
        USER_ENGINE_RELAY_BATCH_SIZE: '7',
        USER_ENGINE_RELAY_PER_AGGREGATE: '1',
        USER_ENGINE_RELAY_DUPLICATE_WINDOW: '5m',
      })
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /drained once: published 6/)
      const lines = r.stderr.trim().split('\n')
      assert.ok(lines.length >= 1)
      for (const line of lines) {
        const entry = JSON.parse(line) as { time: string; level: string; msg: string }
        assert.ok(!Number.isNaN(Date.parse(entry.time)), line)
        assert.match(entry.level, /^(debug|info|warn|error)$/)
        assert.equal(typeof entry.msg, 'string')
      }
      const bad = await runCli(['relay', '--once', '--database-url', db.url], {
        USER_ENGINE_RELAY_NATS: NATS_URL,
        USER_ENGINE_RELAY_LEASE: 'forever',
      })
      assert.equal(bad.code, 2)
      assert.match(bad.stderr, /USER_ENGINE_RELAY_LEASE must be an integer/)
    } finally {
      const { connect } = await import('@nats-io/transport-node')
      const { jetstreamManager } = await import('@nats-io/jetstream')
      const nc = await connect({ servers: NATS_URL })
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {})
      await nc.close()
      await store.close()
      await db.drop()
    }
  })

  test('no NATS token or database password reaches stdout or stderr', async () => {
    const db = await createTestDatabase('ue_relay_secret')
    try {
      const store = await createNodePostgresStore({ connectionString: db.url })
      await store.migrate()
      await store.close()
      const url = new URL(db.url)
      url.password = 'pw-s3cret-db'
      const r = await spawnCli(
        ['relay', '--once', '--nats', 'nats://tok-s3cret-nats@127.0.0.1:1', '--database-url', db.url],
        {},
      )
      assert.notEqual(r.code, 0)
      const both = r.stdout + r.stderr
      assert.ok(!both.includes('tok-s3cret-nats'), both)
      const json = await spawnCli(
        [
          'relay',
          '--once',
          '--json',
          '--nats',
          'nats://u:pw-s3cret-nats@127.0.0.1:1',
          '--database-url',
          url.href,
        ],
        {},
      )
      assert.notEqual(json.code, 0)
      assert.ok(!(json.stdout + json.stderr).includes('s3cret'), json.stdout + json.stderr)
    } finally {
      await db.drop()
    }
  })
})

describe('backoff pairs', () => {
  test('a base above its cap is a usage error; a base alone above the default cap raises the cap', () => {
    assert.throws(() => relaySettings({ 'backoff-base': '2h', 'backoff-max': '1s' }, {}), UsageError)
    assert.throws(
      () => relaySettings({ 'broker-retry-base': '10s', 'broker-retry-max': '1s' }, {}),
      UsageError,
    )
    assert.deepEqual(relaySettings({ 'backoff-base': '2m' }, {}), {
      'backoff-base': 120_000,
      'backoff-max': 120_000,
    })
    assert.deepEqual(relaySettings({ 'broker-retry-base': '1s' }, {}), { 'broker-retry-base': 1000 })
  })
})
