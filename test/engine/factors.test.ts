import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createKeyring, generateKey, UserEngine } from '../../src/engine/index.js'
import {
  assertGapFreeOutbox,
  codeFor,
  conflictCounting,
  FAST_HASHING,
  forEachFreshStore,
  rejectsWith,
  setup,
  snapshot,
  T0,
} from './support.js'

await forEachFreshStore('engine use cases: factors', (fresh) => {
  test('setPassword and verifyPassword: by email or id, wrong and unknown return false', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'anything'), false)
    const after = await h.engine.setPassword(t, u, 'first password')
    assert.equal(after.version, 2)
    assert.equal(await h.engine.verifyPassword(t, { email: 'ANN@example.com' }, 'first password'), true)
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'first password'), true)
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'First password'), false)
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, ''), false)
    await h.engine.setPassword(t, u, 'second password')
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'first password'), false)
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'second password'), true)
    assert.equal(await h.engine.verifyPassword(t, { email: 'nobody@example.com' }, 'second password'), false)
    assert.equal(await h.engine.verifyPassword(t, { userId: 'usr_nobody' }, 'second password'), false)
    // One password factor, replaced in place; checks write audit only (no version bump, no event).
    assert.equal((await h.engine.listFactors(t, u)).filter((f) => f.kind === 'password').length, 1)
    assert.deepEqual(await assertGapFreeOutbox(h, t, u), [
      'user.registered',
      'user.password_set',
      'user.password_set',
    ])
    const rejected = (await h.store.listAudit(t, { limit: 100 })).items.filter(
      (a) => a.action === 'password.rejected',
    )
    assert.deepEqual(
      rejected.map((a) => a.data.reason),
      ['no_factor', 'wrong_secret', 'wrong_secret', 'wrong_secret', 'unknown_user', 'unknown_user'],
    )
  })

  test('enrollTotp stores the seed sealed under the current key and returns the URI once', async () => {
    const h = setup({ store: await fresh(), totp: { issuer: 'Acme', period: 30, digits: 6, window: 1 } })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    const { factorId, uri } = await h.engine.enrollTotp(t, u)
    assert.match(uri, /^otpauth:\/\/totp\/Acme:ann%40example\.com\?/)
    assert.match(uri, /issuer=Acme/)
    const seed = new URL(uri).searchParams.get('secret')!
    const [factor] = await h.store.transaction(t, (tx) => tx.listFactors(u))
    assert.equal(factor?.id, factorId)
    const sealed = factor!.secret.reveal()
    assert.equal(sealed.keyId, 'k1')
    assert.equal(sealed.alg, 'A256GCM')
    assert.equal(typeof sealed.iv, 'string')
    assert.equal(typeof sealed.tag, 'string')
    assert.equal(typeof sealed.ciphertext, 'string')
    assert.doesNotMatch(JSON.stringify(sealed), new RegExp(seed))
    assert.equal(JSON.stringify(factor), JSON.stringify({ ...factor, secret: '[redacted]' }))
    assert.deepEqual(factor!.state, { confirmed: false, lastUsedStep: null })
    const { uri: labelled } = await h.engine.enrollTotp(t, u, { label: 'work phone' })
    assert.match(labelled, /Acme:work%20phone/)
    assert.equal((await h.engine.listFactors(t, u)).length, 1)
  })

  test('verifyTotp accepts a code once per time step, honours the window, refuses replay', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    const { factorId, uri } = await h.engine.enrollTotp(t, u)
    const code = codeFor(uri, h.now)
    assert.equal(await h.engine.verifyTotp(t, u, '000000' === code ? '111111' : '000000'), false)
    assert.equal(await h.engine.verifyTotp(t, u, 'abcdef'), false)
    assert.equal(await h.engine.verifyTotp(t, u, code), true)
    assert.equal(await h.engine.verifyTotp(t, u, code), false, 'replay of the same code')
    // Within the window the same code still matches, but its step was used.
    h.now += 30_000
    assert.equal(await h.engine.verifyTotp(t, u, code), false)
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now)), true)
    // An earlier step's code, still within the window, is refused once a later step was accepted.
    h.now += 30_000
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now - 30_000)), false)
    // Outside the window.
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now + 120_000)), false)
    const [summary] = await h.engine.listFactors(t, u)
    assert.deepEqual([summary?.id, summary?.confirmed], [factorId, true])
    assert.deepEqual(await assertGapFreeOutbox(h, t, u), [
      'user.registered',
      'user.totp_enrolled',
      'user.totp_verified',
      'user.totp_verified',
    ])
    const reasons = (await h.store.listAudit(t, { limit: 100 })).items
      .filter((a) => a.action === 'totp.rejected')
      .map((a) => a.data.reason)
    assert.deepEqual(reasons, [
      'wrong_secret',
      'wrong_secret',
      'replayed',
      'replayed',
      'replayed',
      'wrong_secret',
    ])
    // A confirmed TOTP factor is not silently replaced.
    await rejectsWith(h.engine.enrollTotp(t, u), 'ALREADY_EXISTS')
  })

  test('two concurrent verifications of one TOTP code: exactly one is true', async () => {
    for (let round = 0; round < 5; round++) {
      const h = setup({ store: await fresh() })
      const counting = conflictCounting(h.store)
      const engine = new UserEngine({
        store: counting.store,
        keyring: h.keyring,
        passwordHashing: FAST_HASHING,
        clock: () => h.now,
      })
      const { id: t } = await engine.createTenant('Acme')
      const { id: u } = await engine.registerUser(t, { email: 'ann@example.com' })
      const { uri } = await engine.enrollTotp(t, u)
      const code = codeFor(uri, h.now)
      // Two engines over one store, as two processes: one engine runs a user's checks one at a time, so the
      // race this test is about is between processes, and the store's version check must decide it.
      const other = new UserEngine({
        store: counting.store,
        keyring: h.keyring,
        passwordHashing: FAST_HASHING,
        clock: () => h.now,
      })
      // On the memory store both units read the factor and check the code before either commits (however
      // the event loop turns under load): its version check must then refuse the second commit. A database
      // store runs them as they come (PGlite's one connection would make the first wait for the second).
      if (h.store.kind === 'memory') counting.holdCommits(2)
      else await new Promise((resolve) => setImmediate(resolve))
      const results = await Promise.all([engine.verifyTotp(t, u, code), other.verifyTotp(t, u, code)])
      assert.deepEqual(results.filter(Boolean).length, 1)
      // On the memory store both read the factor before either commits: the loser's commit is refused, not
      // merely sequenced. On a database the two may not overlap; either way at most one commit was refused.
      if (h.store.kind === 'memory') assert.equal(counting.conflicts(), 1)
      else assert.ok(counting.conflicts() <= 1)
      await assertGapFreeOutbox(h, t, u)
    }
  })

  test('disabled and deleted users cannot verify factors', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'password123' })
    const { uri } = await h.engine.enrollTotp(t, u)
    const { codes } = await h.engine.generateRecoveryCodes(t, u)
    await h.engine.disableUser(t, u)
    assert.equal(await h.engine.verifyPassword(t, { userId: u }, 'password123'), false)
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now)), false)
    assert.equal(await h.engine.consumeRecoveryCode(t, u, codes[0]!), false)
    await h.engine.enableUser(t, u)
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now)), true)
    assert.equal(await h.engine.consumeRecoveryCode(t, u, codes[0]!), true)
    await h.engine.deleteUser(t, u)
    h.now += 30_000
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now)), false)
    assert.equal(await h.engine.consumeRecoveryCode(t, u, codes[1]!), false)
    assert.equal(await h.engine.verifyPassword(t, { email: 'ann@example.com' }, 'password123'), false)
    await assertGapFreeOutbox(h, t, u)
  })

  test('key rotation: old seeds still verify and are re-sealed under the new key; a missing key is KEY_NOT_FOUND', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    const { uri } = await h.engine.enrollTotp(t, u)
    const { id: u2 } = await h.engine.registerUser(t, { email: 'bob@example.com' })
    const { uri: uri2 } = await h.engine.enrollTotp(t, u2)
    const k1 = h.keyring.keys.k1!
    const rotated = createKeyring({ currentKeyId: 'k2', keys: { k1, k2: generateKey() } })
    const engine2 = new UserEngine({
      store: h.store,
      keyring: rotated,
      passwordHashing: FAST_HASHING,
      clock: () => h.now,
    })
    const keyOf = async (userId: string) =>
      (await h.store.transaction(t, (tx) => tx.listFactors(userId)))[0]!.secret.reveal().keyId
    assert.equal(await keyOf(u), 'k1')
    assert.equal(await engine2.verifyTotp(t, u, codeFor(uri, h.now)), true)
    assert.equal(await keyOf(u), 'k2')
    // New enrollments use the current key.
    const { id: u3 } = await engine2.registerUser(t, { email: 'cara@example.com' })
    await engine2.enrollTotp(t, u3)
    assert.equal(await keyOf(u3), 'k2')
    // Without k1, the seed still sealed under it cannot be opened: a typed error, not a false "wrong code".
    const onlyK2 = createKeyring({ currentKeyId: 'k2', keys: { k2: rotated.keys.k2! } })
    const engine3 = new UserEngine({
      store: h.store,
      keyring: onlyK2,
      passwordHashing: FAST_HASHING,
      clock: () => h.now,
    })
    const before = await snapshot(h.store, t)
    const error = await rejectsWith(engine3.verifyTotp(t, u2, codeFor(uri2, h.now)), 'KEY_NOT_FOUND')
    assert.match(error.message, /k1/)
    assert.deepEqual(await snapshot(h.store, t), before)
    // The re-sealed seed opens with k2 alone.
    h.now += 30_000
    assert.equal(await engine3.verifyTotp(t, u, codeFor(uri, h.now)), true)
  })

  test('recovery codes: shown once, stored hashed, each works exactly once, regenerating revokes the old set', async () => {
    const h = setup({ store: await fresh(), recoveryCodeCount: 10 })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    assert.equal(await h.engine.consumeRecoveryCode(t, u, 'abcde-fghjk'), false)
    const { factorId, codes } = await h.engine.generateRecoveryCodes(t, u)
    assert.equal(codes.length, 10)
    assert.equal(new Set(codes).size, 10)
    for (const c of codes) assert.match(c, /^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/)
    const [factor] = await h.store.transaction(t, (tx) => tx.listFactors(u))
    const stored = JSON.stringify(factor!.secret.reveal())
    for (const c of codes) {
      assert.doesNotMatch(stored, new RegExp(c.replace('-', '')))
      assert.doesNotMatch(stored, new RegExp(c))
    }
    assert.equal(await h.engine.consumeRecoveryCode(t, u, codes[0]!), true)
    assert.equal(await h.engine.consumeRecoveryCode(t, u, codes[0]!), false)
    // Typed by hand: upper case, no dash, spaces.
    assert.equal(
      await h.engine.consumeRecoveryCode(t, u, ` ${codes[1]!.replace('-', ' ').toUpperCase()} `),
      true,
    )
    assert.equal(await h.engine.consumeRecoveryCode(t, u, 'zzzzz-zzzzz'), false)
    const [summary] = await h.engine.listFactors(t, u)
    assert.deepEqual([summary?.id, summary?.remaining], [factorId, 8])
    const again = await h.engine.generateRecoveryCodes(t, u)
    assert.equal(again.factorId, factorId)
    assert.equal(await h.engine.consumeRecoveryCode(t, u, codes[2]!), false)
    assert.equal(await h.engine.consumeRecoveryCode(t, u, again.codes[0]!), true)
    assert.deepEqual(await assertGapFreeOutbox(h, t, u), [
      'user.registered',
      'user.recovery_codes_generated',
      'user.recovery_code_used',
      'user.recovery_code_used',
      'user.recovery_codes_generated',
      'user.recovery_code_used',
    ])
    const used = (await h.store.outbox.listForAggregate(t, u)).find(
      (e) => e.type === 'user.recovery_code_used',
    )
    assert.deepEqual(used?.payload, { userId: u, factorId, remaining: 9 })
  })

  test('16 concurrent consumptions of one recovery code: exactly one is true, the reuses count as failures', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    const { codes } = await h.engine.generateRecoveryCodes(t, u)
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, () => h.engine.consumeRecoveryCode(t, u, codes[0]!)),
    )
    const answers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const refused = results.flatMap((r) =>
      r.status === 'rejected' ? [(r.reason as { code?: string }).code] : [],
    )
    assert.equal(answers.filter(Boolean).length, 1)
    // A used code is a wrong code: checked one at a time, five wrong ones lock the user (THROTTLED).
    assert.equal(answers.filter((a) => !a).length, 5)
    assert.deepEqual(new Set(refused), new Set(['THROTTLED']))
    const audit = (await h.store.listAudit(t, { limit: 100 })).items
    assert.equal(audit.filter((a) => a.action === 'recovery_code.used').length, 1)
    assert.equal(audit.filter((a) => a.action === 'recovery_code.rejected').length, 5)
    assert.equal((await h.engine.listFactors(t, u))[0]?.remaining, 9)
    await assertGapFreeOutbox(h, t, u)
  })

  test('4 engines (processes) consuming one recovery code at once: the store lets exactly one through', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    const { codes } = await h.engine.generateRecoveryCodes(t, u)
    const engines = Array.from(
      { length: 4 },
      () =>
        new UserEngine({
          store: h.store,
          keyring: h.keyring,
          passwordHashing: FAST_HASHING,
          clock: () => h.now,
        }),
    )
    const results = await Promise.all(engines.map((e) => e.consumeRecoveryCode(t, u, codes[0]!)))
    assert.equal(results.filter(Boolean).length, 1)
    assert.equal((await h.engine.listFactors(t, u))[0]?.remaining, 9)
    await assertGapFreeOutbox(h, t, u)
  })

  test('16 concurrent consumptions of different codes all succeed (conflicts are retried)', async () => {
    const h = setup({ store: await fresh(), recoveryCodeCount: 16, maxAttempts: 32 })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com' })
    const { codes } = await h.engine.generateRecoveryCodes(t, u)
    const results = await Promise.all(codes.map((c) => h.engine.consumeRecoveryCode(t, u, c)))
    assert.deepEqual(
      results,
      codes.map(() => true),
    )
    assert.equal((await h.engine.listFactors(t, u))[0]?.remaining, 0)
    await assertGapFreeOutbox(h, t, u)
  })

  test('removeFactor deletes one factor; an unknown factor is NOT_FOUND', async () => {
    const h = setup({ store: await fresh() })
    const { id: t } = await h.engine.createTenant('Acme')
    const { id: u } = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'password123' })
    const { factorId, uri } = await h.engine.enrollTotp(t, u)
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, T0)), true)
    const after = await h.engine.removeFactor(t, u, factorId)
    assert.equal(after.version, 4)
    assert.deepEqual(
      (await h.engine.listFactors(t, u)).map((f) => f.kind),
      ['password'],
    )
    h.now += 30_000
    assert.equal(await h.engine.verifyTotp(t, u, codeFor(uri, h.now)), false)
    const before = await snapshot(h.store, t)
    await rejectsWith(h.engine.removeFactor(t, u, factorId), 'NOT_FOUND')
    assert.deepEqual(await snapshot(h.store, t), before)
    // After removal a new TOTP can be enrolled.
    await h.engine.enrollTotp(t, u)
    assert.deepEqual(await assertGapFreeOutbox(h, t, u), [
      'user.registered',
      'user.totp_enrolled',
      'user.totp_verified',
      'user.factor_removed',
      'user.totp_enrolled',
    ])
    const removed = (await h.store.outbox.listForAggregate(t, u)).find(
      (e) => e.type === 'user.factor_removed',
    )
    assert.deepEqual(removed?.payload, { userId: u, factorId, kind: 'totp' })
  })
})
