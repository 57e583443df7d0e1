import { ErrorCode } from '../../domain/errors.js'
import type { UserEngineStore } from '../../store/store.js'
import { barrier } from '../shared/barrier.js'
import { suite } from '../shared/context.js'
import { assert, errorCode } from '../shared/expect.js'
import { seedUser } from '../shared/fixtures.js'

const USED = 'the code was already used'

/**
 * `racers` units each read the factor, wait until all have read, then consume the same single-use state
 * with the version they saw. Exactly one commit may win; the rest get VERSION_CONFLICT.
 */
async function consumeRace(stores: readonly UserEngineStore[], tenantId: string, racers: number) {
  const seeded = await seedUser(stores[0]!, tenantId, {
    factor: { kind: 'recovery_codes', secret: { hashes: ['h0', 'h1'] }, state: { used: [] } },
  })
  const { userId, factorId } = seeded
  const allRead = barrier(racers)
  const results = await Promise.allSettled(
    Array.from({ length: racers }, (_, racer) =>
      stores[racer % stores.length]!.transaction(tenantId, async (tx) => {
        const user = await tx.getUser(userId)
        const factor = (await tx.listFactors(userId)).find((f) => f.id === factorId)
        assert.ok(user && factor, 'racer read the user and factor')
        await allRead()
        const used = factor.state.used as number[]
        if (used.includes(0)) throw new Error(USED)
        tx.putFactor(
          { ...factor, state: { used: [...used, 0], by: racer } },
          { expectedVersion: factor.version },
        )
        tx.putUser({ id: userId, status: user.status }, { expectedVersion: user.version })
        tx.appendAudit({ action: 'factor.recovery_code_used', userId, data: { racer } })
        tx.enqueue({ type: 'user.recovery_code_used', userId, payload: { racer } })
        return racer
      }),
    ),
  )
  const winners = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const losers = results.flatMap((r) =>
    r.status === 'rejected'
      ? [
          r.reason instanceof Error && r.reason.message === USED
            ? USED
            : (errorCode(r.reason) ?? String(r.reason)),
        ]
      : [],
  )
  assert.equal(winners.length, 1, `${winners.length} racers consumed the single-use state`)
  // A racer that (on a store running units in turn) read the consumed state refuses by itself.
  assert.ok(
    losers.every((code) => code === ErrorCode.VERSION_CONFLICT || code === USED),
    `losers failed with ${[...new Set(losers)].join(', ')}, not only VERSION_CONFLICT`,
  )
  const store = stores[0]!
  await store.transaction(tenantId, async (tx) => {
    const [factor] = await tx.listFactors(userId)
    assert.deepEqual([factor?.version, factor?.state], [2, { used: [0], by: winners[0] }])
  })
  assert.equal((await store.getUser(tenantId, userId))?.version, 2)
  const audit = await store.listAudit(tenantId, { userId })
  assert.equal(
    audit.items.filter((a) => a.action === 'factor.recovery_code_used').length,
    1,
    'audit of losers',
  )
  const events = await store.outbox.listForAggregate(tenantId, userId)
  assert.equal(events.filter((e) => e.type === 'user.recovery_code_used').length, 1, 'events of losers')
}

/** `writers` units each add one attribute, re-reading and retrying on VERSION_CONFLICT. */
async function profileRace(stores: readonly UserEngineStore[], tenantId: string, writers: number) {
  const { userId } = await seedUser(stores[0]!, tenantId, { attributes: { base: true } })
  const firstRead = barrier(writers)
  let conflicts = 0
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const store = stores[w % stores.length]!
      for (let attempt = 0; ; attempt++) {
        try {
          await store.transaction(tenantId, async (tx) => {
            const user = await tx.getUser(userId)
            const profile = await tx.getProfile(userId)
            assert.ok(user && profile)
            if (attempt === 0) await firstRead()
            tx.putProfile(
              { userId, attributes: { ...profile.attributes, [`w${w}`]: w } },
              { expectedVersion: profile.version },
            )
            tx.putUser({ id: userId, status: user.status }, { expectedVersion: user.version })
          })
          return
        } catch (error) {
          if (errorCode(error) !== ErrorCode.VERSION_CONFLICT || attempt >= 200) throw error
          conflicts++
        }
      }
    }),
  )
  await stores[0]!.transaction(tenantId, async (tx) => {
    const profile = await tx.getProfile(userId)
    const keys = Object.keys(profile?.attributes ?? {}).sort()
    const expected = ['base', ...Array.from({ length: writers }, (_, w) => `w${w}`)].sort()
    assert.deepEqual(keys, expected, `lost updates (${conflicts} conflicts retried)`)
    assert.equal(profile?.version, writers + 1)
  })
  assert.equal((await stores[0]!.getUser(tenantId, userId))?.version, writers + 1)
}

/** UnitOfWork rule 4 under contention: optimistic preconditions make racing commits safe. */
export const concurrencySuite = suite(
  'concurrency',
  'racing commits: one winner per version, no lost updates',
  [
    {
      name: '16 racers consuming one single-use factor state: exactly one commit wins',
      async run(ctx) {
        await consumeRace([await ctx.store()], await ctx.newTenant(), 16)
      },
    },
    {
      name: 'racing profile updates with re-read and retry: no update is lost',
      async run(ctx) {
        await profileRace([await ctx.store()], await ctx.newTenant(), 8)
      },
    },
    {
      name: 'racers on separate store instances: exactly one wins, and retried updates are not lost',
      requires: ['concurrentInstances'],
      needsSharedStores: true,
      async run(ctx) {
        const stores = await ctx.sharedStores(4, { ownDatabase: false })
        for (const s of stores) await s.migrate()
        await consumeRace(stores, await ctx.newTenant(stores[0]), 16)
        await profileRace(stores, await ctx.newTenant(stores[1]), 8)
      },
    },
  ],
)
