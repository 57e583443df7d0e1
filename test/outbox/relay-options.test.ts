// OutboxRelay options are checked when the relay is built: a wrong type or an unknown key is VALIDATION
// there, not a TypeError in the first drain; a publisher without publish() would otherwise fail every
// event until it is dead. And a publish that never settles fails its attempt at the lease deadline instead
// of holding drainOnce() and stop() forever.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InProcessPublisher, OutboxRelay } from '../../src/outbox/index.js'
import { JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { commitEvents } from './helpers.js'

test('bad relay options are VALIDATION when the relay is built', () => {
  const store = new InMemoryUserEngineStore({ migrated: true })
  const publisher = { publish: async () => {} }
  const base = { outbox: store.outbox, publisher }
  const bad: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['a number', 5],
    ['an array', []],
    ['no outbox', { publisher }],
    ['the store instead of store.outbox', { outbox: store, publisher }],
    ['no publisher', { outbox: store.outbox }],
    ['a publisher without publish', { ...base, publisher: {} }],
    ['publish not a function', { ...base, publisher: { publish: 5 } }],
    ['a misspelt key', { ...base, leaseMS: 1000 }],
    ['an unknown backoff key', { ...base, backoff: { base: 10 } }],
    ['backoff null', { ...base, backoff: null }],
    ['backoff a number', { ...base, backoff: 5 }],
    ['retentionMs Infinity', { ...base, retentionMs: Number.POSITIVE_INFINITY }],
    ['retentionMs a string', { ...base, retentionMs: '1' }],
    ['onError not a function', { ...base, onError: 'x' }],
    ['onProgress not a function', { ...base, onProgress: 5 }],
    ['random not a function', { ...base, random: 0.5 }],
    ['logger without log', { ...base, logger: {} }],
    ['wakeOnCommit a string', { ...base, wakeOnCommit: 'no' }],
    ['metrics a string', { ...base, metrics: 'yes' }],
    ['metrics an empty object', { ...base, metrics: {} }],
  ]
  for (const [name, options] of bad) {
    assert.throws(
      () => new OutboxRelay(options as never),
      (e: { code?: string }) => e.code === 'VALIDATION',
      name,
    )
  }
  // The defaults and a full set of valid options still build.
  new OutboxRelay(base)
  new OutboxRelay({ ...base, backoff: { baseMs: 10 }, retentionMs: 0, metrics: false, wakeOnCommit: false })
})

test('bad publisher options are VALIDATION when the publisher is built, and nothing of a throwing getter shows', () => {
  const servers = 'nats://127.0.0.1:4222'
  const bad: Array<[string, unknown]> = [
    ['a misspelt key', { servers, subjectPrefx: 'x' }],
    [
      'a getter that throws',
      {
        get servers(): string {
          throw new Error('HUNTER2')
        },
      },
    ],
    ['a wildcard in the subject prefix', { servers, subjectPrefix: 'acme.*' }],
    ['a full wildcard in the subject prefix', { servers, subjectPrefix: 'acme.>' }],
    ['a space in the subject prefix', { servers, subjectPrefix: 'acme users' }],
    ['an empty token in the subject prefix', { servers, subjectPrefix: 'acme..users' }],
    ['a dot in the stream name', { servers, stream: 'A.B' }],
    ['a wildcard in the stream name', { servers, stream: 'A*' }],
    ['a space in the stream name', { servers, stream: 'A B' }],
    ['a slash in the stream name', { servers, stream: 'A/B' }],
    ['subject not a function', { servers, subject: 'x' }],
    ['ensureStream a string', { servers, ensureStream: 'no' }],
    ['rebuild with an unknown key', { servers, rebuild: { base: 10 } }],
    ['rebuild.maxMs negative', { servers, rebuild: { maxMs: -1 } }],
    ['connection a string', { servers, connection: 'x' }],
  ]
  for (const [name, options] of bad) {
    assert.throws(
      () => new JetStreamPublisher(options as never),
      (e: Error & { code?: string }) => e.code === 'VALIDATION' && !e.message.includes('HUNTER2'),
      name,
    )
  }
  new JetStreamPublisher({
    servers,
    stream: 'ACME_USERS-1',
    subjectPrefix: 'acme.users-v1',
    rebuild: { baseMs: 100 },
  })
  assert.throws(() => new InProcessPublisher(5 as never), { code: 'VALIDATION' })
})

test('a publish that never settles is given up a lease length (at least 5 s) past its lease: drainOnce and stop return', async () => {
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1', 1)
  const relay = new OutboxRelay({
    outbox: store.outbox,
    publisher: { publish: () => new Promise<void>(() => {}) },
    leaseMs: 1000,
    onError: () => {},
  })
  const started = Date.now()
  const result = await relay.drainOnce()
  const took = Date.now() - started
  assert.ok(took >= 5000 && took < 9000, `drainOnce took ${took} ms`)
  assert.equal(result.published, 0)
  // By then the lease has lapsed: the event is given back, neither published nor dead.
  const [event] = await store.outbox.listForAggregate('t1', 'u1')
  assert.equal(event?.status, 'pending')
  await relay.stop()
})
