import assert from 'node:assert/strict'
import { test } from 'node:test'
import { format, inspect } from 'node:util'
import { codeFor, setup } from './support.js'

const EMAIL = 'canary.mail.q7xv@example.com'
const NEW_EMAIL = 'canary.newmail.w2pd@example.com'
const PROFILE = 'CanaryProfileZ9kd'
const PASSWORD = 'CanaryPasswordK3mf'
const NEW_PASSWORD = 'CanaryPassword2Nnq'
const PERSONAL = [EMAIL, NEW_EMAIL, PROFILE, PASSWORD, NEW_PASSWORD]

function render(value: unknown): string {
  const json = JSON.stringify(value) ?? ''
  return `${json}\n${inspect(value, { depth: Number.POSITIVE_INFINITY, showHidden: true, getters: true })}`
}

function assertClean(label: string, value: unknown, canaries: readonly string[]): void {
  const text = render(value)
  for (const canary of canaries) {
    // Match the raw and the case-folded form: identifiers are stored lower-cased.
    assert.ok(!text.includes(canary) && !text.includes(canary.toLowerCase()), `${label} leaks ${canary}`)
  }
}

test('redaction canary: no secret or personal value in returns, errors, audit, outbox or diagnostics', async () => {
  const h = setup()
  const e = h.engine
  const returned: Array<[string, unknown, readonly string[]]> = []
  // `allowed` is what the caller asked for in that call, and may appear in its result only.
  const keep = <T>(label: string, value: T, ...allowed: string[]): T => {
    returned.push([label, value, allowed])
    return value
  }
  const errors: unknown[] = []
  const fail = async (p: Promise<unknown>) => {
    try {
      await p
      assert.fail('expected a rejection')
    } catch (error) {
      errors.push(error)
    }
  }

  const tenant = keep('createTenant', await e.createTenant('Canary Tenant'))
  const t = tenant.id
  const user = keep(
    'registerUser',
    await e.registerUser(t, { email: EMAIL, password: PASSWORD, profile: { displayName: PROFILE, age: 33 } }),
  )
  const u = user.id
  keep('getUser', await e.getUser(t, u))
  keep('findUserByEmail', await e.findUserByEmail(t, EMAIL.toUpperCase()))
  keep('listUsers', await e.listUsers(t))
  keep('getProfile', await e.getProfile(t, u), PROFILE)
  keep('updateProfile', await e.updateProfile(t, u, { bio: `${PROFILE} bio` }), PROFILE)
  keep('verifyPassword', await e.verifyPassword(t, { email: EMAIL }, PASSWORD))
  keep('verifyPassword wrong', await e.verifyPassword(t, { email: EMAIL }, NEW_PASSWORD))
  keep('setPassword', await e.setPassword(t, u, NEW_PASSWORD))
  const enrollment = await e.enrollTotp(t, u)
  const seed = new URL(enrollment.uri).searchParams.get('secret')!
  assert.ok(seed.length >= 32)
  // The URI (the seed, and the email in its label) is read as `enrollment.uri`; the object never prints it.
  keep('enrollTotp', enrollment)
  keep('verifyTotp', await e.verifyTotp(t, u, codeFor(enrollment.uri, h.now)))
  const recovery = await e.generateRecoveryCodes(t, u)
  const codes = recovery.codes.flatMap((c) => [c, c.replace('-', '')])
  keep('generateRecoveryCodes', recovery)
  keep('consumeRecoveryCode', await e.consumeRecoveryCode(t, u, recovery.codes[0]!))
  keep('listFactors', await e.listFactors(t, u))
  // Sessions and single-use tokens: every token is a canary, never printed by anything returned.
  const tokens: string[] = []
  const issued = <T extends { token: { reveal(): string } }>(label: string, value: T): T => {
    tokens.push(value.token.reveal())
    return keep(label, value)
  }
  const first = keep('authenticate', await e.authenticate(t, { email: EMAIL, password: NEW_PASSWORD }))
  assert.equal(first.status, 'second_factor_required')
  if (first.status !== 'second_factor_required') return
  issued('challenge', first.challenge)
  h.now += 30_000
  const done = keep(
    'completeSignIn',
    await e.completeSignIn(first.challenge.token.reveal(), { totp: codeFor(enrollment.uri, h.now) }),
  )
  issued('session', done.session)
  keep('validateSession', await e.validateSession(done.session.token.reveal()))
  keep('listSessions', await e.listSessions(t, u))
  issued('createSession', await e.createSession(t, u))
  const verification = issued('issueEmailVerification', await e.issueEmailVerification(t, u))
  keep('verifyEmail', await e.verifyEmail(verification.token.reveal()))
  const reset = await e.requestPasswordReset(t, { email: EMAIL })
  issued('requestPasswordReset', reset!)
  await fail(e.resetPassword(reset!.token.reveal(), PASSWORD.slice(0, 3)))
  await fail(e.verifyEmail(reset!.token.reveal()))
  await fail(e.validateSession(`${done.session.token.reveal()}x`))
  await fail(e.completeSignIn(first.challenge.token.reveal(), { totp: '000000' }))
  const link = await e.requestMagicLink(t, { email: EMAIL })
  issued('requestMagicLink', link!)
  const change = issued('requestEmailChange', await e.requestEmailChange(t, u, `x${NEW_EMAIL}`))
  keep('keyUsage', await e.keyUsage())
  keep('resealSeeds', await e.resealSeeds())
  keep('purgeExpired', await e.purgeExpired())
  keep('signOut', await e.signOut(done.session.token.reveal()))
  keep('revokeAllSessions', await e.revokeAllSessions(t, u))
  keep('resetPassword', await e.resetPassword(reset!.token.reveal(), NEW_PASSWORD))
  keep('confirmEmailChange', await e.confirmEmailChange(change.token.reveal()))
  await fail(e.confirmEmailChange(change.token.reveal()))
  keep('changeEmail', await e.changeEmail(t, u, NEW_EMAIL))
  keep('disableUser', await e.disableUser(t, u))
  keep('enableUser', await e.enableUser(t, u))

  const other = keep('registerUser other', await e.registerUser(t, { email: EMAIL }))
  await fail(e.registerUser(t, { email: NEW_EMAIL.toUpperCase(), password: PASSWORD }))
  await fail(e.changeEmail(t, other.id, NEW_EMAIL))
  await fail(e.registerUser(t, { email: `${PROFILE}@@bad` }))
  await fail(e.registerUser(t, { email: 'x@example.com', password: PASSWORD.slice(0, 7) }))
  await fail(e.registerUser(t, { email: 'x@example.com', password: PASSWORD.repeat(20) }))
  await fail(
    e.registerUser(t, { email: 'x@example.com', profile: { [PROFILE]: 1 } as Record<string, number> }),
  )
  await fail(e.registerUser(t, { email: 'x@example.com', profile: { a: PROFILE.repeat(200) } }))
  await fail(e.updateProfile(t, u, { a: PROFILE }, { expectedVersion: 99 }))
  await fail(e.getUser(t, PROFILE.replace('Z', ' ')))
  await fail(e.enrollTotp(t, u))
  await fail(e.verifyTotp(t, u, PASSWORD.repeat(3)))
  keep('deleteUser', await e.deleteUser(t, u))

  assert.equal(tokens.length, 7)
  const everything = [
    ...PERSONAL,
    seed,
    ...codes,
    // A token and its secret part (what a log line would hold if it were cut at the dots).
    ...tokens.flatMap((token) => [token, token.split('.')[2]!]),
    ...Object.values(h.keyring.keys).map((k) => Buffer.from(k).toString('base64')),
  ]
  for (const [label, value, allowed] of returned) {
    assertClean(
      label,
      value,
      everything.filter((c) => !allowed.includes(c)),
    )
  }
  assert.equal(errors.length, 16)
  for (const error of errors) {
    assert.ok(
      typeof (error as { code?: unknown }).code === 'string',
      `a call that should fail did not: ${error}`,
    )
    assertClean(`error ${(error as Error).message}`, error, everything)
    assertClean('error message', (error as Error).message, everything)
    assertClean('error details', (error as { details?: unknown }).details, everything)
  }
  assertClean('audit', (await h.store.listAudit(t, { limit: 500 })).items, everything)
  assertClean('outbox', await h.store.outbox.listForAggregate(t, u), everything)
  assertClean('outbox other', await h.store.outbox.listForAggregate(t, other.id), everything)
  assertClean('diagnostics', await h.store.diagnostics(), everything)
  assertClean('engine', e, everything)
  assertClean('keyring', h.keyring, everything)
  // The stored factor records print their secret as [redacted].
  const factors = await h.store.transaction(t, (tx) => tx.listFactors(other.id))
  assertClean('factor records', factors, everything)
})

const oneLine = (text: string) => text.replace(/\s+/g, ' ')

/** Every way a whole result commonly reaches a log line or a response body. */
function printings(result: object): Array<[string, string]> {
  const spread = { ...result }
  return [
    ['JSON.stringify', JSON.stringify(result)],
    ['JSON.stringify nested', JSON.stringify({ msg: 'enrolled', result })],
    ['JSON.stringify of a spread', JSON.stringify({ msg: 'enrolled', ...result })],
    ['JSON.stringify of Object.assign', JSON.stringify(Object.assign({}, result))],
    ['JSON.stringify of a structured clone', JSON.stringify(structuredClone(result))],
    ['util.inspect', inspect(result)],
    ['util.inspect showHidden getters', inspect(result, { showHidden: true, getters: true, depth: null })],
    ['util.inspect nested', inspect({ result }, { depth: null })],
    ['util.inspect of a spread', inspect(spread, { showHidden: true, getters: true })],
    ['console.log (util.format)', format(result)],
    ['util.format %o', format('%o', result)],
    ['util.format %j', format('%j', result)],
    ['String', String(result)],
    ['Object.entries', JSON.stringify(Object.entries(result))],
  ]
}

test('redaction: the TOTP enrollment and the recovery codes print redacted, and read in full', async () => {
  const h = setup()
  const e = h.engine
  const { id: t } = await e.createTenant('Canary Tenant')
  const { id: u } = await e.registerUser(t, { email: EMAIL })

  const enrollment = await e.enrollTotp(t, u)
  const { uri, factorId } = enrollment
  // Reading the property is asking for the value: the plain otpauth string, the same on every read.
  assert.equal(typeof uri, 'string')
  assert.equal(enrollment.uri, uri)
  assert.match(uri, /^otpauth:\/\/totp\/.*canary\.mail\.q7xv%40example\.com\?/)
  const seed = new URL(uri).searchParams.get('secret')!
  assert.ok(seed.length >= 32)
  assert.equal(await e.verifyTotp(t, u, codeFor(enrollment.uri, h.now)), true)
  // What an object prints: the factor id, and [redacted] for the URI.
  assert.equal(JSON.stringify(enrollment), JSON.stringify({ factorId, uri: '[redacted]' }))
  assert.equal(oneLine(inspect(enrollment)), `{ factorId: '${factorId}', uri: Secret([redacted]) }`)
  // Keys, spread and clones hold the non-secret fields only.
  assert.deepEqual(Object.keys(enrollment), ['factorId'])
  assert.deepEqual({ ...enrollment }, { factorId })
  for (const [how, text] of printings(enrollment)) {
    for (const canary of [seed, uri, EMAIL.toLowerCase(), encodeURIComponent(EMAIL.toLowerCase())]) {
      assert.ok(!text.includes(canary), `${how} of the enrollment leaks ${canary}: ${text}`)
    }
  }

  const recovery = await e.generateRecoveryCodes(t, u)
  const { codes } = recovery
  assert.ok(Array.isArray(codes))
  assert.equal(codes.length, 10)
  assert.equal(recovery.codes, codes)
  for (const code of codes) assert.equal(typeof code, 'string')
  assert.equal(await e.consumeRecoveryCode(t, u, recovery.codes[0]!), true)
  assert.equal(JSON.stringify(recovery), JSON.stringify({ factorId: recovery.factorId, codes: '[redacted]' }))
  assert.equal(oneLine(inspect(recovery)), `{ factorId: '${recovery.factorId}', codes: Secret([redacted]) }`)
  assert.deepEqual(Object.keys(recovery), ['factorId'])
  assert.deepEqual({ ...recovery }, { factorId: recovery.factorId })
  const canaries = codes.flatMap((c) => [c, c.replace('-', '')])
  for (const [how, text] of printings(recovery)) {
    for (const canary of canaries) {
      assert.ok(!text.includes(canary), `${how} of the recovery codes leaks ${canary}: ${text}`)
    }
  }
})
