import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createKeyring, generateKey, type Keyring, UserEngine } from '../../src/engine/index.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { codeFor, FAST_HASHING, forEachStore, T0 } from './support.js'

const K1 = generateKey()
const K2 = generateKey()

function engineWith(store: UserEngineStore, keyring: Keyring, now: () => number) {
  return new UserEngine({ store, keyring, passwordHashing: FAST_HASHING, clock: now })
}

/** `count` users with a confirmed TOTP factor sealed under k1, over two tenants; returns their URIs. */
async function seedsUnderK1(store: UserEngineStore, count: number, clock: { now: number }) {
  const old = engineWith(store, createKeyring({ currentKeyId: 'k1', keys: { k1: K1 } }), () => clock.now)
  const tenants = [(await old.createTenant('One')).id, (await old.createTenant('Two')).id]
  const users: { t: string; u: string; uri: string }[] = []
  for (let i = 0; i < count; i++) {
    const t = tenants[i % 2]!
    const u = (await old.registerUser(t, { email: `user${i}@example.com` })).id
    const { uri } = await old.enrollTotp(t, u)
    assert.equal(await old.verifyTotp(t, u, codeFor(uri, clock.now)), true)
    users.push({ t, u, uri })
  }
  return users
}

const sealed = (usage: { keys: readonly { keyId: string; sealed: number }[] }) =>
  Object.fromEntries(usage.keys.map((k) => [k.keyId, k.sealed]))

await forEachStore('key rotation', ({ store }) => {
  test('resealSeeds moves every seed to the current key in bounded, resumable batches; the old key can go', async () => {
    const clock = { now: T0 }
    const s = store()
    const before = (await s.diagnostics()).sealedByKeyId.k2 ?? 0
    const users = await seedsUnderK1(s, 5, clock)
    const rotated = engineWith(
      s,
      createKeyring({ currentKeyId: 'k2', keys: { k1: K1, k2: K2 } }),
      () => clock.now,
    )
    const start = sealed(await rotated.keyUsage())
    assert.ok(start.k1! >= 5)

    const progress: number[] = []
    const partial = await rotated.resealSeeds({
      batchSize: 2,
      maxBatches: 1,
      onProgress: (p) => progress.push(p.resealed),
    })
    assert.equal(partial.complete, false, 'stopped by maxBatches')
    assert.equal(partial.resealed, 2)
    assert.deepEqual(progress, [2])
    assert.equal(sealed(partial.usage).k1, start.k1! - 2)

    // A later run (as after a kill) finds only what is left.
    const rest = await rotated.resealSeeds({ batchSize: 2 })
    assert.equal(rest.complete, true)
    assert.equal(rest.failed, 0)
    assert.equal(sealed(rest.usage).k1 ?? 0, 0, 'nothing left under the old key')
    assert.ok(sealed(rest.usage).k2! >= before + 5)
    const again = await rotated.resealSeeds()
    assert.equal(again.resealed, 0, 'a finished rotation has nothing to do')

    // Proof done: the old key is dropped from the keyring and every factor still verifies.
    const onlyK2 = engineWith(s, createKeyring({ currentKeyId: 'k2', keys: { k2: K2 } }), () => clock.now)
    clock.now += 30_000
    for (const { t, u, uri } of users) {
      assert.equal(await onlyK2.verifyTotp(t, u, codeFor(uri, clock.now)), true)
      const events = (await s.outbox.listForAggregate(t, u)).map((e) => e.type)
      assert.ok(events.includes('user.totp_resealed'))
      assert.deepEqual(
        (await s.outbox.listForAggregate(t, u)).map((e) => e.sequence),
        events.map((_, i) => i + 1),
        'one event per user change: the sequence stays gap-free',
      )
    }
    const audit = (await s.listAudit(users[0]!.t, { userId: users[0]!.u, limit: 100 })).items
    const resealed = audit.find((a) => a.action === 'totp.resealed')
    assert.deepEqual([resealed?.data.fromKeyId, resealed?.data.toKeyId], ['k1', 'k2'])
  })

  test('a seed whose key is not in the keyring is reported and left; the rest move', async () => {
    const clock = { now: T0 }
    const s = store()
    const lost = engineWith(
      s,
      createKeyring({ currentKeyId: 'lost', keys: { lost: generateKey() } }),
      () => clock.now,
    )
    const t = (await lost.createTenant('Lost')).id
    const u = (await lost.registerUser(t, { email: 'lost@example.com' })).id
    const { factorId } = await lost.enrollTotp(t, u)
    await seedsUnderK1(s, 2, clock)
    const rotated = engineWith(
      s,
      createKeyring({ currentKeyId: 'k2', keys: { k1: K1, k2: K2 } }),
      () => clock.now,
    )
    const result = await rotated.resealSeeds()
    assert.equal(result.complete, true)
    assert.ok(
      result.failures.some((f) => f.factorId === factorId && f.code === 'KEY_NOT_FOUND' && f.tenantId === t),
    )
    const usage = result.usage.keys.find((k) => k.keyId === 'lost')
    assert.deepEqual([usage?.sealed, usage?.inKeyring], [1, false])
    assert.equal(sealed(result.usage).k1 ?? 0, 0)
  })
})

test('resealSeeds options are checked', async () => {
  const { InMemoryUserEngineStore } = await import('../../src/store/memory/index.js')
  const e = engineWith(
    new InMemoryUserEngineStore({ migrated: true }),
    createKeyring({ currentKeyId: 'k1', keys: { k1: K1 } }),
    () => T0,
  )
  for (const options of [{ batchSize: 0 }, { batchSize: 501 }, { maxBatches: 0 }, { nope: 1 }]) {
    await assert.rejects(e.resealSeeds(options as never), { code: 'VALIDATION' })
  }
  const aborted = new AbortController()
  aborted.abort()
  assert.equal((await e.resealSeeds({ signal: aborted.signal })).complete, true, 'nothing to do: no tenant')
})
