import assert from 'node:assert/strict'
import { test } from 'node:test'
import { inspect } from 'node:util'
import type { NewSession, UserEngine } from '../../src/engine/index.js'
import { forEachStore, type Harness, rejectsWith, setup, tracing } from './support.js'

const PASSWORD = 'correct horse battery'
const HOUR = 3_600_000
const DAY = 24 * HOUR

async function signedIn(h: Harness, email = 'ann@example.com') {
  const t = (await h.engine.createTenant('Acme')).id
  const user = await h.engine.registerUser(t, { email, password: PASSWORD })
  const result = await h.engine.authenticate(t, { email, password: PASSWORD })
  assert.equal(result.status, 'signed_in')
  return { t, user, session: (result as { session: NewSession }).session }
}

async function signInAgain(e: UserEngine, t: string, email = 'ann@example.com') {
  const result = await e.authenticate(t, { email, password: PASSWORD })
  assert.equal(result.status, 'signed_in')
  return (result as { session: NewSession }).session
}

const events = async (h: Harness, t: string, u: string) =>
  (await h.store.outbox.listForAggregate(t, u)).map((e) => e.type)

await forEachStore('sessions', ({ store }) => {
  test('a sign-in creates a session; validating it is one read and no write until a refresh is due', async () => {
    const h = setup({ store: store() })
    const { t, user, session } = await signedIn(h)
    assert.match(session.token.reveal(), /^[A-Za-z0-9_-]+\.ses_[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/)
    assert.ok(session.token.reveal().startsWith(`${t}.`), 'the token names its tenant')
    assert.deepEqual([session.tenantId, session.userId, session.methods], [t, user.id, ['password']])

    const traced = tracing(h.store)
    const hot = new Date(h.now)
    const probe = setup({ store: traced.store, clock: () => hot.getTime() }).engine
    for (let i = 0; i < 5; i++) {
      const valid = await probe.validateSession(session.token.reveal())
      assert.equal(valid.id, session.id)
    }
    assert.deepEqual(traced.calls, Array(5).fill('findSession'), 'one read per validation, no write')

    // Past the refresh interval: one write moves lastSeenAt and the idle expiry; the next is a read again.
    hot.setTime(h.now + HOUR)
    traced.calls.length = 0
    const refreshed = await probe.validateSession(session.token.reveal())
    assert.deepEqual(traced.calls, ['findSession', 'transaction', 'commit'])
    assert.equal(refreshed.lastSeenAt, new Date(h.now + HOUR).toISOString())
    assert.equal(refreshed.expiresAt, new Date(h.now + HOUR + 7 * DAY).toISOString())
    traced.calls.length = 0
    await probe.validateSession(session.token.reveal())
    assert.deepEqual(traced.calls, ['findSession'])
    // A refresh writes the session only: the user's version and events are untouched (rule 5's exception).
    assert.equal((await h.store.getUser(t, user.id))?.version, (await signedInVersion(h, t, user.id)).version)
    assert.deepEqual(await events(h, t, user.id), ['user.registered', 'user.session_created'])
  })

  test('idle and absolute expiry; a refreshed session lives on until its absolute end', async () => {
    const h = setup({
      store: store(),
      sessions: { idleTtlMs: 2 * HOUR, absoluteTtlMs: 5 * HOUR, refreshIntervalMs: HOUR },
    })
    const { session } = await signedIn(h)
    const token = session.token.reveal()
    const start = h.now
    h.now = start + 2 * HOUR - 1
    await h.engine.validateSession(token)
    h.now = start + 4 * HOUR - 2
    await h.engine.validateSession(token)
    h.now = start + 5 * HOUR - 1
    const last = await h.engine.validateSession(token)
    assert.equal(last.expiresAt, new Date(start + 5 * HOUR).toISOString(), 'idle expiry capped at absolute')
    h.now = start + 5 * HOUR
    await rejectsWith(h.engine.validateSession(token), 'INVALID_TOKEN')

    const idle = await signInAgain(h.engine, session.tenantId)
    h.now += 2 * HOUR
    await rejectsWith(h.engine.validateSession(idle.token.reveal()), 'INVALID_TOKEN')
  })

  test('tampered, foreign, malformed and revoked tokens are all INVALID_TOKEN', async () => {
    const h = setup({ store: store() })
    const { t, session } = await signedIn(h)
    const other = await signedIn(h, 'bob@example.com')
    const token = session.token.reveal()
    const [tenant, id, secret] = token.split('.') as [string, string, string]
    const flipped = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`
    const bad = [
      `${tenant}.${id}.${flipped}`,
      `${other.t}.${id}.${secret}`,
      `${tenant}.${other.session.id}.${secret}`,
      `${tenant}.${id}`,
      `${tenant}.${id}.${secret}.x`,
      '',
      'x'.repeat(10_000),
      `${tenant}.${id}.${secret.slice(1)}`,
    ]
    for (const value of bad) {
      const error = await rejectsWith(h.engine.validateSession(value), 'INVALID_TOKEN')
      assert.ok(!JSON.stringify(error).includes(secret.slice(0, 20)))
      assert.deepEqual((error as { details?: object }).details, {})
    }
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    await rejectsWith(h.engine.validateSession(42 as any), 'VALIDATION')
    assert.equal((await h.engine.validateSession(token)).tenantId, t)
    assert.equal(await h.engine.signOut(token), true)
    await rejectsWith(h.engine.validateSession(token), 'INVALID_TOKEN')
    assert.equal(await h.engine.signOut(token), false, 'signing out twice is a no-op')
    assert.equal(await h.engine.signOut('not a token'), false)
  })

  test('list (metadata only), revoke one, revoke all but the current; events and audit hold ids only', async () => {
    const h = setup({ store: store() })
    const { t, user, session } = await signedIn(h)
    const second = await signInAgain(h.engine, t)
    const third = await signInAgain(h.engine, t)
    const listed = await h.engine.listSessions(t, user.id)
    assert.deepEqual(
      listed.map((s) => s.id),
      [session.id, second.id, third.id],
    )
    const printed = `${JSON.stringify(listed)}${inspect(listed, { depth: 10 })}`
    for (const s of [session, second, third]) {
      assert.ok(!printed.includes(s.token.reveal().split('.')[2]!), 'a listing holds no token')
    }
    assert.ok(!/tokenHash|[0-9a-f]{64}/.test(printed), 'nor a token hash')
    assert.equal(await h.engine.revokeSession(t, user.id, second.id), true)
    assert.equal(await h.engine.revokeSession(t, user.id, second.id), false)
    assert.equal(await h.engine.revokeAllSessions(t, user.id, { exceptSessionId: third.id }), 1)
    assert.deepEqual(
      (await h.engine.listSessions(t, user.id)).map((s) => s.id),
      [third.id],
    )
    await rejectsWith(h.engine.validateSession(session.token.reveal()), 'INVALID_TOKEN')
    await h.engine.validateSession(third.token.reveal())
    assert.equal(await h.engine.revokeAllSessions(t, user.id), 1)
    assert.equal(await h.engine.revokeAllSessions(t, user.id), 0)
    const outbox = await h.store.outbox.listForAggregate(t, user.id)
    const revoked = outbox.filter((e) => e.type === 'user.sessions_revoked').map((e) => e.payload)
    assert.deepEqual(revoked, [
      { userId: user.id, reason: 'revoked', sessionIds: [second.id] },
      { userId: user.id, reason: 'revoked_all', sessionIds: [session.id] },
      { userId: user.id, reason: 'revoked_all', sessionIds: [third.id] },
    ])
    const audit = (await h.store.listAudit(t, { limit: 500 })).items.filter((a) =>
      a.action.startsWith('session'),
    )
    assert.deepEqual(
      audit.map((a) => [a.action, a.data.reason ?? null, a.data.count ?? null]),
      [
        ['session.created', null, null],
        ['session.created', null, null],
        ['session.created', null, null],
        ['sessions.revoked', 'revoked', 1],
        ['sessions.revoked', 'revoked_all', 1],
        ['sessions.revoked', 'revoked_all', 1],
      ],
    )
    // One user change per commit: the outbox stays a gap-free sequence.
    assert.deepEqual(
      outbox.map((e) => e.sequence),
      outbox.map((_, i) => i + 1),
    )
  })

  test('disabling, deleting, setting the password and changing the email end every session', async () => {
    const h = setup({ store: store() })
    const { t, user, session } = await signedIn(h)
    const cases: [string, () => Promise<unknown>][] = [
      ['setPassword', () => h.engine.setPassword(t, user.id, 'another password')],
      ['changeEmail', () => h.engine.changeEmail(t, user.id, 'ann.new@example.com')],
      ['disableUser', () => h.engine.disableUser(t, user.id)],
    ]
    let token = session.token.reveal()
    let email = 'ann@example.com'
    let password = PASSWORD
    for (const [what, change] of cases) {
      await h.engine.validateSession(token)
      await change()
      await rejectsWith(h.engine.validateSession(token), 'INVALID_TOKEN')
      assert.deepEqual(await h.engine.listSessions(t, user.id), [], `${what} leaves no session`)
      if (what === 'setPassword') password = 'another password'
      if (what === 'changeEmail') email = 'ann.new@example.com'
      if (what !== 'disableUser') {
        const next = await h.engine.authenticate(t, { email, password })
        token = (next as { session: NewSession }).session.token.reveal()
      }
    }
    await h.engine.enableUser(t, user.id)
    const last = await h.engine.authenticate(t, { email, password })
    await h.engine.deleteUser(t, user.id)
    await rejectsWith(
      h.engine.validateSession((last as { session: NewSession }).session.token.reveal()),
      'INVALID_TOKEN',
    )
    assert.equal((await h.store.diagnostics()).counts.sessions !== undefined, true)
    const reasons = (await h.store.outbox.listForAggregate(t, user.id))
      .filter((e) => e.type === 'user.sessions_revoked')
      .map((e) => e.payload.reason)
    assert.deepEqual(reasons, ['password_set', 'email_changed', 'user_disabled', 'user_deleted'])
  })

  test('sessions.revokeOnEmailChange: false keeps sessions across an email change', async () => {
    const h = setup({ store: store(), sessions: { revokeOnEmailChange: false } })
    const { t, user, session } = await signedIn(h)
    await h.engine.changeEmail(t, user.id, 'ann.kept@example.com')
    assert.equal((await h.engine.validateSession(session.token.reveal())).id, session.id)
  })

  test('at most sessions.maxPerUser sessions: a new one ends the least recently active', async () => {
    const h = setup({ store: store(), sessions: { maxPerUser: 3, refreshIntervalMs: 1000 } })
    const { t, user, session: a } = await signedIn(h)
    h.now += 1000
    const b = await signInAgain(h.engine, t)
    h.now += 1000
    const c = await signInAgain(h.engine, t)
    h.now += 1000
    await h.engine.validateSession(a.token.reveal()) // a is now the most recently active
    h.now += 1000
    const d = await signInAgain(h.engine, t)
    assert.deepEqual(
      (await h.engine.listSessions(t, user.id)).map((s) => s.id).sort(),
      [a.id, c.id, d.id].sort(),
    )
    await rejectsWith(h.engine.validateSession(b.token.reveal()), 'INVALID_TOKEN')
    const last = (await h.store.outbox.listForAggregate(t, user.id)).at(-1)
    assert.deepEqual(last?.payload, { userId: user.id, reason: 'session_limit', sessionIds: [b.id] })
  })

  test("a suspended tenant's sessions stop validating and work again once it is reactivated", async () => {
    const h = setup({ store: store() })
    const { t, session } = await signedIn(h)
    await h.engine.suspendTenant(t)
    await rejectsWith(h.engine.validateSession(session.token.reveal()), 'INVALID_TOKEN')
    await h.engine.reactivateTenant(t)
    assert.equal((await h.engine.validateSession(session.token.reveal())).id, session.id)
  })

  test('concurrent validations that are all due write once; a revoke racing a refresh wins', async () => {
    const h = setup({ store: store() })
    const { t, user, session } = await signedIn(h)
    h.now += 2 * HOUR
    const results = await Promise.all(
      Array.from({ length: 8 }, () => h.engine.validateSession(session.token.reveal())),
    )
    assert.ok(results.every((r) => r.lastSeenAt === new Date(h.now).toISOString()))
    const stored = await h.store.findSession(t, session.id)
    assert.equal(stored?.session.version, 2, 'one refresh committed')
    h.now += 2 * HOUR
    const [validated, revoked] = await Promise.allSettled([
      h.engine.validateSession(session.token.reveal()),
      h.engine.revokeAllSessions(t, user.id),
    ])
    assert.equal(revoked.status, 'fulfilled')
    assert.ok(
      validated.status === 'fulfilled' || (validated.reason as { code?: string }).code === 'INVALID_TOKEN',
      'the validation either ran before the revoke or is refused',
    )
    await rejectsWith(h.engine.validateSession(session.token.reveal()), 'INVALID_TOKEN')
  })

  test('createSession for a service-side sign-in; purgeExpired deletes only expired sessions', async () => {
    const h = setup({ store: store(), sessions: { idleTtlMs: HOUR, refreshIntervalMs: 60_000 } })
    const { t, user } = await signedIn(h)
    const external = await h.engine.createSession(t, user.id, { methods: ['external'] })
    assert.deepEqual(external.methods, ['external'])
    await rejectsWith(
      // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
      h.engine.createSession(t, user.id, { methods: ['sso'] as any }),
      'VALIDATION',
    )
    await rejectsWith(h.engine.createSession(t, user.id, { methods: ['password', 'password'] }), 'VALIDATION')
    h.now += 2 * HOUR
    // Another user's session, created now, is live (a user's own new session drops their expired ones).
    const bob = await h.engine.registerUser(t, { email: 'bob@example.com', password: PASSWORD })
    const live = await signInAgain(h.engine, t, 'bob@example.com')
    const before = (await h.store.diagnostics()).counts.sessions!
    const purged = await h.engine.purgeExpired({ batchSize: 1 })
    assert.ok(
      purged.sessions >= 2 && purged.complete && purged.batches > purged.tenants,
      JSON.stringify(purged),
    )
    assert.equal((await h.store.diagnostics()).counts.sessions, before - purged.sessions)
    assert.deepEqual(await h.engine.listSessions(t, user.id), [])
    assert.deepEqual(
      (await h.engine.listSessions(t, bob.id)).map((s) => s.id),
      [live.id],
    )
    await h.engine.validateSession(live.token.reveal())
  })
})

async function signedInVersion(h: Harness, t: string, u: string) {
  // The user as the sign-in left it: registered (1), then the session's commit (2).
  const user = await h.store.getUser(t, u)
  assert.equal(user?.version, 2)
  return user
}

test('session options are checked up front', () => {
  const bad: Record<string, unknown>[] = [
    { idleTtlMs: 10 },
    { idleTtlMs: 40 * DAY },
    { refreshIntervalMs: 7 * DAY },
    // A refresh at every request would let a session's holder keep its revocation from committing.
    { refreshIntervalMs: 0 },
    { refreshIntervalMs: 999 },
    { maxPerUser: 0 },
    { revokeOnEmailChange: 'yes' },
    { lifetime: 1 },
  ]
  for (const sessions of bad) {
    assert.throws(
      () => setup({ sessions: sessions as never }),
      { code: 'VALIDATION' },
      JSON.stringify(sessions),
    )
  }
  assert.throws(() => setup({ tokens: { passwordResetTtlMs: 1 } }), { code: 'VALIDATION' })
})

test('createExpiryPurger runs a pass at once and one per interval until stopped', async () => {
  const { createExpiryPurger } = await import('../../src/engine/maintenance.js')
  const h = setup({ sessions: { idleTtlMs: HOUR, refreshIntervalMs: 60_000 } })
  const { t, user } = await signedIn(h)
  // The session expired an hour after the test clock's T0 (2024); the purger judges by the real time.
  const passes: { sessions: number }[] = []
  const errors: unknown[] = []
  const purger = createExpiryPurger({
    store: h.store,
    intervalMs: 10,
    onPass: (result, error) => (result ? passes.push(result) : errors.push(error)),
  })
  purger.start()
  while (passes.length < 3) await new Promise((resolve) => setTimeout(resolve, 5))
  await purger.stop()
  const after = passes.length
  await new Promise((resolve) => setTimeout(resolve, 40))
  assert.equal(passes.length, after, 'no pass after stop()')
  assert.deepEqual(errors, [])
  assert.equal(passes[0]?.sessions, 1)
  assert.ok(passes.slice(1).every((p) => p.sessions === 0))
  assert.deepEqual(await h.engine.listSessions(t, user.id), [])
  assert.throws(() => createExpiryPurger({ store: h.store, intervalMs: 1 }), { code: 'VALIDATION' })
})

test('purgeExpired refuses what is not a store, and a now past the year 9999 names now', async () => {
  const { purgeExpired } = await import('../../src/engine/maintenance.js')
  const h = setup()
  for (const notAStore of [{}, null, { purgeExpired: () => {} }]) {
    await assert.rejects(purgeExpired(notAStore as never), {
      code: 'VALIDATION',
      details: { field: 'store' },
    })
  }
  await assert.rejects(purgeExpired(h.store, { now: 8.64e15 }), {
    code: 'VALIDATION',
    details: { field: 'now' },
  })
})
