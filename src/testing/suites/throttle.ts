import { randomBytes } from 'node:crypto'
import { ErrorCode } from '../../domain/errors.js'
import type { UserEngineStore } from '../../store/store.js'
import { lockUntil, type ThrottlePolicy } from '../../store/throttle.js'
import { barrier } from '../shared/barrier.js'
import { suite } from '../shared/context.js'
import { assert, expectCode } from '../shared/expect.js'

const POLICY: ThrottlePolicy = { lockAfter: 3, baseLockMs: 1000, maxLockMs: 4000, windowMs: 60_000 }
const T0 = new Date('2026-01-01T00:00:00.000Z')
const at = (ms: number) => new Date(T0.getTime() + ms)
const newKey = (kind = 'identifier') => `${kind}:${randomBytes(32).toString('hex')}`

/** `racers` failures on one key at once, spread over `stores`; the count must be exact. */
async function failureRace(stores: readonly UserEngineStore[], tenantId: string, racers: number) {
  const key = newKey()
  const ready = barrier(racers)
  await Promise.all(
    Array.from({ length: racers }, async (_, i) => {
      await ready()
      await stores[i % stores.length]!.throttle.recordFailure(tenantId, [key], POLICY, T0)
    }),
  )
  const [state] = await stores[0]!.throttle.read(tenantId, [key])
  assert.equal(state?.failures, racers, `${racers} concurrent failures counted as ${state?.failures}`)
  assert.equal(state?.lockedUntil, lockUntil(racers, POLICY, T0))
}

/** ThrottleAccess rules 1-3: exact counts, the lockout formula, tenant scope. */
export const throttleSuite = suite('throttle', 'failed sign-in counts are exact and lock out as specified', [
  {
    name: 'each call counts one failure per key, and the lockout follows lockUntil',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const [a, b] = [newKey(), newKey('user')]
      for (let n = 1; n <= 6; n++) {
        const now = at(n * 10)
        const states = await store.throttle.recordFailure(tenantId, [a, b, a], POLICY, now)
        const expected = { failures: n, lockedUntil: lockUntil(n, POLICY, now) }
        assert.deepEqual(
          states,
          [
            { key: a, ...expected },
            { key: b, ...expected },
          ],
          `call ${n} with keys [a, b, a]: each distinct key counts exactly one failure per call (a key repeated in one call counts once) and is returned once, in first-seen order`,
        )
      }
      assert.equal(lockUntil(2, POLICY, T0), null, 'no lock below lockAfter')
      assert.equal(lockUntil(6, POLICY, T0), at(4000).toISOString(), 'capped at maxLockMs')
      const unknown = newKey()
      assert.deepEqual(
        (await store.throttle.read(tenantId, [b, unknown])).map((s) => [s.key, s.failures]),
        [[b, 6]],
        'read returns stored keys only',
      )
    },
  },
  {
    name: 'a failure a full window after the last one starts the count again at 1',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const key = newKey()
      for (let n = 0; n < 4; n++) await store.throttle.recordFailure(tenantId, [key], POLICY, at(n))
      const inside = await store.throttle.recordFailure(tenantId, [key], POLICY, at(3 + POLICY.windowMs - 1))
      assert.equal(inside[0]?.failures, 5, 'a failure inside the window adds to the count')
      // Exactly windowMs after the last failure: "windowMs or more before now" restarts the count.
      const later = at(3 + POLICY.windowMs - 1 + POLICY.windowMs)
      const [state] = await store.throttle.recordFailure(tenantId, [key], POLICY, later)
      assert.deepEqual(
        state,
        { key, failures: 1, lockedUntil: null },
        'a failure exactly windowMs after the last one starts the count again at 1',
      )
    },
  },
  {
    name: 'clear forgets keys; keys are scoped to their tenant',
    async run(ctx) {
      const store = await ctx.store()
      const [t1, t2] = [await ctx.newTenant(store), await ctx.newTenant(store)]
      const [key, other] = [newKey(), newKey()]
      await store.throttle.recordFailure(t1, [key, other], POLICY, T0)
      assert.deepEqual(await store.throttle.read(t2, [key]), [], 'another tenant sees no state')
      await store.throttle.clear(t2, [key])
      await store.throttle.recordFailure(t2, [key], POLICY, T0)
      assert.equal((await store.throttle.read(t1, [key]))[0]?.failures, 1, 'untouched by the other tenant')
      await store.throttle.clear(t1, [key])
      assert.deepEqual(
        (await store.throttle.read(t1, [key, other])).map((s) => s.key),
        [other],
      )
      assert.equal((await store.throttle.read(t2, [key]))[0]?.failures, 1)
    },
  },
  {
    name: '16 concurrent failures on one key count exactly 16',
    async run(ctx) {
      const store = await ctx.store()
      await failureRace([store], await ctx.newTenant(store), 16)
    },
  },
  {
    name: '16 concurrent failures from 4 store instances count exactly 16',
    requires: ['concurrentInstances'],
    needsSharedStores: true,
    async run(ctx) {
      const stores = await ctx.sharedStores(4, { ownDatabase: false })
      for (const s of stores) await s.migrate()
      await failureRace(stores, await ctx.newTenant(stores[0]), 16)
    },
  },
  {
    name: 'malformed keys, policies and times are VALIDATION and change nothing',
    async run(ctx) {
      const store = await ctx.store()
      const tenantId = await ctx.newTenant(store)
      const key = newKey()
      const bad: [unknown, unknown, unknown][] = [
        [['ann@example.com'], POLICY, T0],
        [[`identifier:${'a'.repeat(63)}`], POLICY, T0],
        [key, POLICY, T0],
        [Array.from({ length: 9 }, () => newKey()), POLICY, T0],
        [[key], { ...POLICY, lockAfter: 0 }, T0],
        [[key], { ...POLICY, baseLockMs: -1 }, T0],
        [[key], { ...POLICY, maxLockMs: 10 }, T0],
        [[key], null, T0],
        [[key], POLICY, new Date(Number.NaN)],
        [[key], POLICY, '2026-01-01'],
      ]
      for (const [keys, policy, now] of bad) {
        await expectCode(
          // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
          store.throttle.recordFailure(tenantId, keys as any, policy as any, now as any),
          ErrorCode.VALIDATION,
          `recordFailure(${JSON.stringify([keys, policy, now]).slice(0, 80)})`,
        )
      }
      // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
      await expectCode(store.throttle.read('not a tenant', [key] as any), ErrorCode.VALIDATION, 'read')
      assert.deepEqual(await store.throttle.read(tenantId, [key]), [])
    },
  },
])
