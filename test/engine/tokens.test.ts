import assert from 'node:assert/strict'
import { test } from 'node:test'
import { throttleKey } from '../../src/engine/attempt-throttle.js'
import type { IssuedToken, NewSession, SignInResult, UserEngine } from '../../src/engine/index.js'
import type { UserEngineStore } from '../../src/store/store.js'
import type { UnitOfWork } from '../../src/store/unit-of-work.js'
import { barrier } from '../../src/testing/shared/barrier.js'
import { codeFor, forEachStore, type Harness, rejectsWith, setup, tracing } from './support.js'

const PASSWORD = 'correct horse battery'
const MINUTE = 60_000

const reveal = (issued: IssuedToken | null): string => {
  assert.ok(issued, 'a token was issued')
  return issued.token.reveal()
}

function sessionOf(result: SignInResult | { status: 'signed_in'; session: NewSession }): NewSession {
  assert.equal(result.status, 'signed_in')
  return (result as { session: NewSession }).session
}

async function account(h: Harness, email = 'ann@example.com') {
  const t = (await h.engine.createTenant('Acme')).id
  const user = await h.engine.registerUser(t, { email, password: PASSWORD })
  return { t, user }
}

/** A user with a confirmed TOTP factor and recovery codes; the clock moved past the confirming step. */
async function withSecondFactor(h: Harness) {
  const { t, user } = await account(h)
  const { uri } = await h.engine.enrollTotp(t, user.id)
  assert.equal(await h.engine.verifyTotp(t, user.id, codeFor(uri, h.now)), true)
  const { codes } = await h.engine.generateRecoveryCodes(t, user.id)
  h.now += 30_000
  return { t, user, uri, codes }
}

async function challengeFor(e: UserEngine, t: string): Promise<string> {
  const first = await e.authenticate(t, { email: 'ann@example.com', password: PASSWORD })
  assert.equal(first.status, 'second_factor_required')
  return first.status === 'second_factor_required' ? first.challenge.token.reveal() : ''
}

/** 16 calls at once (spread over two stores where the server gives a second pool); returns their outcomes. */
async function race(
  engines: readonly UserEngine[],
  call: (e: UserEngine) => Promise<unknown>,
): Promise<{ ok: number; codes: string[] }> {
  const ready = barrier(16)
  const settled = await Promise.allSettled(
    Array.from({ length: 16 }, async (_, i) => {
      await ready()
      return call(engines[i % engines.length]!)
    }),
  )
  const codes = settled
    .filter((s): s is PromiseRejectedResult => s.status === 'rejected')
    .map((s) => (s.reason as { code?: string }).code ?? String(s.reason))
  return { ok: settled.length - codes.length, codes }
}

/**
 * `store` with each unit's first `listFactors` held until `hold()` resolves: where a racing unit's commit lands
 * between two reads of one unit. Methods are bound to the store (the Postgres store keeps private fields).
 */
function pausingFactorReads(store: UserEngineStore, hold: () => Promise<void>): UserEngineStore {
  let held = false
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (prop !== 'transaction') return typeof value === 'function' ? value.bind(target) : value
      return (tenantId: string, fn: (tx: UnitOfWork) => Promise<unknown>) =>
        target.transaction(tenantId, (tx) =>
          fn(
            new Proxy(tx, {
              get(t, p) {
                const v = Reflect.get(t, p, t)
                if (p !== 'listFactors' || held) return typeof v === 'function' ? v.bind(t) : v
                return async (userId: string) => {
                  held = true
                  await hold()
                  return t.listFactors(userId)
                }
              },
            }),
          ),
        )
    },
  })
}

await forEachStore('single-use tokens', ({ store, open }) => {
  test('email verification: the token verifies the email once; a token for a changed email is refused', async () => {
    const h = setup({ store: store() })
    const { t, user } = await account(h)
    const issued = await h.engine.issueEmailVerification(t, user.id)
    assert.deepEqual([issued.purpose, issued.userId, issued.tenantId], ['email_verification', user.id, t])
    assert.equal(issued.expiresAt, new Date(h.now + 24 * 60 * MINUTE).toISOString())
    await h.engine.verifyEmail(issued.token.reveal())
    const email = await h.store.getIdentifier(t, 'email', 'ann@example.com')
    assert.equal(email?.verified, true)
    await rejectsWith(h.engine.verifyEmail(issued.token.reveal()), 'INVALID_TOKEN')

    const stale = await h.engine.issueEmailVerification(t, user.id)
    await h.engine.changeEmail(t, user.id, 'ann.other@example.com')
    await rejectsWith(h.engine.verifyEmail(stale.token.reveal()), 'INVALID_TOKEN')
    assert.equal((await h.store.getIdentifier(t, 'email', 'ann.other@example.com'))?.verified, false)
    const events = (await h.store.outbox.listForAggregate(t, user.id)).map((e) => e.type)
    assert.deepEqual(events.slice(0, 4), [
      'user.registered',
      'user.token_issued',
      'user.token_consumed',
      'user.email_verified',
    ])
  })

  test('password reset: the newest token only; consumed with the new password and the end of every session', async () => {
    const h = setup({ store: store() })
    const { t, user } = await account(h)
    const session = sessionOf(
      await h.engine.authenticate(t, { email: 'ann@example.com', password: PASSWORD }),
    )
    const other = sessionOf(await h.engine.authenticate(t, { email: 'ann@example.com', password: PASSWORD }))
    const older = reveal(await h.engine.requestPasswordReset(t, { email: 'ANN@example.com' }))
    const newer = reveal(await h.engine.requestPasswordReset(t, { email: 'ann@example.com' }))
    assert.equal(await h.engine.requestPasswordReset(t, { email: 'nobody@example.com' }), null)
    await rejectsWith(h.engine.resetPassword(older, 'brand new password'), 'INVALID_TOKEN')
    await rejectsWith(h.engine.resetPassword(newer, 'short'), 'VALIDATION')
    await h.engine.resetPassword(newer, 'brand new password')
    await rejectsWith(h.engine.resetPassword(newer, 'another new password'), 'INVALID_TOKEN')
    for (const s of [session, other])
      await rejectsWith(h.engine.validateSession(s.token.reveal()), 'INVALID_TOKEN')
    await rejectsWith(
      h.engine.authenticate(t, { email: 'ann@example.com', password: PASSWORD }),
      'INVALID_CREDENTIALS',
    )
    sessionOf(await h.engine.authenticate(t, { email: 'ann@example.com', password: 'brand new password' }))
    const last = (await h.store.outbox.listForAggregate(t, user.id)).filter(
      (e) => e.type !== 'user.session_created',
    )
    assert.deepEqual(
      last.slice(-3).map((e) => [e.type, e.position]),
      [
        ['user.token_consumed', 0],
        ['user.password_set', 1],
        ['user.sessions_revoked', 2],
      ],
      'one commit: token consumed, password set, sessions revoked',
    )
    assert.deepEqual(last.at(-1)?.payload.sessionIds, [session.id, other.id])
  })

  test('a reset clears the lockout its user built up', async () => {
    const h = setup({ store: store(), throttle: { lockAfter: 2 } })
    const { t } = await account(h)
    for (let i = 0; i < 2; i++) {
      await rejectsWith(
        h.engine.authenticate(t, { email: 'ann@example.com', password: 'wrong horse' }),
        'INVALID_CREDENTIALS',
      )
    }
    await rejectsWith(h.engine.authenticate(t, { email: 'ann@example.com', password: PASSWORD }), 'THROTTLED')
    await h.engine.resetPassword(
      reveal(await h.engine.requestPasswordReset(t, { email: 'ann@example.com' })),
      'brand new password',
    )
    sessionOf(await h.engine.authenticate(t, { email: 'ann@example.com', password: 'brand new password' }))
  })

  test('email change: confirmed by the token sent to the new address; the old address stops signing in', async () => {
    const h = setup({ store: store() })
    const { t, user } = await account(h)
    await h.engine.registerUser(t, { email: 'taken@example.com' })
    await rejectsWith(h.engine.requestEmailChange(t, user.id, 'Taken@example.com'), 'DUPLICATE_IDENTIFIER')
    await rejectsWith(h.engine.requestEmailChange(t, user.id, 'ann@example.com'), 'VALIDATION')
    const session = sessionOf(
      await h.engine.authenticate(t, { email: 'ann@example.com', password: PASSWORD }),
    )
    const first = reveal(await h.engine.requestEmailChange(t, user.id, 'ann.first@example.com'))
    const change = reveal(await h.engine.requestEmailChange(t, user.id, 'Ann.New@example.com'))
    await rejectsWith(h.engine.confirmEmailChange(first), 'INVALID_TOKEN')
    await h.engine.confirmEmailChange(change)
    const email = await h.store.getIdentifier(t, 'email', 'ann.new@example.com')
    assert.deepEqual([email?.userId, email?.verified], [user.id, true])
    assert.equal(await h.store.getIdentifier(t, 'email', 'ann@example.com'), null)
    await rejectsWith(h.engine.validateSession(session.token.reveal()), 'INVALID_TOKEN')
    sessionOf(await h.engine.authenticate(t, { email: 'ann.new@example.com', password: PASSWORD }))
    // The new value taken meanwhile: DUPLICATE_IDENTIFIER, and the token stays unused.
    const again = reveal(await h.engine.requestEmailChange(t, user.id, 'race@example.com'))
    await h.engine.registerUser(t, { email: 'race@example.com' })
    await rejectsWith(h.engine.confirmEmailChange(again), 'DUPLICATE_IDENTIFIER')
    assert.equal((await h.store.diagnostics()).counts.tokens! >= 1, true)
  })

  test('a refused token request commits only a token.refused audit record, without the identifier', async () => {
    const h = setup({ store: store() })
    const { t, user } = await account(h)
    const other = await h.engine.registerUser(t, { email: 'bob@example.com' })
    await h.engine.disableUser(t, other.id)
    const before = await h.store.getUser(t, user.id)
    assert.equal(await h.engine.requestPasswordReset(t, { email: 'nobody@example.com' }), null)
    assert.equal(await h.engine.requestMagicLink(t, { email: 'bob@example.com' }), null)
    const audit = (await h.store.listAudit(t, { limit: 100 })).items
    const refused = audit.filter((a) => a.action === 'token.refused')
    assert.deepEqual(
      refused.map((a) => [a.userId, a.data]),
      [
        [null, { purpose: 'password_reset', reason: 'unknown_user' }],
        [other.id, { purpose: 'magic_link', reason: 'user_inactive' }],
      ],
    )
    assert.ok(!JSON.stringify(audit).includes('nobody'), 'the identifier asked for is not recorded')
    assert.deepEqual(await h.store.getUser(t, user.id), before)
    await h.engine.suspendTenant(t)
    assert.equal(await h.engine.requestPasswordReset(t, { email: 'ann@example.com' }), null)
    const last = (await h.store.listAudit(t, { limit: 100 })).items.at(-1)
    assert.deepEqual(
      [last?.action, last?.userId, last?.data],
      ['token.refused', user.id, { purpose: 'password_reset', reason: 'tenant_inactive' }],
    )
  })

  test('magic link: signs in and verifies the email; with a second factor it asks for it', async () => {
    const h = setup({ store: store() })
    const { t, user } = await account(h)
    assert.equal(await h.engine.requestMagicLink(t, { email: 'nobody@example.com' }), null)
    const link = reveal(await h.engine.requestMagicLink(t, { email: 'ann@example.com' }))
    const session = sessionOf(await h.engine.signInWithMagicLink(link))
    assert.deepEqual(session.methods, ['magic_link'])
    assert.equal((await h.store.getIdentifier(t, 'email', 'ann@example.com'))?.verified, true)
    await rejectsWith(h.engine.signInWithMagicLink(link), 'INVALID_TOKEN')

    const { uri } = await h.engine.enrollTotp(t, user.id)
    assert.equal(await h.engine.verifyTotp(t, user.id, codeFor(uri, h.now)), true)
    h.now += 30_000
    const next = await h.engine.signInWithMagicLink(
      reveal(await h.engine.requestMagicLink(t, { email: 'ann@example.com' })),
    )
    assert.equal(next.status, 'second_factor_required')
    if (next.status !== 'second_factor_required') return
    const done = await h.engine.completeSignIn(next.challenge.token.reveal(), { totp: codeFor(uri, h.now) })
    assert.deepEqual(done.session.methods, ['magic_link', 'totp'])
  })

  test('sign-in challenge: a TOTP or recovery code completes it once; a wrong code leaves it usable', async () => {
    const h = setup({ store: store(), throttle: { lockAfter: 3 } })
    const { t, user, uri, codes } = await withSecondFactor(h)
    const challenge = await challengeFor(h.engine, t)
    const wrong = await rejectsWith(
      h.engine.completeSignIn(challenge, { totp: '000000' }),
      'INVALID_CREDENTIALS',
    )
    // The step that failed, not the password step that already passed.
    assert.equal(wrong.message, 'the second-factor code is not valid')
    await rejectsWith(
      h.engine.completeSignIn(challenge, { recoveryCode: 'aaaaa-aaaaa' }),
      'INVALID_CREDENTIALS',
    )
    const done = await h.engine.completeSignIn(challenge, { totp: codeFor(uri, h.now) })
    assert.deepEqual(
      [done.status, done.user.id, done.session.methods],
      ['signed_in', user.id, ['password', 'totp']],
    )
    await h.engine.validateSession(done.session.token.reveal())
    await rejectsWith(h.engine.completeSignIn(challenge, { totp: codeFor(uri, h.now) }), 'INVALID_TOKEN')

    const second = await challengeFor(h.engine, t)
    const viaCode = await h.engine.completeSignIn(second, { recoveryCode: codes[0]! })
    assert.deepEqual(viaCode.session.methods, ['password', 'recovery_code'])
    const third = await challengeFor(h.engine, t)
    await rejectsWith(h.engine.completeSignIn(third, { recoveryCode: codes[0]! }), 'INVALID_CREDENTIALS')
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    await rejectsWith(h.engine.completeSignIn(third, { totp: '1', recoveryCode: '2' } as any), 'VALIDATION')
    // Failures lock the user out (THROTTLED) before any code is checked.
    for (let i = 0; i < 3; i++) {
      await h.engine.completeSignIn(third, { totp: '000000' }).catch(() => undefined)
    }
    await rejectsWith(h.engine.completeSignIn(third, { totp: codeFor(uri, h.now + 30_000) }), 'THROTTLED')
  })

  test('expired, used, unknown and wrong-purpose tokens: INVALID_TOKEN at the same cost', async () => {
    const h = setup({ store: store() })
    const { t, user } = await account(h)
    const used = reveal(await h.engine.issueEmailVerification(t, user.id))
    await h.engine.verifyEmail(used)
    const expired = reveal(await h.engine.issueEmailVerification(t, user.id))
    const wrongPurpose = reveal(await h.engine.requestPasswordReset(t, { email: 'ann@example.com' }))
    const [tenant, , secret] = used.split('.') as [string, string, string]
    const unknown = `${tenant}.tok_${'0'.repeat(32)}.${secret}`
    const forged = `${tenant}.${expired.split('.')[1]}.${secret}`
    h.now += 25 * 60 * MINUTE
    const traces: [string, string[]][] = []
    for (const [what, token] of Object.entries({ used, expired, wrongPurpose, unknown, forged })) {
      const traced = tracing(h.store)
      const engine = setup({ store: traced.store, clock: () => h.now }).engine
      await rejectsWith(engine.verifyEmail(token), 'INVALID_TOKEN')
      traces.push([what, traced.calls])
    }
    for (const [what, calls] of traces) {
      assert.deepEqual(
        calls,
        ['transaction', 'tx.getTenant', 'tx.getToken'],
        `${what}: the same reads, no write`,
      )
    }
    await rejectsWith(h.engine.verifyEmail(`${t}.nope`), 'INVALID_TOKEN')
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    await rejectsWith(h.engine.verifyEmail(null as any), 'VALIDATION')
  })

  test('at most tokens.maxPerUser outstanding tokens: issuing one more drops the oldest', async () => {
    const h = setup({ store: store(), tokens: { maxPerUser: 3 } })
    const { t, user } = await account(h)
    const tokens: string[] = []
    for (let i = 0; i < 5; i++) tokens.push(reveal(await h.engine.issueEmailVerification(t, user.id)))
    for (const old of tokens.slice(0, 2)) await rejectsWith(h.engine.verifyEmail(old), 'INVALID_TOKEN')
    const counts = (await h.store.diagnostics()).counts
    assert.ok(counts.tokens! >= 3)
    await h.engine.verifyEmail(tokens[4]!)
  })

  test('16 racing uses of one token: exactly one succeeds (reset, verification, challenge)', async () => {
    const second = await open()
    const h = setup({ store: store() })
    const other = setup({ store: second, clock: () => h.now, keyring: h.keyring }).engine
    const engines = [h.engine, other]
    const { t, user } = await account(h)

    const reset = reveal(await h.engine.requestPasswordReset(t, { email: 'ann@example.com' }))
    const resets = await race(engines, (e) => e.resetPassword(reset, 'raced new password'))
    assert.deepEqual([resets.ok, resets.codes], [1, Array(15).fill('INVALID_TOKEN')])

    const verification = reveal(await h.engine.issueEmailVerification(t, user.id))
    const verified = await race(engines, (e) => e.verifyEmail(verification))
    assert.deepEqual([verified.ok, verified.codes], [1, Array(15).fill('INVALID_TOKEN')])

    const { uri } = await h.engine.enrollTotp(t, user.id)
    assert.equal(await h.engine.verifyTotp(t, user.id, codeFor(uri, h.now)), true)
    h.now += 30_000
    const first = await h.engine.authenticate(t, { email: 'ann@example.com', password: 'raced new password' })
    assert.equal(first.status, 'second_factor_required')
    const challenge = first.status === 'second_factor_required' ? first.challenge.token.reveal() : ''
    const code = codeFor(uri, h.now)
    const completed = await race(engines, (e) => e.completeSignIn(challenge, { totp: code }))
    assert.deepEqual([completed.ok, completed.codes], [1, Array(15).fill('INVALID_TOKEN')])
    assert.equal((await h.engine.listSessions(t, user.id)).length, 1)
    // The losers wrote nothing: the user's commits are still one gap-free sequence of versions.
    const sequences = [...new Set((await h.store.outbox.listForAggregate(t, user.id)).map((e) => e.sequence))]
    const version = (await h.store.getUser(t, user.id))?.version ?? 0
    assert.deepEqual(
      sequences,
      Array.from({ length: version }, (_, i) => i + 1),
    )
  })

  test('a completion that read the challenge before a racing one committed and the factor after is INVALID_TOKEN', async () => {
    // Reads in a unit are not one snapshot. The loser's unit reads the challenge, then waits here before it
    // reads the factors until the winner has committed: it then sees its TOTP step used. That is a consumed
    // challenge (INVALID_TOKEN), not a wrong code counted on the user's throttle key.
    const h = setup({ store: store() })
    const { t, user, uri } = await withSecondFactor(h)
    let reached!: () => void
    const atFactors = new Promise<void>((resolve) => {
      reached = resolve
    })
    let open!: () => void
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const paused = pausingFactorReads(h.store, () => {
      reached()
      return gate
    })
    const loser = setup({ store: paused, clock: () => h.now, keyring: h.keyring }).engine
    const challenge = await challengeFor(h.engine, t)
    const code = codeFor(uri, h.now)
    const lost = loser.completeSignIn(challenge, { totp: code })
    lost.catch(() => undefined)
    await atFactors
    assert.equal((await h.engine.completeSignIn(challenge, { totp: code })).status, 'signed_in')
    open()
    await rejectsWith(lost, 'INVALID_TOKEN')
    const audit = (await h.store.listAudit(t, { limit: 100 })).items
    assert.deepEqual(
      audit.filter((a) => a.action === 'totp.rejected'),
      [],
    )
    // No failure was counted: a wrong code now is the first, not a lockout-bound second.
    const again = await challengeFor(h.engine, t)
    await rejectsWith(h.engine.completeSignIn(again, { totp: '000000' }), 'INVALID_CREDENTIALS')
    const [state] = await h.store.throttle.read(t, [throttleKey('user', user.id)])
    assert.equal(state?.failures, 1)
  })

  test('disabling a user drops their tokens; a suspended tenant refuses them until reactivated', async () => {
    const h = setup({ store: store() })
    const { t, user } = await account(h)
    const verification = reveal(await h.engine.issueEmailVerification(t, user.id))
    await h.engine.suspendTenant(t)
    await rejectsWith(h.engine.verifyEmail(verification), 'INVALID_TOKEN')
    await h.engine.reactivateTenant(t)
    const reset = reveal(await h.engine.requestPasswordReset(t, { email: 'ann@example.com' }))
    await h.engine.disableUser(t, user.id)
    await h.engine.enableUser(t, user.id)
    await rejectsWith(h.engine.verifyEmail(verification), 'INVALID_TOKEN')
    await rejectsWith(h.engine.resetPassword(reset, 'brand new password'), 'INVALID_TOKEN')
  })

  test('purgeExpired deletes expired tokens only', async () => {
    const h = setup({ store: store(), tokens: { magicLinkTtlMs: MINUTE } })
    const { t, user } = await account(h)
    await h.engine.requestMagicLink(t, { email: 'ann@example.com' })
    h.now += 2 * MINUTE
    const live = reveal(await h.engine.issueEmailVerification(t, user.id))
    // The issue above dropped the user's own expired token already; another user's stays for the purge.
    await h.engine.registerUser(t, { email: 'bob@example.com' })
    await h.engine.requestMagicLink(t, { email: 'bob@example.com' })
    h.now += 2 * MINUTE
    const purged = await h.engine.purgeExpired()
    assert.equal(purged.tokens, 1)
    await h.engine.verifyEmail(live)
  })
})

test('token lifetimes follow options.tokens', async () => {
  const h = setup({ tokens: { passwordResetTtlMs: 10 * MINUTE } })
  const { t } = await account(h)
  const issued = await h.engine.requestPasswordReset(t, { email: 'ann@example.com' })
  assert.equal(issued?.expiresAt, new Date(h.now + 10 * MINUTE).toISOString())
  h.now += 10 * MINUTE
  await rejectsWith(h.engine.resetPassword(reveal(issued), 'brand new password'), 'INVALID_TOKEN')
})
