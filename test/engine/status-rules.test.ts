import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { UserEngine } from '../../src/engine/index.js'
import { STATUS_RULES, type StatusOutcome, type UserUseCase } from '../../src/engine/status-rules.js'
import { codeFor, forEachStore, type Harness, setup } from './support.js'

interface Subject {
  readonly t: string
  readonly u: string
  readonly code: string
  readonly recoveryCode: string
  readonly factorId: string
  /** Tokens issued while the user was active, before the condition was applied. */
  readonly session: { readonly id: string; readonly token: string }
  readonly challenge: string
  readonly verification: string
  readonly reset: string
  readonly emailChange: string
  readonly magicLink: string
}

const PASSWORD = 'correct horse'

/** Each use case called on the subject user; checks resolve to their boolean, changes to their record. */
const CALLS: Record<UserUseCase, (e: UserEngine, s: Subject) => Promise<unknown>> = {
  registerUser: (e, s) => e.registerUser(s.t, { email: 'new.user@example.com' }),
  getUser: (e, s) => e.getUser(s.t, s.u),
  getUserDetails: (e, s) => e.getUserDetails(s.t, s.u),
  getProfile: (e, s) => e.getProfile(s.t, s.u),
  listFactors: (e, s) => e.listFactors(s.t, s.u),
  updateProfile: (e, s) => e.updateProfile(s.t, s.u, { plan: 'pro' }),
  changeEmail: (e, s) => e.changeEmail(s.t, s.u, 'changed@example.com'),
  setUsername: (e, s) => e.setUsername(s.t, s.u, 'renamed'),
  removeUsername: (e, s) => e.removeUsername(s.t, s.u),
  setPassword: (e, s) => e.setPassword(s.t, s.u, 'another password'),
  enrollTotp: (e, s) => e.enrollTotp(s.t, s.u),
  generateRecoveryCodes: (e, s) => e.generateRecoveryCodes(s.t, s.u),
  removeFactor: (e, s) => e.removeFactor(s.t, s.u, s.factorId),
  authenticate: (e, s) => e.authenticate(s.t, { username: 'subject', password: PASSWORD }),
  verifyPassword: (e, s) => e.verifyPassword(s.t, { userId: s.u }, PASSWORD),
  verifyTotp: (e, s) => e.verifyTotp(s.t, s.u, s.code),
  consumeRecoveryCode: (e, s) => e.consumeRecoveryCode(s.t, s.u, s.recoveryCode),
  disableUser: (e, s) => e.disableUser(s.t, s.u),
  enableUser: (e, s) => e.enableUser(s.t, s.u),
  deleteUser: (e, s) => e.deleteUser(s.t, s.u),
  createSession: (e, s) => e.createSession(s.t, s.u),
  validateSession: (e, s) => e.validateSession(s.session.token),
  listSessions: (e, s) => e.listSessions(s.t, s.u),
  revokeSession: (e, s) => e.revokeSession(s.t, s.u, s.session.id),
  revokeAllSessions: (e, s) => e.revokeAllSessions(s.t, s.u),
  signOut: (e, s) => e.signOut(s.session.token),
  completeSignIn: (e, s) => e.completeSignIn(s.challenge, { recoveryCode: s.recoveryCode }),
  issueEmailVerification: (e, s) => e.issueEmailVerification(s.t, s.u),
  verifyEmail: (e, s) => e.verifyEmail(s.verification),
  requestPasswordReset: (e, s) => e.requestPasswordReset(s.t, { email: 'subject@example.com' }),
  resetPassword: (e, s) => e.resetPassword(s.reset, 'a new password'),
  requestEmailChange: (e, s) => e.requestEmailChange(s.t, s.u, 'moving@example.com'),
  confirmEmailChange: (e, s) => e.confirmEmailChange(s.emailChange),
  requestMagicLink: (e, s) => e.requestMagicLink(s.t, { email: 'subject@example.com' }),
  signInWithMagicLink: (e, s) => e.signInWithMagicLink(s.magicLink),
}

/** What a refused use case answers: a check false, a request null, a sign-in or a token use an error code. */
const REFUSAL: Partial<Record<UserUseCase, { code: string } | { value: unknown }>> = {
  authenticate: { code: 'INVALID_CREDENTIALS' },
  validateSession: { code: 'INVALID_TOKEN' },
  completeSignIn: { code: 'INVALID_TOKEN' },
  verifyEmail: { code: 'INVALID_TOKEN' },
  resetPassword: { code: 'INVALID_TOKEN' },
  confirmEmailChange: { code: 'INVALID_TOKEN' },
  signInWithMagicLink: { code: 'INVALID_TOKEN' },
  requestPasswordReset: { value: null },
  requestMagicLink: { value: null },
}

const CONDITIONS = ['disabledUser', 'deletedUser', 'suspendedTenant'] as const

/** A user with every factor and a username, then put into `condition`. */
async function subject(h: Harness, condition: (typeof CONDITIONS)[number]): Promise<Subject> {
  const e = h.engine
  const t = (await e.createTenant('Status')).id
  const u = (await e.registerUser(t, { email: 'subject@example.com', password: PASSWORD })).id
  await e.setUsername(t, u, 'subject')
  const { uri } = await e.enrollTotp(t, u)
  assert.equal(await e.verifyTotp(t, u, codeFor(uri, h.now)), true)
  const { codes } = await e.generateRecoveryCodes(t, u)
  const factorId = (await e.listFactors(t, u)).find((f) => f.kind === 'totp')!.id
  h.now += 30_000
  const signedIn = await e.createSession(t, u)
  const first = await e.authenticate(t, { username: 'subject', password: PASSWORD })
  assert.equal(first.status, 'second_factor_required')
  const reveal = (issued: { token: { reveal(): string } } | null) => issued!.token.reveal()
  const s = {
    t,
    u,
    code: codeFor(uri, h.now),
    recoveryCode: codes[0]!,
    factorId,
    session: { id: signedIn.id, token: signedIn.token.reveal() },
    challenge: first.status === 'second_factor_required' ? first.challenge.token.reveal() : '',
    verification: reveal(await e.issueEmailVerification(t, u)),
    reset: reveal(await e.requestPasswordReset(t, { username: 'subject' })),
    emailChange: reveal(await e.requestEmailChange(t, u, 'elsewhere@example.com')),
    magicLink: reveal(await e.requestMagicLink(t, { email: 'subject@example.com' })),
  }
  if (condition === 'disabledUser') await e.disableUser(t, u)
  if (condition === 'deletedUser') await e.deleteUser(t, u)
  if (condition === 'suspendedTenant') await e.suspendTenant(t)
  return s
}

/** What a refused or no-op call must leave as it was: the user record and the tenant's audit trail. */
async function state(h: Harness, s: Subject) {
  return { user: await h.store.getUser(s.t, s.u), tenant: await h.store.getTenant(s.t) }
}

async function expectOutcome(h: Harness, useCase: UserUseCase, s: Subject, outcome: StatusOutcome) {
  const before = await state(h, s)
  const settled = await CALLS[useCase](h.engine, s).then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error: error as { code?: string } }),
  )
  const what = `${useCase}: expected ${outcome}`
  if (outcome === 'allowed') {
    assert.ok(settled.ok, `${what}, got ${settled.ok ? '' : settled.error.code}`)
    if (typeof settled.value === 'boolean') assert.equal(settled.value, true, what)
  } else if (outcome === 'refused') {
    const refusal = REFUSAL[useCase] ?? { value: false }
    if ('code' in refusal) assert.equal(settled.ok ? 'ok' : settled.error.code, refusal.code, what)
    else assert.deepEqual(settled, { ok: true, value: refusal.value }, what)
    assert.deepEqual(await state(h, s), before, `${what}: nothing changed`)
  } else if (outcome === 'no-op') {
    assert.ok(settled.ok, what)
    assert.deepEqual(await state(h, s), before, `${what}: nothing changed`)
  } else {
    assert.equal(settled.ok ? 'ok' : settled.error.code, outcome, what)
    assert.deepEqual(await state(h, s), before, `${what}: nothing changed`)
  }
}

await forEachStore('status rules (docs/status-rules.md)', ({ store }) => {
  for (const condition of CONDITIONS) {
    test(`every use case on a ${condition.replace(/([A-Z])/, ' $1').toLowerCase()}`, async () => {
      for (const useCase of Object.keys(STATUS_RULES) as UserUseCase[]) {
        const outcome: StatusOutcome = STATUS_RULES[useCase][condition]
        if (outcome === 'n/a') continue
        const h = setup({ store: store() })
        await expectOutcome(h, useCase, await subject(h, condition), outcome)
      }
    })
  }
})

test('docs/status-rules.md shows STATUS_RULES exactly', async () => {
  const { readFileSync } = await import('node:fs')
  const { statusRulesTable } = await import('../../src/engine/status-rules.js')
  assert.ok(
    readFileSync('docs/status-rules.md', 'utf8').includes(statusRulesTable()),
    'run npx tsx scripts/status-rules-doc.ts',
  )
})
