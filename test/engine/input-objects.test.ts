// Object arguments (inputs, options, credentials, proofs, subjects): a plain object with known keys only. A
// misspelt key must fail as VALIDATION and change nothing, never be silently ignored (a misspelt
// expectedVersion would drop the optimistic check; a misspelt throttleKey would drop the caller throttle).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createKeyring, generateKey, keyringFromEnv, UserEngine } from '../../src/engine/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { FAST_HASHING, rejectsWith, setup, snapshot } from './support.js'

async function registered() {
  const h = setup()
  const tenant = await h.engine.createTenant('acme')
  const user = await h.engine.registerUser(tenant.id, {
    email: 'ada@example.com',
    password: 'correct horse battery',
  })
  return { h, tenantId: tenant.id, user }
}

test('misspelt or unknown keys are VALIDATION and change nothing', async () => {
  const { h, tenantId, user } = await registered()
  const other = await h.engine.registerUser(tenantId, { email: 'bob@example.com' })
  const session = await h.engine.createSession(tenantId, user.id)
  const before = await snapshot(h.store, tenantId)
  const calls: Array<[string, () => Promise<unknown>]> = [
    [
      'registerUser pasword',
      () => h.engine.registerUser(tenantId, { email: 'c@example.com', pasword: 'x' } as never),
    ],
    [
      'registerUser username',
      () => h.engine.registerUser(tenantId, { email: 'c@example.com', username: 'c' } as never),
    ],
    [
      'updateProfile expectedVerison',
      () => h.engine.updateProfile(tenantId, user.id, { a: 1 }, { expectedVerison: 9 } as never),
    ],
    [
      'updateProfile boxed string',
      () => h.engine.updateProfile(tenantId, user.id, { a: 1 }, new String('x') as never),
    ],
    [
      'updateProfile Map attributes',
      () => h.engine.updateProfile(tenantId, user.id, new Map([['a', 1]]) as never),
    ],
    ['updateProfile Date attributes', () => h.engine.updateProfile(tenantId, user.id, new Date() as never)],
    [
      'revokeAllSessions exceptSession',
      () => h.engine.revokeAllSessions(tenantId, user.id, { exceptSession: session.id } as never),
    ],
    [
      'createSession method',
      () => h.engine.createSession(tenantId, user.id, { method: ['password'] } as never),
    ],
    ['enrollTotp lable', () => h.engine.enrollTotp(tenantId, user.id, { lable: 'x' } as never)],
    [
      'authenticate throttlekey',
      () =>
        h.engine.authenticate(tenantId, {
          email: 'ada@example.com',
          password: 'wrong',
          throttlekey: 'ip',
        } as never),
    ],
    [
      'requestPasswordReset extra',
      () => h.engine.requestPasswordReset(tenantId, { email: 'ada@example.com', userId: user.id } as never),
    ],
    [
      'completeSignIn proof extra',
      () => h.engine.completeSignIn('x.y', { totp: '123456', code: '1' } as never),
    ],
    [
      'verifyPassword extra',
      () => h.engine.verifyPassword(tenantId, { userId: user.id, extra: 1 } as never, 'x'),
    ],
    ['purgeExpired null', () => h.engine.purgeExpired(null as never)],
    ['purgeExpired number', () => h.engine.purgeExpired(42 as never)],
    ['purgeExpired array', () => h.engine.purgeExpired([] as never)],
    ['purgeExpired now out of range', () => h.engine.purgeExpired({ now: 1e20 })],
    ['purgeExpired signal', () => h.engine.purgeExpired({ signal: 'x' as never })],
    ['resealSeeds onProgress', () => h.engine.resealSeeds({ onProgress: 5 as never })],
    ['resealSeeds signal', () => h.engine.resealSeeds({ signal: {} as never })],
  ]
  for (const [name, call] of calls) {
    const error = await rejectsWith(call(), 'VALIDATION').catch((e: unknown) => {
      throw new Error(`${name}: ${String(e)}`)
    })
    assert.ok(!JSON.stringify(error).includes('ada@example.com'), `${name}: the error shows the email`)
  }
  assert.deepEqual(await snapshot(h.store, tenantId), before)
  // The revoke-all above did not end the session it was told (misspelt) to keep: all sessions are live.
  assert.equal((await h.engine.listSessions(tenantId, user.id)).length, 1)
  assert.equal((await h.engine.getUser(tenantId, other.id)).version, other.version)
})

test('verifyPassword with both userId and email is VALIDATION: it must not check the email instead', async () => {
  const { h, tenantId, user } = await registered()
  const attacker = await h.engine.registerUser(tenantId, {
    email: 'eve@example.com',
    password: 'eve password 1',
  })
  const before = await snapshot(h.store, tenantId)
  await rejectsWith(
    h.engine.verifyPassword(
      tenantId,
      { userId: user.id, email: 'eve@example.com' } as never,
      'eve password 1',
    ),
    'VALIDATION',
  )
  await rejectsWith(h.engine.verifyPassword(tenantId, {} as never, 'x'), 'VALIDATION')
  assert.deepEqual(await snapshot(h.store, tenantId), before)
  assert.equal(await h.engine.verifyPassword(tenantId, { userId: attacker.id }, 'eve password 1'), true)
  assert.equal(await h.engine.verifyPassword(tenantId, { userId: user.id }, 'eve password 1'), false)
})

test('a getter that throws is VALIDATION, and its error is not shown', async () => {
  const { h, tenantId, user } = await registered()
  const secret = 'token-in-getter-9f8e'
  const attributes = Object.defineProperty({}, 'nick', {
    enumerable: true,
    get() {
      throw new Error(secret)
    },
  })
  const error = await rejectsWith(h.engine.updateProfile(tenantId, user.id, attributes), 'VALIDATION')
  assert.ok(!String(error.stack).includes(secret) && !JSON.stringify(error).includes(secret))
  // A getter answering differently on each read cannot swap a value after it was checked.
  let reads = 0
  const shifty = Object.defineProperty({}, 'mode', {
    enumerable: true,
    get: () => (reads++ === 0 ? 'merge' : 'bogus'),
  })
  await h.engine.updateProfile(tenantId, user.id, { a: 1 }, shifty as never)
  assert.equal(reads, 1)
})

test('a revoked proxy in place of any object argument is VALIDATION, and nothing runs', async () => {
  const { h, tenantId, user } = await registered()
  const revoked = () => {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    return proxy as never
  }
  await rejectsWith(h.engine.registerUser(tenantId, revoked()), 'VALIDATION')
  await rejectsWith(h.engine.authenticate(tenantId, revoked()), 'VALIDATION')
  await rejectsWith(h.engine.countUsers(tenantId, revoked()), 'VALIDATION')
  await rejectsWith(h.engine.listAudit(tenantId, revoked()), 'VALIDATION')
  await rejectsWith(h.engine.updateProfile(tenantId, user.id, revoked()), 'VALIDATION')
  await rejectsWith(h.engine.disableUser(tenantId, user.id, revoked()), 'VALIDATION')
  assert.equal((await h.engine.getUser(tenantId, user.id)).status, 'active')
})

test('keyring ids that name Object.prototype members, and a key id given twice', async () => {
  const key = generateKey()
  for (const id of ['constructor', 'toString', 'valueOf', 'hasOwnProperty']) {
    assert.throws(
      () => createKeyring({ currentKeyId: id, keys: { k1: key } }),
      (e: { code?: string }) => e.code === 'KEY_NOT_FOUND',
      id,
    )
    assert.throws(
      () => keyringFromEnv({ USER_ENGINE_KEYS: `k1:${key}`, USER_ENGINE_CURRENT_KEY: id }),
      (e: { code?: string }) => e.code === 'KEY_NOT_FOUND',
      id,
    )
  }
  assert.throws(
    () => keyringFromEnv({ USER_ENGINE_KEYS: `k1:${key},k1:${generateKey()}` }),
    (e: { code?: string; message: string }) => e.code === 'VALIDATION' && !e.message.includes(key),
  )
  // A key named like a prototype member counts its own seeds: 0, not Object's constructor.
  const engine = new UserEngine({
    store: new InMemoryUserEngineStore({ migrated: true }),
    keyring: createKeyring({ currentKeyId: 'constructor', keys: { constructor: key } }),
    passwordHashing: FAST_HASHING,
  })
  assert.deepEqual((await engine.keyUsage()).keys, [
    { keyId: 'constructor', sealed: 0, inKeyring: true, current: true },
  ])
})

test('keyring inputs that throw, are not strings or carry unknown keys are VALIDATION, and errors show nothing', () => {
  const key = generateKey()
  const secret = 'guarded-value-7c1d'
  const throwing = () => {
    throw new Error(secret)
  }
  const cases: Array<[string, () => unknown]> = [
    [
      'an env proxy that throws',
      () => keyringFromEnv(new Proxy({}, { get: throwing, getOwnPropertyDescriptor: throwing })),
    ],
    [
      'a keys getter that throws',
      () =>
        createKeyring({
          currentKeyId: 'k1',
          get keys(): never {
            return throwing()
          },
        }),
    ],
    [
      'a key getter that throws',
      () =>
        createKeyring({
          currentKeyId: 'k1',
          keys: {
            get k1(): never {
              return throwing()
            },
          },
        }),
    ],
    [
      'an unknown names key',
      () => keyringFromEnv({ USER_ENGINE_KEYS: `k1:${key}` }, { keys: 'K', bogus: 1 } as never),
    ],
    ['a names value that is not a variable name', () => keyringFromEnv({}, { keys: 'A B' })],
    ['a variable that is not a string', () => keyringFromEnv({ USER_ENGINE_KEYS: 5 } as never)],
    [
      'an unknown keyring key',
      () => createKeyring({ currentKeyId: 'k1', keys: { k1: key }, extra: 1 } as never),
    ],
    [
      'a key whose length getter throws',
      () =>
        createKeyring({
          currentKeyId: 'k1',
          keys: {
            k1: new Proxy(new Uint8Array(32), {
              get: (target, prop) => (prop === 'length' ? throwing() : Reflect.get(target, prop)),
            }) as never,
          },
        }),
    ],
    [
      'a revoked proxy as the keyring',
      () => {
        const { proxy, revoke } = Proxy.revocable({}, {})
        revoke()
        return createKeyring(proxy as never)
      },
    ],
  ]
  for (const [what, call] of cases) {
    assert.throws(
      call,
      (e: Error & { code?: string }) =>
        e.code === 'VALIDATION' && !JSON.stringify(e).includes(secret) && !String(e.stack).includes(secret),
      what,
    )
  }
  // A keyring is accepted again as input (its redaction helpers are not enumerable keys).
  const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: key } })
  assert.equal(createKeyring(keyring as never).currentKeyId, 'k1')
})

test('a clock that does not answer a time in ms is VALIDATION where it is read', async () => {
  for (const clock of [
    Date,
    () => Number.NaN,
    () => '1700000000000',
    () => new Date(),
    () => -1e20,
    // A valid Date, but an expiry after it is not.
    () => 8.64e15,
  ]) {
    const engine = new UserEngine({
      store: new InMemoryUserEngineStore({ migrated: true }),
      keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
      passwordHashing: FAST_HASHING,
      clock: clock as never,
    })
    // Registration reads no clock (the commit's time is the store's); a session's expiry does.
    const tenant = await engine.createTenant('acme')
    const user = await engine.registerUser(tenant.id, { email: 'ada@example.com' })
    await rejectsWith(engine.createSession(tenant.id, user.id), 'VALIDATION')
  }
})

test('lists are read by their length first: a sparse array of 2**32 - 1 or with a hole is VALIDATION at once', async () => {
  const { h, tenantId, user } = await registered()
  const before = await snapshot(h.store, tenantId)
  const sparse = () => {
    const a: unknown[] = []
    a.length = 2 ** 32 - 1
    return a as never
  }
  const started = performance.now()
  await rejectsWith(h.engine.listUsers(tenantId, { include: sparse() }), 'VALIDATION')
  await rejectsWith(h.engine.createSession(tenantId, user.id, { methods: sparse() }), 'VALIDATION')
  // Walking 2**32 - 1 slots took 85 s; the refusal reads one length.
  assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`)
  // A hole is not 'identifiers' (it had listed identifiers), nor a method.
  const holed = (...values: unknown[]) => Object.assign([...values], { length: values.length + 1 }) as never
  await rejectsWith(h.engine.listUsers(tenantId, { include: holed() }), 'VALIDATION')
  await rejectsWith(h.engine.createSession(tenantId, user.id, { methods: holed('password') }), 'VALIDATION')
  assert.deepEqual(await snapshot(h.store, tenantId), before)
  // The lists the engine takes still work.
  assert.equal((await h.engine.listUsers(tenantId, { include: ['identifiers'] })).items.length, 1)
})

test("a list, signal or engine option whose proxy or getter throws is VALIDATION, and the caller's error is not shown", async () => {
  const { h, tenantId, user } = await registered()
  const secret = 'held-by-getter-71c2'
  const revoked = () => {
    const { proxy, revoke } = Proxy.revocable([], {})
    revoke()
    return proxy as never
  }
  const throwingElement = () =>
    Object.defineProperty(['identifiers'], 0, {
      get() {
        throw new Error(secret)
      },
    }) as never
  const throwingLength = () =>
    new Proxy([], {
      get(target, key) {
        if (key === 'length') throw new Error(secret)
        return Reflect.get(target, key)
      },
    }) as never
  const signal = (aborted: () => unknown) => Object.defineProperty({}, 'aborted', { get: aborted }) as never
  const throwing = () => {
    throw new Error(secret)
  }
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['listUsers include revoked', () => h.engine.listUsers(tenantId, { include: revoked() })],
    ['listUsers include element', () => h.engine.listUsers(tenantId, { include: throwingElement() })],
    ['listUsers include length', () => h.engine.listUsers(tenantId, { include: throwingLength() })],
    [
      'createSession methods revoked',
      () => h.engine.createSession(tenantId, user.id, { methods: revoked() }),
    ],
    [
      'createSession methods element',
      () => h.engine.createSession(tenantId, user.id, { methods: throwingElement() }),
    ],
    ['resealSeeds signal', () => h.engine.resealSeeds({ signal: signal(throwing) })],
    ['purgeExpired signal', () => h.engine.purgeExpired({ signal: signal(throwing) })],
    ['purgeExpired revoked signal', () => h.engine.purgeExpired({ signal: revoked() })],
    ['purgeExpired signal not a boolean', () => h.engine.purgeExpired({ signal: signal(() => 'yes') })],
  ]
  const before = await snapshot(h.store, tenantId)
  for (const [name, call] of calls) {
    const error = await rejectsWith(call(), 'VALIDATION').catch((e: unknown) => {
      throw new Error(`${name}: ${String(e)}`)
    })
    assert.ok(!String(error.stack).includes(secret) && !JSON.stringify(error).includes(secret), name)
  }
  assert.deepEqual(await snapshot(h.store, tenantId), before)

  // A signal read afresh on each batch: one that starts throwing mid-run stops the run as VALIDATION.
  let reads = 0
  const late = signal(() => {
    if (reads++ > 0) throw new Error(secret)
    return false
  })
  await rejectsWith(h.engine.purgeExpired({ signal: late }), 'VALIDATION')
  assert.ok(reads >= 2)

  const store = new InMemoryUserEngineStore({ migrated: true })
  const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } })
  const construct = (options: Record<string, unknown>) => {
    try {
      new UserEngine({ store, keyring, passwordHashing: FAST_HASHING, ...options } as never)
    } catch (error) {
      return error as Error & { code?: string }
    }
    return undefined
  }
  for (const key of ['store', 'keyring', 'tracer']) {
    const error = construct({ [key]: revoked() })
    assert.equal(error?.code, 'VALIDATION', `${key}: ${String(error)}`)
  }
  const keysThrow = Object.defineProperty({ currentKeyId: 'k1' }, 'keys', { get: throwing, enumerable: true })
  const error = construct({ keyring: keysThrow })
  assert.equal(error?.code, 'VALIDATION', String(error))
  assert.ok(!String(error?.stack).includes(secret))
})
