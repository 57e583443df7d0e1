import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PasswordHasher } from '../../src/engine/password-hasher.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { codeFor, FAST_HASHING, forEachStore, rejectsWith, setup, T0 } from './support.js'

/** Counts Argon2 verifications (real and dummy), to prove a throttled attempt computes none. */
function countVerifications(): { count: () => number; restore: () => void } {
  const original = PasswordHasher.prototype.verify
  let n = 0
  PasswordHasher.prototype.verify = function (this: PasswordHasher, ...args: Parameters<typeof original>) {
    n++
    return original.apply(this, args)
  }
  return { count: () => n, restore: () => (PasswordHasher.prototype.verify = original) }
}

async function auditActions(store: UserEngineStore, tenantId: string) {
  return (await store.listAudit(tenantId, { limit: 500 })).items.map((a) => [a.action, a.data.reason ?? null])
}

await forEachStore('authenticate', ({ store, open }) => {
  test('signs in by email; a confirmed TOTP or recovery codes make a second factor required', async () => {
    const h = setup({ store: store() })
    const t = (await h.engine.createTenant('Acme')).id
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    const result = await h.engine.authenticate(t, { email: 'ANN@Example.com', password: 'correct horse' })
    assert.equal(result.status, 'signed_in')
    // The session commits with the check, so the user moved one version.
    assert.deepEqual(result.user, { ...ann, version: ann.version + 1, updatedAt: result.user.updatedAt })
    assert.deepEqual(result.status === 'signed_in' && result.session.methods, ['password'])
    assert.ok(!JSON.stringify(result).includes('correct horse'))

    const { uri } = await h.engine.enrollTotp(t, ann.id)
    const unconfirmed = await h.engine.authenticate(t, {
      email: 'ann@example.com',
      password: 'correct horse',
    })
    assert.equal(unconfirmed.status, 'signed_in', 'an unconfirmed enrollment is not a second factor')
    assert.equal(await h.engine.verifyTotp(t, ann.id, codeFor(uri, h.now)), true)
    await h.engine.generateRecoveryCodes(t, ann.id)
    const second = await h.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse' })
    assert.equal(second.status, 'second_factor_required')
    assert.deepEqual(second.status === 'second_factor_required' && second.factors, ['totp', 'recovery_codes'])
    assert.equal(second.status === 'second_factor_required' && second.challenge.purpose, 'sign_in_challenge')
  })

  test('every refusal is INVALID_CREDENTIALS after one Argon2 verification; the reason is only audited', async () => {
    const h = setup({ store: store() })
    const t = (await h.engine.createTenant('Acme')).id
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    await h.engine.registerUser(t, { email: 'nopass@example.com' })
    const dis = await h.engine.registerUser(t, { email: 'dis@example.com', password: 'correct horse' })
    await h.engine.disableUser(t, dis.id)
    const del = await h.engine.registerUser(t, { email: 'del@example.com', password: 'correct horse' })
    await h.engine.deleteUser(t, del.id)
    const attempts: [string, string, string][] = [
      ['nobody@example.com', 'correct horse', 'unknown_user'],
      ['ann@example.com', 'wrong horse', 'wrong_secret'],
      ['nopass@example.com', 'correct horse', 'no_factor'],
      ['dis@example.com', 'correct horse', 'user_inactive'],
      ['del@example.com', 'correct horse', 'unknown_user'],
    ]
    const verifications = countVerifications()
    try {
      for (const [email, password] of attempts) {
        const before = verifications.count()
        const error = await rejectsWith(h.engine.authenticate(t, { email, password }), 'INVALID_CREDENTIALS')
        assert.equal(verifications.count() - before, 1, `${email}: one verification`)
        assert.deepEqual((error as { details?: object }).details, {})
        assert.ok(!error.message.includes(email.split('@')[0]!))
      }
    } finally {
      verifications.restore()
    }
    const failed = (await auditActions(h.store, t)).filter(([a]) => a === 'sign_in.failed')
    assert.deepEqual(
      failed.map(([, reason]) => reason),
      attempts.map(([, , reason]) => reason),
    )
    // A suspended tenant refuses its users the same way.
    await h.store.transaction(t, async (tx) => {
      const tenant = await tx.getTenant()
      assert.ok(tenant)
      tx.putTenant({ ...tenant, status: 'suspended' }, { expectedVersion: tenant.version })
    })
    await rejectsWith(
      h.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse' }),
      'INVALID_CREDENTIALS',
    )
    assert.deepEqual((await auditActions(h.store, t)).at(-1), ['sign_in.failed', 'tenant_inactive'])
    // An unknown tenant too, with nothing written anywhere.
    await rejectsWith(
      h.engine.authenticate('tnt_unknown', { email: 'ann@example.com', password: 'correct horse' }),
      'INVALID_CREDENTIALS',
    )
    assert.equal(ann.status, 'active')
  })

  test('a locked identifier is THROTTLED before any hashing; the lock expires; a success clears the count', async () => {
    const h = setup({ store: store(), throttle: { lockAfter: 3, baseLockMs: 10_000, maxLockMs: 60_000 } })
    const t = (await h.engine.createTenant('Acme')).id
    await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    const ann = { email: 'ann@example.com', password: 'correct horse' }
    for (let i = 0; i < 3; i++) {
      await rejectsWith(h.engine.authenticate(t, { ...ann, password: `guess ${i}` }), 'INVALID_CREDENTIALS')
    }
    const verifications = countVerifications()
    try {
      const error = await rejectsWith(h.engine.authenticate(t, ann), 'THROTTLED')
      assert.deepEqual((error as { details?: object }).details, { retryAfterMs: 10_000 })
      h.now += 9_999
      await rejectsWith(h.engine.authenticate(t, { email: 'Ann@EXAMPLE.com', password: 'x' }), 'THROTTLED')
      assert.equal(verifications.count(), 0, 'no Argon2 work while locked')
    } finally {
      verifications.restore()
    }
    h.now += 1
    assert.equal((await h.engine.authenticate(t, ann)).status, 'signed_in')
    // The count was cleared: three more failures are needed to lock again.
    for (let i = 0; i < 2; i++) {
      await rejectsWith(h.engine.authenticate(t, { ...ann, password: 'nope' }), 'INVALID_CREDENTIALS')
    }
    assert.equal((await h.engine.authenticate(t, ann)).status, 'signed_in')
  })

  test('a user locked through one identifier is refused through another as a wrong password is, not THROTTLED', async () => {
    // THROTTLED through the username would tell that it belongs to the locked email's user.
    const h = setup({ store: store(), throttle: { lockAfter: 3, baseLockMs: 10_000, maxLockMs: 60_000 } })
    const t = (await h.engine.createTenant('Acme')).id
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    await h.engine.setUsername(t, ann.id, 'annie')
    const bob = await h.engine.registerUser(t, { email: 'bob@example.com', password: 'correct horse' })
    await h.engine.setUsername(t, bob.id, 'bobby')
    for (let i = 0; i < 3; i++) {
      await rejectsWith(
        h.engine.authenticate(t, { email: 'ann@example.com', password: `g${i}` }),
        'INVALID_CREDENTIALS',
      )
    }
    await rejectsWith(h.engine.authenticate(t, { email: 'ann@example.com', password: 'x' }), 'THROTTLED')
    const verifications = countVerifications()
    try {
      for (const username of ['annie', 'bobby', 'nosuch']) {
        await rejectsWith(h.engine.authenticate(t, { username, password: 'wrong' }), 'INVALID_CREDENTIALS')
      }
      // The locked user's right password is refused too, after the same one Argon2 verification.
      await rejectsWith(
        h.engine.authenticate(t, { username: 'annie', password: 'correct horse' }),
        'INVALID_CREDENTIALS',
      )
      assert.equal(verifications.count(), 4, 'each answer cost one verification')
    } finally {
      verifications.restore()
    }
    const audit = (await h.store.listAudit(t, { limit: 100 })).items.filter(
      (a) => a.action === 'sign_in.failed',
    )
    assert.deepEqual(audit.at(-1)?.data, { reason: 'user_locked' })
    // The lock's length is its own: attempts through the username did not extend it.
    h.now += 10_000
    assert.equal(
      (await h.engine.authenticate(t, { username: 'annie', password: 'correct horse' })).status,
      'signed_in',
    )
  })

  test('unknown identifiers and caller keys are throttled too; the caller key spans identifiers', async () => {
    const h = setup({ store: store(), callerThrottle: { lockAfter: 4, baseLockMs: 5_000 } })
    const t = (await h.engine.createTenant('Acme')).id
    await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    for (let i = 0; i < 4; i++) {
      await rejectsWith(
        h.engine.authenticate(t, {
          email: `nobody${i}@example.com`,
          password: 'x',
          throttleKey: '203.0.113.9',
        }),
        'INVALID_CREDENTIALS',
      )
    }
    await rejectsWith(
      h.engine.authenticate(t, {
        email: 'ann@example.com',
        password: 'correct horse',
        throttleKey: '203.0.113.9',
      }),
      'THROTTLED',
    )
    const ok = await h.engine.authenticate(t, {
      email: 'ann@example.com',
      password: 'correct horse',
      throttleKey: '198.51.100.1',
    })
    assert.equal(ok.status, 'signed_in')
  })

  test('16 concurrent wrong guesses count exactly 16, and the lock holds through another store instance', async () => {
    const policy = { lockAfter: 20, baseLockMs: 1_000, maxLockMs: 1_000_000 }
    const h = setup({ store: store(), throttle: policy })
    const t = (await h.engine.createTenant('Acme')).id
    await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    const guesses = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) =>
        h.engine.authenticate(t, { email: 'ann@example.com', password: `g${i}` }),
      ),
    )
    assert.ok(
      guesses.every(
        (g) => g.status === 'rejected' && (g.reason as { code?: string }).code === 'INVALID_CREDENTIALS',
      ),
    )
    for (let i = 0; i < 4; i++) {
      await rejectsWith(
        h.engine.authenticate(t, { email: 'ann@example.com', password: `s${i}` }),
        'INVALID_CREDENTIALS',
      )
    }
    // Exactly 20 failures: locked for exactly baseLockMs (a lost count would not lock, a double one would double it).
    const other = setup({ store: await open(), throttle: policy })
    other.now = h.now
    const error = await rejectsWith(
      other.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse' }),
      'THROTTLED',
    )
    assert.deepEqual((error as { details?: object }).details, { retryAfterMs: 1_000 })
  })

  test('engines in several processes check at most lockAfter guesses in a burst, not one more per process', async () => {
    const policy = { lockAfter: 5, baseLockMs: 60_000, maxLockMs: 600_000 }
    const first = setup({ store: store(), throttle: policy })
    const t = (await first.engine.createTenant('Acme')).id
    await first.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    // A first failure: from then on every attempt takes its number from the store before its check.
    await rejectsWith(
      first.engine.authenticate(t, { email: 'ann@example.com', password: 'g' }),
      'INVALID_CREDENTIALS',
    )
    // Each engine has its own one-at-a-time gate, as a process of its own has (the server: its own store too).
    const engines = [first]
    for (let i = 0; i < 3; i++) {
      const other = setup({ store: await open(), throttle: policy })
      other.now = first.now
      engines.push(other)
    }
    const burst = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        engines[i % engines.length]!.engine.authenticate(t, { email: 'ann@example.com', password: `g${i}` }),
      ),
    )
    const codes = new Set(
      burst.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok')),
    )
    assert.deepEqual([...codes].sort(), ['INVALID_CREDENTIALS', 'THROTTLED'])
    const checked = (await auditActions(first.store, t)).filter(
      ([action, reason]) => action === 'sign_in.failed' && reason === 'wrong_secret',
    )
    assert.equal(checked.length, policy.lockAfter, 'password checks before the lock, across the four engines')
    // The right password is refused while locked, and works once the lock has passed.
    await rejectsWith(
      first.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse' }),
      'THROTTLED',
    )
    first.now += 600_000
    assert.equal(
      (await first.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse' })).status,
      'signed_in',
    )
  })

  test('usernames: set, change, sign in with, unique per tenant, removed', async () => {
    const h = setup({ store: store() })
    const t = (await h.engine.createTenant('Acme')).id
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    const bob = await h.engine.registerUser(t, { email: 'bob@example.com', password: 'battery staple' })
    const v2 = await h.engine.setUsername(t, ann.id, 'Ann_Smith')
    assert.equal(v2.version, ann.version + 1)
    assert.deepEqual(
      await h.engine.setUsername(t, ann.id, 'ann_smith'),
      v2,
      'the same username again is a no-op',
    )
    const signedIn = await h.engine.authenticate(t, { username: 'ANN_SMITH', password: 'correct horse' })
    assert.equal(signedIn.user.id, ann.id)
    await rejectsWith(h.engine.setUsername(t, bob.id, 'ann_smith'), 'DUPLICATE_IDENTIFIER')
    await h.engine.setUsername(t, ann.id, 'annie')
    await rejectsWith(
      h.engine.authenticate(t, { username: 'ann_smith', password: 'correct horse' }),
      'INVALID_CREDENTIALS',
    )
    await h.engine.setUsername(t, bob.id, 'ann_smith')
    await h.engine.removeUsername(t, ann.id)
    await rejectsWith(
      h.engine.authenticate(t, { username: 'annie', password: 'correct horse' }),
      'INVALID_CREDENTIALS',
    )
    assert.equal(
      (await h.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse' })).status,
      'signed_in',
    )
    const other = (await h.engine.createTenant('Other')).id
    const carl = await h.engine.registerUser(other, { email: 'carl@example.com' })
    await h.engine.setUsername(other, carl.id, 'ann_smith')
  })

  test('look-alike identifiers are refused or map to the existing account', async () => {
    const h = setup({ store: store() })
    const t = (await h.engine.createTenant('Acme')).id
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    await h.engine.setUsername(t, ann.id, 'annie')
    const invisibles = ['\u200B', '\u200C', '\u200D', '\u2060', '\u00AD', '\u200E', '\u202E', '\u2067']
    for (const c of invisibles) {
      await rejectsWith(h.engine.registerUser(t, { email: `an${c}n@example.com` }), 'VALIDATION')
      await rejectsWith(
        h.engine.authenticate(t, { email: `an${c}n@example.com`, password: 'correct horse' }),
        'VALIDATION',
      )
      await rejectsWith(h.engine.setUsername(t, ann.id, `an${c}nie`), 'VALIDATION')
    }
    await rejectsWith(h.engine.registerUser(t, { email: 'p\u0430ypal@example.com' }), 'VALIDATION')
    await rejectsWith(h.engine.registerUser(t, { email: '\uFF41nn@EXAMPLE.com' }), 'DUPLICATE_IDENTIFIER')
    const same = await h.engine.authenticate(t, { username: '\uFF41nnie', password: 'correct horse' })
    assert.equal(same.user.id, ann.id)
  })

  test('a success rehashes a password hashed with other Argon2 costs, in its unit of work', async () => {
    const h = setup({ store: store() })
    const t = (await h.engine.createTenant('Acme')).id
    const ann = await h.engine.registerUser(t, { email: 'ann@example.com', password: 'correct horse' })
    const phc = async () => {
      const rows = await h.store.transaction(t, (tx) => tx.listFactors(ann.id))
      return rows.find((f) => f.kind === 'password')?.secret.reveal().phc as string
    }
    assert.match(await phc(), /m=64,t=1,p=1/)
    const stronger = setup({ store: h.store, passwordHashing: { ...FAST_HASHING, memoryCost: 128 } })
    assert.equal(
      (await stronger.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse' })).status,
      'signed_in',
    )
    assert.match(await phc(), /m=128,t=1,p=1/)
    const signIns = async () =>
      (await h.store.listAudit(t, { limit: 500 })).items.filter((a) => a.action === 'sign_in.succeeded')
    const last = (await signIns()).at(-1)
    assert.deepEqual(
      [last?.action, last?.data],
      ['sign_in.succeeded', { secondFactorRequired: false, rehashed: true }],
    )
    assert.equal(
      (await stronger.engine.authenticate(t, { email: 'ann@example.com', password: 'correct horse' })).status,
      'signed_in',
    )
    assert.equal((await signIns()).at(-1)?.data.rehashed, false)
  })
})

test('credentials are checked before any work: one identifier, bounded password, VALIDATION without echo', async () => {
  const h = setup()
  const t = (await h.engine.createTenant('Acme')).id
  const bad: unknown[] = [
    null,
    { password: 'x' },
    { email: 'a@example.com', username: 'a', password: 'x' },
    { email: 'a@example.com' },
    { email: 'a@example.com', password: 'p'.repeat(10_000) },
    { email: 'Hunter2-Secret', password: 'x' },
    { email: 'a@example.com', password: 'x', throttleKey: 7 },
  ]
  for (const credentials of bad) {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
    const error = await rejectsWith(h.engine.authenticate(t, credentials as any), 'VALIDATION')
    assert.ok(!JSON.stringify(error).includes('Hunter2'))
  }
  assert.equal(T0 > 0, true)
})

test('a string passed as an id is never echoed unless it has the shape of an issued id', async () => {
  const h = setup()
  const t = (await h.engine.createTenant('Acme')).id
  const u = (await h.engine.registerUser(t, { email: 'ann@example.com' })).id
  const secret = 'Hunter2-Secret'
  const calls = [
    h.engine.getUser(t, secret),
    h.engine.getUser(secret, u),
    h.engine.registerUser(secret, { email: 'bob@example.com' }),
    h.engine.updateProfile(t, secret, { a: 1 }),
    h.engine.removeFactor(t, u, secret),
    h.engine.listFactors(secret, u),
  ]
  for (const call of calls) {
    const error = await rejectsWith(call, 'NOT_FOUND')
    assert.ok(!`${error.message} ${JSON.stringify(error)}`.includes('Hunter2'), error.message)
    assert.match(error.message, /\(withheld\)/)
  }
  const known = await rejectsWith(
    h.engine.removeFactor(t, u, 'fac_0190f3a2b4c17000a1b2c3d4e5f60718'),
    'NOT_FOUND',
  )
  assert.match(known.message, /fac_0190f3a2b4c17000a1b2c3d4e5f60718/, 'an issued id is named')
})
