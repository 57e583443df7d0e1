import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { AuditRecord } from '../../src/domain/records.js'
import type { RequestContext, UserEngine } from '../../src/engine/index.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { codeFor, forEachStore, rejectsWith, setup, snapshot } from './support.js'

const ACTOR = 'adm_7'
const context = (n: number): RequestContext => ({
  actorId: ACTOR,
  requestId: `req-${n}`,
  ip: '198.51.100.23',
  userAgent: 'Mozilla/5.0 (Macintosh) Safari/605.1.15',
})

/** The tenant's audit records after the first `from`. */
async function auditFrom(store: UserEngineStore, tenantId: string, from: number): Promise<AuditRecord[]> {
  return (await store.listAudit(tenantId, { limit: 500 })).items.slice(from)
}

/**
 * Every mutating use case, in an order that works: each takes the context as its last argument. Returns the
 * number of audit records each appended, by name, and checks them.
 */
async function everyUseCase(
  engine: UserEngine,
  store: UserEngineStore,
  now: () => number,
  check: (name: string, records: AuditRecord[], n: number) => void,
): Promise<string[]> {
  let n = 0
  const tenant = await engine.createTenant('Acme', context(++n))
  const t = tenant.id
  check('createTenant', await auditFrom(store, t, 0), n)
  let seen = 1
  const names: string[] = ['createTenant']
  const step = async (name: string, run: (ctx: RequestContext) => Promise<unknown>) => {
    await run(context(++n))
    const records = await auditFrom(store, t, seen)
    seen += records.length
    names.push(name)
    check(name, records, n)
  }
  let userId = ''
  await step('registerUser', async (c) => {
    userId = (await engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' }, c)).id
  })
  await step('updateProfile', (c) => engine.updateProfile(t, userId, { name: 'Ann' }, {}, c))
  await step('changeEmail', (c) => engine.changeEmail(t, userId, 'ann2@example.com', c))
  await step('setUsername', (c) => engine.setUsername(t, userId, 'ann', c))
  await step('removeUsername', (c) => engine.removeUsername(t, userId, c))
  await step('setPassword', (c) => engine.setPassword(t, userId, 'another horse', c))
  await step('authenticate', (c) =>
    engine.authenticate(t, { email: 'ann2@example.com', password: 'another horse' }, c),
  )
  await step('authenticate (refused)', (c) =>
    rejectsWith(
      engine.authenticate(t, { email: 'ann2@example.com', password: 'wrong horse' }, c),
      'INVALID_CREDENTIALS',
    ),
  )
  await step('verifyPassword', (c) => engine.verifyPassword(t, { userId }, 'another horse', c))
  let uri = ''
  let totpId = ''
  await step('enrollTotp', async (c) => {
    const enrollment = await engine.enrollTotp(t, userId, {}, c)
    uri = enrollment.uri
    totpId = enrollment.factorId
  })
  await step('verifyTotp', (c) => engine.verifyTotp(t, userId, codeFor(uri, now()), c))
  let codes: readonly string[] = []
  await step('generateRecoveryCodes', async (c) => {
    codes = (await engine.generateRecoveryCodes(t, userId, c)).codes
  })
  await step('consumeRecoveryCode', (c) => engine.consumeRecoveryCode(t, userId, codes[0]!, c))
  await step('consumeRecoveryCode (refused)', (c) => engine.consumeRecoveryCode(t, userId, codes[0]!, c))
  let challenge = ''
  await step('authenticate (challenge)', async (c) => {
    const first = await engine.authenticate(t, { email: 'ann2@example.com', password: 'another horse' }, c)
    challenge = first.status === 'second_factor_required' ? first.challenge.token.reveal() : ''
  })
  await step('completeSignIn', (c) => engine.completeSignIn(challenge, { recoveryCode: codes[1]! }, c))
  await step('removeFactor', (c) => engine.removeFactor(t, userId, totpId, c))
  await step('renameTenant', (c) => engine.renameTenant(t, 'Acme Ltd', c))
  await step('suspendTenant', (c) => engine.suspendTenant(t, c))
  await step('reactivateTenant', (c) => engine.reactivateTenant(t, c))
  let session = { id: '', token: '' }
  await step('createSession', async (c) => {
    const created = await engine.createSession(t, userId, {}, c)
    session = { id: created.id, token: created.token.reveal() }
  })
  await step('revokeSession', (c) => engine.revokeSession(t, userId, session.id, c))
  await step('signOut', async (c) => {
    const signedIn = await engine.createSession(t, userId, {}, c)
    await engine.signOut(signedIn.token.reveal(), c)
  })
  await step('revokeAllSessions', async (c) => {
    await engine.createSession(t, userId, {}, c)
    await engine.revokeAllSessions(t, userId, {}, c)
  })
  let token = ''
  await step('issueEmailVerification', async (c) => {
    token = (await engine.issueEmailVerification(t, userId, c)).token.reveal()
  })
  await step('verifyEmail', (c) => engine.verifyEmail(token, c))
  await step('requestPasswordReset', async (c) => {
    token = (await engine.requestPasswordReset(t, { email: 'ann2@example.com' }, c))!.token.reveal()
  })
  await step('resetPassword', (c) => engine.resetPassword(token, 'third horse', c))
  await step('requestEmailChange', async (c) => {
    token = (await engine.requestEmailChange(t, userId, 'ann3@example.com', c)).token.reveal()
  })
  await step('confirmEmailChange', (c) => engine.confirmEmailChange(token, c))
  await step('requestMagicLink', async (c) => {
    token = (await engine.requestMagicLink(t, { email: 'ann3@example.com' }, c))!.token.reveal()
  })
  await step('signInWithMagicLink', (c) => engine.signInWithMagicLink(token, c))
  await step('disableUser', (c) => engine.disableUser(t, userId, c))
  await step('enableUser', (c) => engine.enableUser(t, userId, c))
  await step('deleteUser', (c) => engine.deleteUser(t, userId, c))
  return names
}

await forEachStore('request context', ({ store }) => {
  test('every mutating use case records the actor and request id in each of its audit records', async () => {
    const h = setup({ store: store() })
    const names = await everyUseCase(
      h.engine,
      store(),
      () => h.now,
      (name, records, n) => {
        assert.ok(records.length >= 1, `${name} appended no audit record`)
        for (const r of records) {
          assert.deepEqual(
            [r.actorId, r.requestId, r.ip, r.userAgent],
            [ACTOR, `req-${n}`, null, null],
            `${name}: ${r.action} (client info is dropped without recordClientInfo)`,
          )
        }
      },
    )
    assert.equal(names.length, 36)
  })

  test('with recordClientInfo the IP and user agent are recorded too', async () => {
    const h = setup({ store: store(), recordClientInfo: true })
    await everyUseCase(
      h.engine,
      store(),
      () => h.now,
      (name, records, n) => {
        for (const r of records) {
          assert.deepEqual(
            [r.actorId, r.requestId, r.ip, r.userAgent],
            [ACTOR, `req-${n}`, context(n).ip, context(n).userAgent],
            `${name}: ${r.action}`,
          )
        }
      },
    )
  })

  test('a long user agent is cut to 512 characters, never inside a surrogate pair; no context records nulls', async () => {
    const h = setup({ store: store(), recordClientInfo: true })
    const t = (await h.engine.createTenant('Acme')).id
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com' }, { userAgent: 'a'.repeat(2000) })
    await h.engine.disableUser(t, ann.id, { userAgent: `${'b'.repeat(511)}\u{1F600}tail` })
    await h.engine.enableUser(t, ann.id, { ip: '::1' })
    await h.engine.disableUser(t, ann.id)
    const [created, registered, disabled, enabled, plain] = (await store().listAudit(t)).items
    assert.deepEqual(
      [created?.actorId, created?.requestId, created?.ip, created?.userAgent],
      [null, null, null, null],
    )
    assert.equal(registered?.userAgent, 'a'.repeat(512))
    assert.equal(disabled?.userAgent, 'b'.repeat(511))
    assert.deepEqual([enabled?.ip, enabled?.userAgent], ['::1', null])
    assert.deepEqual([plain?.actorId, plain?.requestId, plain?.ip], [null, null, null])
  })

  test('a malformed context is VALIDATION before anything is written, and its value is not echoed', async () => {
    const h = setup({ store: store() })
    const t = (await h.engine.createTenant('Acme')).id
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com' })
    const before = await snapshot(store(), t)
    const secret = 'Hunter2-Secret-Value'
    const bad: unknown[] = [
      null,
      [],
      'adm_1',
      { actorId: `${secret} x` },
      { actorId: 'a'.repeat(65) },
      { requestId: `${secret}/1` },
      { ip: secret },
      { ip: '300.1.1.1' },
      { userAgent: 42 },
      { userAgent: `${secret}\u0000` },
      { userAgent: `${secret}\uD800` },
      { tenant: secret },
      { actorId: 7 },
    ]
    for (const c of bad) {
      const error = await rejectsWith(h.engine.disableUser(t, ann.id, c as RequestContext), 'VALIDATION')
      assert.ok(!JSON.stringify({ message: error.message, error }).includes(secret), 'the value was echoed')
      await rejectsWith(h.engine.createTenant('Other', c as RequestContext), 'VALIDATION')
    }
    assert.deepEqual(await snapshot(store(), t), before)
    assert.equal((await h.engine.getUser(t, ann.id)).status, 'active')
    // An ip is checked even when it would not be recorded.
    assert.throws(() => setup({ store: store(), recordClientInfo: 'yes' as unknown as boolean }), {
      code: 'VALIDATION',
    })
  })
})
