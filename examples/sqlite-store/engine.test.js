// @ts-check
// The store under the real engine, as a service team would embed it: sign-up, sign-in, a session, a taken
// email, a listing, and the outbox events a relay would publish; and a commit the database refuses.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  createKeyring,
  generateKey,
  InProcessPublisher,
  isUserEngineError,
  OutboxRelay,
  UserEngine,
} from 'user-engine'
import factories from './conformance.js'
import { SqliteUserEngineStore } from './lib/index.js'

test('UserEngine runs its use cases on the SQLite store, and the relay drains the outbox', async () => {
  const store = await SqliteUserEngineStore.open()
  try {
    await store.migrate()
    const engine = new UserEngine({
      store,
      keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
    })
    const tenant = await engine.createTenant('Acme')
    const user = await engine.registerUser(tenant.id, {
      email: 'Ann@Example.com',
      password: 'correct horse battery',
    })
    await engine.setUsername(tenant.id, user.id, 'ann')

    const signIn = await engine.authenticate(tenant.id, {
      username: 'ann',
      password: 'correct horse battery',
    })
    assert.equal(signIn.status, 'signed_in')
    const token = signIn.status === 'signed_in' ? signIn.session.token.reveal() : ''
    assert.equal((await engine.validateSession(token)).userId, user.id)
    await assert.rejects(
      engine.authenticate(tenant.id, { email: 'ann@example.com', password: 'wrong horse battery' }),
      (e) => isUserEngineError(e, 'INVALID_CREDENTIALS'),
    )
    await assert.rejects(
      engine.registerUser(tenant.id, { email: 'ANN@example.com', password: 'another horse battery' }),
      (e) => isUserEngineError(e, 'DUPLICATE_IDENTIFIER'),
    )

    const found = await store.listUsers(tenant.id, { identifierPrefix: { kind: 'email', prefix: 'ann' } })
    assert.deepEqual(
      found.items.map((u) => u.id),
      [user.id],
    )
    assert.equal((await store.getIdentifier(tenant.id, 'email', 'ann@example.com'))?.userId, user.id)

    /** @type {string[]} */
    const types = []
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher: new InProcessPublisher((event) => {
        types.push(event.type)
      }),
    })
    // Drain until a pass publishes nothing: each pass takes a bounded batch (heads, then what follows them).
    for (let pass = 0; pass < 20; pass++) if ((await relay.drainOnce()).published === 0) break
    assert.ok(types.includes('tenant.created'), 'tenant.created was not published')
    // One user's events arrive in commit order (the outbox's per-aggregate order).
    assert.deepEqual(
      types.filter((t) => t.startsWith('user.')),
      ['user.registered', 'user.username_changed', 'user.session_created'],
    )
    assert.equal((await store.outbox.lag()).pending, 0, 'events left pending after the drain')
  } finally {
    await store.close()
  }
})

test('a commit whose event a trigger refuses is STORE_REFUSED and writes nothing of the sign-up', async () => {
  const store = await SqliteUserEngineStore.open()
  try {
    await store.migrate()
    const engine = new UserEngine({
      store,
      keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
    })
    const tenant = await engine.createTenant('Acme')
    const auditBefore = (await store.listAudit(tenant.id)).items.map((a) => a.id)
    // The harness's hook: BEFORE INSERT triggers refusing this audit action and this event type.
    await factories.refuseRows?.(store, { auditAction: 'never.appended', eventType: 'user.registered' })
    /** @type {unknown} */
    let refused
    await assert.rejects(
      engine.registerUser(tenant.id, { email: 'bob@example.com', password: 'correct horse battery' }),
      (e) => {
        refused = e
        return isUserEngineError(e, 'STORE_REFUSED')
      },
    )
    // Typed, and as redacted as any other store error: the trigger's name, never the row's values.
    const shown = JSON.stringify(refused)
    assert.match(shown, /"constraintKind":"TRIGGER"/)
    assert.match(shown, /ue_refuse_event_[0-9a-f]{16}/)
    assert.doesNotMatch(shown, /bob@example\.com/)
    // All or nothing: the user, its email, its audit record and its other events are gone with the event.
    assert.equal(await store.getIdentifier(tenant.id, 'email', 'bob@example.com'), null)
    assert.equal((await store.listUsers(tenant.id)).items.length, 0, 'the refused user was kept')
    assert.deepEqual(
      (await store.listAudit(tenant.id)).items.map((a) => a.id),
      auditBefore,
      'an audit record of the refused sign-up was kept',
    )
    assert.equal((await store.outbox.lag()).pending, 1, 'an event of the refused sign-up was kept')
    // The refusal is narrow: other event types commit, and the store stays usable.
    await engine.createTenant('Globex')
    assert.equal((await store.outbox.lag()).pending, 2)
  } finally {
    await store.close()
  }
})
