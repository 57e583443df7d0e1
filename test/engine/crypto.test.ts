import assert from 'node:assert/strict'
import { test } from 'node:test'
import { inspect } from 'node:util'
import {
  createKeyring,
  DEFAULT_PASSWORD_HASHING,
  DEFAULT_TOTP,
  generateKey,
  keyFor,
  keyringFromEnv,
  matchRecoveryCode,
  newRecoveryCodes,
  normalizeRecoveryCode,
  openSeed,
  PasswordHasher,
  sealSeed,
  TotpAlgorithm,
  UserEngine,
} from '../../src/engine/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { FAST_HASHING, T0 } from './support.js'

const codeOf = (error: unknown) => (error as { code?: string }).code

test('createKeyring validates ids, key length and the current key; never prints key bytes', () => {
  const key = generateKey()
  const ring = createKeyring({ currentKeyId: 'k1', keys: { k1: key, k0: Buffer.alloc(32, 7) } })
  assert.equal(ring.currentKeyId, 'k1')
  assert.equal(ring.keys.k1?.length, 32)
  assert.equal(JSON.stringify(ring), '"[redacted keyring]"')
  assert.equal(inspect(ring), 'Keyring([redacted])')
  assert.ok(!JSON.stringify({ ring }).includes(key))
  assert.throws(
    () => createKeyring({ currentKeyId: 'k1', keys: { k1: Buffer.alloc(16) } }),
    (e) => codeOf(e) === 'VALIDATION',
  )
  assert.throws(
    () => createKeyring({ currentKeyId: 'k2', keys: { k1: key } }),
    (e) => codeOf(e) === 'KEY_NOT_FOUND',
  )
  assert.throws(
    () => createKeyring({ currentKeyId: 'bad id', keys: {} }),
    (e) => codeOf(e) === 'VALIDATION',
  )
  assert.throws(
    () => keyFor(ring, 'k9'),
    (e) => codeOf(e) === 'KEY_NOT_FOUND',
  )
  assert.throws(
    () => keyFor(ring, 'toString'),
    (e) => codeOf(e) === 'KEY_NOT_FOUND',
  )
})

test('keyringFromEnv reads id:base64 pairs; current defaults to the first', () => {
  const a = generateKey()
  const b = generateKey()
  const ring = keyringFromEnv({ USER_ENGINE_KEYS: `k2:${b}, k1:${a}` })
  assert.equal(ring.currentKeyId, 'k2')
  assert.deepEqual(Object.keys(ring.keys).sort(), ['k1', 'k2'])
  assert.deepEqual(Buffer.from(ring.keys.k1!), Buffer.from(a, 'base64'))
  assert.equal(
    keyringFromEnv({ USER_ENGINE_KEYS: `k2:${b},k1:${a}`, USER_ENGINE_CURRENT_KEY: 'k1' }).currentKeyId,
    'k1',
  )
  assert.throws(
    () => keyringFromEnv({}),
    (e) => codeOf(e) === 'KEY_NOT_FOUND',
  )
  assert.throws(
    () => keyringFromEnv({ USER_ENGINE_KEYS: a }),
    (e) => codeOf(e) === 'VALIDATION',
  )
  assert.throws(
    () => keyringFromEnv({ USER_ENGINE_KEYS: `k1:${a}`, USER_ENGINE_CURRENT_KEY: 'k3' }),
    (e) => codeOf(e) === 'KEY_NOT_FOUND',
  )
})

test('key text is read as strict base64: a typo, a stray byte or a NUL is VALIDATION, never another key', () => {
  const a = generateKey()
  const bytes = Buffer.from(a, 'base64')
  for (const form of [
    a,
    a.replace(/=+$/, ''),
    bytes.toString('base64url'),
    `${bytes.toString('base64url')}=`,
  ]) {
    assert.deepEqual(Buffer.from(createKeyring({ currentKeyId: 'k', keys: { k: form } }).keys.k!), bytes)
  }
  for (const bad of [
    `${a}\u0000`,
    `${a}=`,
    `${a.slice(0, 10)}!${a.slice(11)}`,
    `${a.slice(0, 20)} ${a.slice(20)}`,
    `${a}A`,
  ]) {
    assert.throws(
      () => createKeyring({ currentKeyId: 'k', keys: { k: bad } }),
      (e) => codeOf(e) === 'VALIDATION',
      JSON.stringify(bad),
    )
    assert.throws(
      () => keyringFromEnv({ USER_ENGINE_KEYS: `k:${bad}` }),
      (e) => codeOf(e) === 'VALIDATION',
      JSON.stringify(bad),
    )
  }
})

test('sealSeed / openSeed: AES-256-GCM bound to its record; wrong context, tampering and missing keys fail', () => {
  const ring = createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } })
  const seed = Buffer.from('0123456789abcdefghij')
  const sealed = sealSeed(ring, seed, 'ctx-a')
  assert.equal(sealed.keyId, 'k1')
  assert.ok(!Buffer.from(sealed.ciphertext, 'base64').equals(seed))
  assert.deepEqual(openSeed(ring, sealed, 'ctx-a'), seed)
  assert.notEqual(sealSeed(ring, seed, 'ctx-a').iv, sealed.iv)
  assert.throws(
    () => openSeed(ring, sealed, 'ctx-b'),
    (e) => codeOf(e) === 'KEY_NOT_FOUND',
  )
  const flipped = Buffer.from(sealed.ciphertext, 'base64')
  flipped[0]! ^= 1
  assert.throws(() => openSeed(ring, { ...sealed, ciphertext: flipped.toString('base64') }, 'ctx-a'))
  const other = createKeyring({ currentKeyId: 'k2', keys: { k2: generateKey() } })
  assert.throws(
    () => openSeed(other, sealed, 'ctx-a'),
    (e) => codeOf(e) === 'KEY_NOT_FOUND',
  )
  assert.throws(
    () => openSeed(ring, { alg: 'none' }, 'ctx-a'),
    (e) => codeOf(e) === 'DATA_CORRUPTED',
  )
})

test('PasswordHasher: Argon2id with the configured costs; OWASP defaults; bad params refused', async () => {
  assert.deepEqual(DEFAULT_PASSWORD_HASHING, { memoryCost: 19456, timeCost: 2, parallelism: 1 })
  const hasher = new PasswordHasher(FAST_HASHING)
  const phc = await hasher.hash('hunter2 hunter2')
  assert.match(phc, /^\$argon2id\$v=19\$m=64,t=1,p=1\$/)
  assert.equal(await hasher.verify(phc, 'hunter2 hunter2'), true)
  assert.equal(await hasher.verify(phc, 'hunter3 hunter3'), false)
  assert.equal(await hasher.verify('not a hash', 'x'), false)
  assert.equal(await hasher.verifyDummy('anything'), false)
  assert.throws(
    () => new PasswordHasher({ memoryCost: 0, timeCost: 1, parallelism: 1 }),
    (e) => codeOf(e) === 'VALIDATION',
  )
  assert.throws(
    () => new PasswordHasher({ memoryCost: 8, timeCost: 1, parallelism: 4 }),
    (e) => codeOf(e) === 'VALIDATION',
  )
  const store = new InMemoryUserEngineStore({ migrated: true })
  const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } })
  assert.throws(
    () =>
      new UserEngine({ store, keyring, passwordHashing: { memoryCost: 1.5, timeCost: 1, parallelism: 1 } }),
    (e) => codeOf(e) === 'VALIDATION',
  )
})

test('TotpAlgorithm: options validated; steps computed from the clock', () => {
  assert.deepEqual(DEFAULT_TOTP, { issuer: 'user-engine', period: 30, digits: 6, window: 1 })
  assert.throws(
    () => new TotpAlgorithm({ digits: 4 }),
    (e) => codeOf(e) === 'VALIDATION',
  )
  assert.throws(
    () => new TotpAlgorithm({ window: -1 }),
    (e) => codeOf(e) === 'VALIDATION',
  )
  assert.throws(
    () => new TotpAlgorithm({ period: 0 }),
    (e) => codeOf(e) === 'VALIDATION',
  )
  const codec = new TotpAlgorithm({ digits: 8, period: 60, window: 0 })
  const seed = codec.newSeed()
  assert.equal(seed.length, 20)
  const code = codec.generate(seed, T0)
  assert.match(code, /^\d{8}$/)
  assert.equal(codec.matchStep(seed, code, T0), Math.floor(T0 / 60_000))
  assert.equal(codec.matchStep(seed, code, T0 + 60_000), null)
  assert.equal(codec.matchStep(seed, code.slice(1), T0), null)
  assert.match(codec.uri(seed, 'a@example.com'), /digits=8&period=60/)
})

test('recovery codes: normalization, constant-shape matching', () => {
  const { codes, hashes } = newRecoveryCodes(3)
  assert.equal(hashes.hashes.length, 3)
  assert.equal(matchRecoveryCode(hashes, codes[2]!), 2)
  assert.equal(matchRecoveryCode(hashes, codes[0]!.toUpperCase().replace('-', ' ')), 0)
  assert.equal(matchRecoveryCode(hashes, 'nope'), -1)
  assert.equal(matchRecoveryCode({}, codes[0]!), -1)
  assert.equal(normalizeRecoveryCode('ABCDE-FGHIO'), 'abcdefgh10')
  assert.equal(normalizeRecoveryCode('abcde-fghu0'), null)
  assert.equal(normalizeRecoveryCode('abc'), null)
})
