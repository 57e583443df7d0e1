// Long on purpose: one suite, the outbox contract's cases (claims, leases, settle, order, purge) side by
// side; each case is short and shares the suite's fixtures.
import { ErrorCode } from '../../domain/errors.js'
import type { OutboxEntry } from '../../domain/records.js'
import { LAST_ERROR_CHARS } from '../../store/outbox-checks.js'
import type { ClaimOptions, UserEngineStore } from '../../store/store.js'
import { deferred } from '../shared/barrier.js'
import { type CaseContext, freshId, SUBSCRIBE_SKIP, suite } from '../shared/context.js'
import { assert, expectCode, sleep, within } from '../shared/expect.js'
import { changeUser, seedUser } from '../shared/fixtures.js'
import { ConformanceSkip } from '../shared/types.js'

const LONG_LEASE = 30_000
// How old a published event must be for the purge case's cut.
const PURGE_AGE_MS = 400

/**
 * Claims for `owner` and keeps only this case's tenants' events, giving the rest back at once. Outbox cases
 * run on a database of their own, so there should be no others; this keeps them honest if there are.
 */
async function claimOwn(
  store: UserEngineStore,
  tenants: string | readonly string[],
  owner: string,
  options: Omit<Partial<ClaimOptions>, 'owner'> = {},
): Promise<OutboxEntry[]> {
  const mine = new Set(typeof tenants === 'string' ? [tenants] : tenants)
  const claimed = await store.outbox.claim({
    ...options,
    owner,
    limit: options.limit ?? 1000,
    leaseMs: options.leaseMs ?? LONG_LEASE,
  })
  const foreign = claimed.filter((e) => !mine.has(e.tenantId)).map((e) => e.id)
  if (foreign.length > 0) await store.outbox.release(owner, foreign)
  return claimed.filter((e) => mine.has(e.tenantId))
}

const label = (e: OutboxEntry) => `${e.aggregateId}#${e.sequence}.${e.position}`
const byOrder = (a: OutboxEntry, b: OutboxEntry) => a.sequence - b.sequence || a.position - b.position

/** A user whose events are seq 1 pos 0, seq 1 pos 1, seq 2 pos 0 ... `commits` commits, `perCommit` each. */
async function userWithEvents(store: UserEngineStore, tenantId: string, commits: number, perCommit = 1) {
  const { userId } = await seedUser(store, tenantId, { events: perCommit })
  for (let c = 1; c < commits; c++) {
    await changeUser(store, tenantId, userId, (tx) => {
      for (let i = 0; i < perCommit; i++) tx.enqueue({ type: 'user.changed', userId, payload: { c, i } })
    })
  }
  const events = await store.outbox.listForAggregate(tenantId, userId)
  return { userId, events }
}

/**
 * Runs two relays on `stores` until every event of `tenantId` is published, logging each event as it is
 * claimed. A head-only claim means the claim order of one user's events is its publish order.
 */
async function drain(stores: readonly UserEngineStore[], tenantId: string, total: number) {
  const log: OutboxEntry[] = []
  const published = new Set<string>()
  const relay = async (store: UserEngineStore, owner: string) => {
    for (let i = 0; i < 5000 && published.size < total; i++) {
      const got = await claimOwn(store, tenantId, owner, { limit: 3 })
      if (got.length === 0) {
        await new Promise((resolve) => setImmediate(resolve))
        continue
      }
      log.push(...got)
      await Promise.resolve()
      const acked = await store.outbox.acknowledge(
        owner,
        got.map((e) => e.id),
      )
      assert.deepEqual([...acked].sort(), got.map((e) => e.id).sort(), `${owner} lost a lease it held`)
      for (const id of acked) published.add(id)
    }
  }
  await Promise.all(stores.map((store, i) => relay(store, `relay-${i}`)))
  assert.equal(published.size, total, 'the relays did not drain every event')
  return log
}

function assertPerUserOrder(log: readonly OutboxEntry[], all: readonly OutboxEntry[]): void {
  const ids = log.map((e) => e.id)
  assert.equal(new Set(ids).size, ids.length, 'an event was claimed twice')
  const users = new Set(all.map((e) => e.aggregateId))
  for (const userId of users) {
    const claimed = log.filter((e) => e.aggregateId === userId).map(label)
    const expected = all
      .filter((e) => e.aggregateId === userId)
      .sort(byOrder)
      .map(label)
    assert.deepEqual(claimed, expected, `events of ${userId} were claimed out of order`)
  }
}

/** One event claimed by relay-a with the case's short lease, returned once that lease has lapsed. */
async function claimAndLetLapse(ctx: CaseContext, store: UserEngineStore, tenantId: string) {
  await userWithEvents(store, tenantId, 1)
  const [held] = await claimOwn(store, tenantId, 'relay-a', { leaseMs: ctx.leaseMs })
  assert.ok(held)
  await sleep(ctx.leaseMs * 2 + 20)
  return held
}

/** relay-a's acknowledge, fail, release and settle after its lease lapsed: each must report that nothing changed. */
async function expectLateSettleIgnored(store: UserEngineStore, tenantId: string, eventId: string) {
  assert.deepEqual(await store.outbox.acknowledge('relay-a', [eventId]), [], 'a late acknowledge counted')
  const failed = await store.outbox.fail({
    owner: 'relay-a',
    eventId,
    error: 'late',
    maxAttempts: 1,
    backoffMs: 0,
  })
  assert.equal(failed, null, 'a late fail counted')
  assert.equal(
    await store.outbox.release('relay-a', [eventId]),
    0,
    'a late release counted: release gives back only leases the owner still holds (leaseUntil after now), so a release after the lease expired counts nothing, even when the event still names the owner',
  )
  const settled = await store.outbox.settle({
    owner: 'relay-a',
    maxAttempts: 3,
    items: [{ tenantId, eventId, outcome: 'published' }],
  })
  assert.equal(
    settled.get(eventId),
    'lost',
    'a late settle applied its item: settle, like acknowledge, applies an item only while the owner holds the lease (leaseUntil after now), and reports the others lost',
  )
}

async function setup(ctx: CaseContext) {
  const store = await ctx.isolatedStore()
  return { store, tenantId: await ctx.newTenant(store) }
}

/** Labels of `events` grouped per aggregate, in the order claimed. */
function perAggregate(events: readonly OutboxEntry[]): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const e of events) {
    out[e.aggregateId] ??= []
    out[e.aggregateId]!.push(label(e))
  }
  return out
}

const ids = (events: readonly OutboxEntry[]) => events.map((e) => e.id)

/** OutboxAccess rules 1-5 and UnitOfWork rule 5. */
export const outboxSuite = suite(
  'outbox',
  'events are ordered per aggregate and claimed by state, a ready prefix at a time',
  [
    {
      name: "events carry the user's new version as sequence and their position within the commit",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const a = await seedUser(store, tenantId, { events: 2 })
        const b = await seedUser(store, tenantId, { events: 0 })
        await changeUser(store, tenantId, a.userId, (tx) => {
          tx.enqueue({
            type: 'a.first',
            userId: a.userId,
            payload: { n: 1, list: [1, 'x'], nested: { ok: true } },
          })
          tx.enqueue({ type: 'b.only', userId: b.userId })
          tx.enqueue({ type: 'a.second', userId: a.userId })
          tx.putUser({ id: b.userId, status: 'active' }, { expectedVersion: 1 })
        })
        const events = await store.outbox.listForAggregate(tenantId, a.userId)
        assert.deepEqual(
          events.map((e) => [e.type, e.sequence, e.position]),
          [
            ['user.created', 1, 0],
            ['user.created', 1, 1],
            ['a.first', 2, 0],
            ['a.second', 2, 1],
          ],
        )
        const first = events[2]!
        assert.deepEqual(first.payload, { n: 1, list: [1, 'x'], nested: { ok: true } })
        assert.deepEqual(
          [first.tenantId, first.aggregateType, first.aggregateId, first.status, first.attempts],
          [tenantId, 'user', a.userId, 'pending', 0],
        )
        assert.deepEqual([first.leaseOwner, first.publishedAt, first.lastError], [null, null, null])
        assert.ok(!Number.isNaN(Date.parse(first.occurredAt)), 'occurredAt')
        assert.equal(new Set(events.map((e) => e.id)).size, 4, 'event ids are not unique')
        const bEvents = await store.outbox.listForAggregate(tenantId, b.userId)
        assert.deepEqual(
          bEvents.map((e) => [e.type, e.sequence, e.position]),
          [['b.only', 2, 0]],
        )
        assert.equal((await store.outbox.get(first.id))?.type, 'a.first')
        assert.equal(await store.outbox.get(freshId('evt')), null)
      },
    },
    {
      name: "tenant-level events take the tenant's new version as sequence",
      async run(ctx) {
        const store = await ctx.isolatedStore()
        const tenantId = ctx.unknownTenantId()
        await store.transaction(tenantId, async (tx) => {
          tx.putTenant({ id: tenantId, name: 'T', status: 'active' }, { mustNotExist: true })
          tx.enqueue({ type: 'tenant.created' })
          tx.enqueue({ type: 'tenant.configured' })
        })
        await store.transaction(tenantId, async (tx) => {
          tx.putTenant({ id: tenantId, name: 'T2', status: 'active' }, { expectedVersion: 1 })
          tx.enqueue({ type: 'tenant.renamed' })
        })
        await expectCode(
          store.transaction(tenantId, async (tx) => tx.enqueue({ type: 'tenant.orphan' })),
          ErrorCode.INVALID_UNIT_OF_WORK,
          'a tenant event without a tenant write',
        )
        const events = await store.outbox.listForAggregate(tenantId, tenantId)
        assert.deepEqual(
          events.map((e) => [e.aggregateType, e.aggregateId, e.type, e.sequence, e.position]),
          [
            ['tenant', tenantId, 'tenant.created', 1, 0],
            ['tenant', tenantId, 'tenant.configured', 1, 1],
            ['tenant', tenantId, 'tenant.renamed', 2, 0],
          ],
        )
      },
    },
    {
      name: 'claim returns only the head of each aggregate, and the next event once the head is published',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const a = await userWithEvents(store, tenantId, 2, 2)
        const b = await userWithEvents(store, tenantId, 1, 1)
        const first = await claimOwn(store, tenantId, 'relay-a')
        // Events are labelled aggregateId#sequence.position.
        assert.deepEqual(
          first.map(label).sort(),
          [label(a.events[0]!), label(b.events[0]!)].sort(),
          'the first claim returns exactly the head (first pending event) of each of the two users',
        )
        assert.deepEqual(await claimOwn(store, tenantId, 'relay-b'), [], 'a non-head event was claimed')
        await store.outbox.acknowledge(
          'relay-a',
          first.map((e) => e.id),
        )
        const order = [label(a.events[0]!)]
        for (let step = 0; step < 10; step++) {
          const held = await claimOwn(store, tenantId, step % 2 ? 'relay-a' : 'relay-b')
          if (held.length === 0) break
          assert.equal(held.length, 1, 'more than one event of one user claimed at once')
          order.push(...held.map(label))
          await store.outbox.acknowledge(
            held[0]!.leaseOwner!,
            held.map((e) => e.id),
          )
        }
        assert.deepEqual(
          order,
          a.events.map(label),
          "one user's events, claimed one at a time as each is published, come in (sequence, position) order",
        )
      },
    },
    {
      name: 'a held lease blocks a second claim; release gives it back without counting an attempt',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { events } = await userWithEvents(store, tenantId, 1)
        const [held] = await claimOwn(store, tenantId, 'relay-a')
        assert.equal(held?.id, events[0]!.id)
        assert.equal(held?.leaseOwner, 'relay-a')
        assert.ok(held?.leaseUntil && Date.parse(held.leaseUntil) > Date.parse(held.occurredAt), 'leaseUntil')
        assert.deepEqual(await claimOwn(store, tenantId, 'relay-b'), [], 'a leased event was claimed again')
        assert.equal(await store.outbox.release('relay-b', [held.id]), 0, 'a non-holder released a lease')
        assert.equal(await store.outbox.release('relay-a', [held.id]), 1)
        const [again] = await claimOwn(store, tenantId, 'relay-b')
        assert.deepEqual([again?.id, again?.attempts, again?.leaseOwner], [held.id, 0, 'relay-b'])
      },
    },
    {
      name: 'an expired lease can be claimed by another relay',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        await userWithEvents(store, tenantId, 1)
        const [held] = await claimOwn(store, tenantId, 'relay-a', { leaseMs: ctx.leaseMs })
        assert.ok(held)
        await sleep(ctx.leaseMs * 2 + 20)
        const [taken] = await claimOwn(store, tenantId, 'relay-b', { leaseMs: LONG_LEASE })
        assert.equal(taken?.id, held.id, 'an event whose lease expired was not claimable')
        assert.equal(taken?.leaseOwner, 'relay-b')
      },
    },
    {
      name: 'acknowledge publishes only for the lease holder',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { events } = await userWithEvents(store, tenantId, 2)
        const [held] = await claimOwn(store, tenantId, 'relay-a')
        assert.ok(held)
        assert.deepEqual(
          await store.outbox.acknowledge('relay-b', [held.id]),
          [],
          'a non-holder acknowledged',
        )
        assert.equal((await store.outbox.get(held.id))?.status, 'pending')
        assert.deepEqual(await store.outbox.acknowledge('relay-a', [held.id]), [held.id])
        const published = await store.outbox.get(held.id)
        assert.equal(published?.status, 'published')
        assert.ok(published?.publishedAt && !Number.isNaN(Date.parse(published.publishedAt)), 'publishedAt')
        assert.deepEqual(await store.outbox.acknowledge('relay-a', [held.id]), [], 'acknowledged twice')
        const next = await claimOwn(store, tenantId, 'relay-b')
        assert.deepEqual(next.map(label), [label(events[1]!)], 'a published event was claimed again')
      },
    },
    {
      name: 'a late acknowledge, fail, release or settle, after the lease expired and another relay claimed, changes nothing',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const held = await claimAndLetLapse(ctx, store, tenantId)
        const [taken] = await claimOwn(store, tenantId, 'relay-b')
        assert.equal(taken?.id, held.id)
        await expectLateSettleIgnored(store, tenantId, held.id)
        const entry = await store.outbox.get(held.id)
        assert.deepEqual([entry?.status, entry?.attempts, entry?.leaseOwner], ['pending', 0, 'relay-b'])
        assert.deepEqual(await store.outbox.acknowledge('relay-b', [held.id]), [held.id])
      },
    },
    {
      name: 'an acknowledge, fail, release or settle after the lease expired changes nothing, even when nobody took the event over',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const held = await claimAndLetLapse(ctx, store, tenantId)
        // No other relay claimed: the lease is merely expired, and a late call must still not count.
        await expectLateSettleIgnored(store, tenantId, held.id)
        const entry = await store.outbox.get(held.id)
        assert.deepEqual([entry?.status, entry?.attempts], ['pending', 0])
        const [again] = await claimOwn(store, tenantId, 'relay-b')
        assert.equal(again?.id, held.id, 'the event is claimable again')
      },
    },
    {
      name: 'purgePublished deletes only published events older than the cut, never pending ones',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        await userWithEvents(store, tenantId, 3)
        const [first] = await claimOwn(store, tenantId, 'relay-a')
        assert.ok(first)
        assert.deepEqual(await store.outbox.acknowledge('relay-a', [first.id]), [first.id])
        await sleep(30)
        const purged = await store.outbox.purgePublished(0, 1000)
        assert.ok(purged >= 1, 'the published event was purged')
        const left = await store.outbox.listForAggregate(tenantId, first.aggregateId)
        assert.deepEqual(
          left.map((e) => [e.sequence, e.status]),
          [
            [2, 'pending'],
            [3, 'pending'],
          ],
          'pending events survive a purge',
        )
      },
    },
    {
      name: 'settle: a published event gets publishedAt (purgePublished takes at most limit a call), a failed one waits its backoffMs',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        for (let i = 0; i < 4; i++) await userWithEvents(store, tenantId, 1)
        const [later, ...held] = await claimOwn(store, tenantId, 'relay-a')
        assert.ok(later && held.length === 3, 'four heads claimed')
        const settled = await store.outbox.settle({
          owner: 'relay-a',
          items: [
            ...held.map((e) => ({ tenantId, eventId: e.id, outcome: 'published' as const })),
            { tenantId, eventId: later.id, outcome: 'failed' as const, error: 'later', backoffMs: 600_000 },
          ],
          maxAttempts: 3,
        })
        assert.deepEqual(
          held.map((e) => settled.get(e.id)),
          ['published', 'published', 'published'],
        )
        assert.equal(settled.get(later.id), 'pending')
        const backedOff = await store.outbox.get(later.id)
        assert.ok(
          backedOff && Date.parse(backedOff.availableAt) - Date.now() > 500_000,
          `a failed settle item with backoffMs 600000 is due again at ${backedOff?.availableAt}: it must wait its backoff`,
        )
        assert.deepEqual(await claimOwn(store, tenantId, 'relay-b'), [], 'the backed-off event was claimed')
        for (const e of held) {
          const got = await store.outbox.get(e.id)
          assert.ok(
            got?.publishedAt,
            `settle published ${label(e)} without a publishedAt: it could never be purged`,
          )
        }
        await sleep(30)
        assert.equal(
          await store.outbox.purgePublished(0, 2),
          2,
          'purgePublished(0, 2) deletes exactly 2 of 3',
        )
        assert.equal(await store.outbox.purgePublished(0, 2), 1, 'the next call deletes the last one')
        assert.equal(await store.outbox.purgePublished(0, 2), 0, 'then nothing is left')
      },
    },
    {
      name: 'purgePublished cuts by when an event was published, not when it occurred',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { userId } = await userWithEvents(store, tenantId, 1)
        // Occurred well before the cut, published just now: a purge by occurredAt would delete it.
        await sleep(PURGE_AGE_MS + 300)
        const [event] = await claimOwn(store, tenantId, 'relay-a')
        assert.ok(event)
        assert.deepEqual(await store.outbox.acknowledge('relay-a', [event.id]), [event.id])
        await store.outbox.purgePublished(PURGE_AGE_MS, 1000)
        assert.equal(
          (await store.outbox.get(event.id))?.status,
          'published',
          'an event published just now was purged: purgePublished(olderThanMs) cuts by publishedAt (the store clock when it was published), never occurredAt',
        )
        await sleep(PURGE_AGE_MS + 50)
        await store.outbox.purgePublished(PURGE_AGE_MS, 1000)
        assert.deepEqual(
          await store.outbox.listForAggregate(tenantId, userId),
          [],
          'an event published longer than olderThanMs ago survived the purge',
        )
      },
    },
    {
      name: 'fail backs off: the event is not claimable until its backoff has passed',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        await userWithEvents(store, tenantId, 2)
        const [held] = await claimOwn(store, tenantId, 'relay-a')
        assert.ok(held)
        const status = await store.outbox.fail({
          owner: 'relay-a',
          eventId: held.id,
          error: 'broker unavailable',
          maxAttempts: 5,
          backoffMs: ctx.leaseMs,
        })
        assert.equal(status, 'pending')
        const entry = await store.outbox.get(held.id)
        assert.deepEqual(
          [entry?.attempts, entry?.leaseOwner, entry?.lastError],
          [1, null, 'broker unavailable'],
        )
        // Both times come from the store's clock: the claim was at leaseUntil - LONG_LEASE, the fail later.
        const claimedAt = Date.parse(held.leaseUntil!) - LONG_LEASE
        assert.ok(
          entry && Date.parse(entry.availableAt) >= claimedAt + ctx.leaseMs,
          'availableAt not pushed back',
        )
        // A claim may come after the backoff on a loaded machine; the store's own times say whether it came
        // before (the claim at leaseUntil - LONG_LEASE, the event available at availableAt).
        const early = await claimOwn(store, tenantId, 'relay-b')
        for (const e of early) {
          assert.ok(
            Date.parse(e.leaseUntil!) - LONG_LEASE >= Date.parse(entry.availableAt),
            'claimed during the backoff',
          )
        }
        if (early.length === 0) await sleep(ctx.leaseMs * 2 + 20)
        const [again] = early.length > 0 ? early : await claimOwn(store, tenantId, 'relay-b')
        assert.deepEqual([again?.id, again?.attempts], [held.id, 1], 'not claimable after the backoff')
      },
    },
    {
      name: "after maxAttempts an event is dead and blocks its user's later events until retryDead",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { events } = await userWithEvents(store, tenantId, 2)
        const [e1, e2] = events
        assert.ok(e1 && e2)
        for (const [attempt, expected] of [
          [1, 'pending'],
          [2, 'dead'],
        ] as const) {
          const [held] = await claimOwn(store, tenantId, 'relay-a')
          assert.equal(held?.id, e1.id, `claim for attempt ${attempt}`)
          const status = await store.outbox.fail({
            owner: 'relay-a',
            eventId: e1.id,
            error: `attempt ${attempt}`,
            maxAttempts: 2,
            backoffMs: 0,
          })
          assert.equal(status, expected, `status after attempt ${attempt}`)
        }
        assert.deepEqual(
          [(await store.outbox.get(e1.id))?.status, (await store.outbox.get(e1.id))?.attempts],
          ['dead', 2],
        )
        assert.deepEqual(
          await claimOwn(store, tenantId, 'relay-a'),
          [],
          'an event behind a dead one was claimed',
        )
        const lag = await store.outbox.lag()
        assert.ok(lag.dead >= 1 && lag.pending >= 1, 'lag counts the dead and the blocked event')
        assert.equal(await store.outbox.retryDead(e2.id), false, 'retryDead of an event that is not dead')
        assert.equal(await store.outbox.retryDead(e1.id), true)
        const retried = await store.outbox.get(e1.id)
        assert.deepEqual(
          [retried?.status, retried?.attempts],
          ['pending', 0],
          'retryDead makes a dead event pending again with attempts reset to 0 (kept attempts would dead-letter it again at its next failure)',
        )
        assert.equal(
          retried?.lastError,
          'attempt 2',
          "retryDead keeps the event's lastError until the next attempt replaces it (the operator retrying it still sees why it died)",
        )
        const [again] = await claimOwn(store, tenantId, 'relay-a')
        assert.equal(again?.id, e1.id)
        await store.outbox.acknowledge('relay-a', [e1.id])
        assert.deepEqual(
          (await claimOwn(store, tenantId, 'relay-a')).map((e) => e.id),
          [e2.id],
        )
      },
    },
    {
      name: `fail and settle keep the first ${LAST_ERROR_CHARS} characters of an error as lastError, NUL and unpaired surrogates replaced by U+FFFD`,
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        await userWithEvents(store, tenantId, 1)
        // A relay passes what its publisher threw; a store that keeps all of it grows rows without bound.
        const long = (seed: number) =>
          Array.from({ length: 4 * LAST_ERROR_CHARS }, (_, i) =>
            String.fromCharCode(97 + ((i + seed) % 26)),
          ).join('')
        const [held] = await claimOwn(store, tenantId, 'relay-a')
        assert.ok(held)
        await store.outbox.fail({
          owner: 'relay-a',
          eventId: held.id,
          error: long(0),
          maxAttempts: 5,
          backoffMs: 0,
        })
        assert.equal((await store.outbox.get(held.id))?.lastError, long(0).slice(0, LAST_ERROR_CHARS), 'fail')
        const [again] = await claimOwn(store, tenantId, 'relay-a')
        assert.equal(again?.id, held.id)
        await store.outbox.settle({
          owner: 'relay-a',
          items: [{ tenantId, eventId: held.id, outcome: 'failed', error: long(7), backoffMs: 0 }],
          maxAttempts: 5,
        })
        const [listed] = await store.outbox.listForAggregate(tenantId, held.aggregateId)
        assert.equal(listed?.lastError, long(7).slice(0, LAST_ERROR_CHARS), 'settle')
        // Text no database column can hold as given: NUL (Postgres text refuses it) and unpaired surrogates
        // (not UTF-8). A well-formed pair (an emoji) stays.
        const raw = (by: string) => `${by}:\u0000 lone high \uD800, lone low \uDC00, pair \u{1F600}`
        const kept = (by: string) => `${by}:\uFFFD lone high \uFFFD, lone low \uFFFD, pair \u{1F600}`
        const rule =
          'lastError keeps the error with NUL and each unpaired surrogate replaced by U+FFFD (the provider guide: settle and fail)'
        const [third] = await claimOwn(store, tenantId, 'relay-a')
        assert.equal(third?.id, held.id)
        await store.outbox.fail({
          owner: 'relay-a',
          eventId: held.id,
          error: raw('fail'),
          maxAttempts: 5,
          backoffMs: 0,
        })
        assert.equal((await store.outbox.get(held.id))?.lastError, kept('fail'), `fail: ${rule}`)
        const [fourth] = await claimOwn(store, tenantId, 'relay-a')
        assert.equal(fourth?.id, held.id)
        await store.outbox.settle({
          owner: 'relay-a',
          items: [{ tenantId, eventId: held.id, outcome: 'failed', error: raw('settle'), backoffMs: 0 }],
          maxAttempts: 5,
        })
        assert.equal((await store.outbox.get(held.id))?.lastError, kept('settle'), `settle: ${rule}`)
      },
    },
    {
      name: 'lag: oldestPendingAgeMs is the age of the oldest pending event since it occurred, backed off or not',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        assert.deepEqual(await store.outbox.lag(), { pending: 0, dead: 0, oldestPendingAgeMs: 0 }, 'empty')
        // A dead event is not pending: it counts as dead, and its age is no pending event's age.
        await userWithEvents(store, tenantId, 1)
        const [poison] = await claimOwn(store, tenantId, 'relay-a')
        assert.ok(poison)
        const poisoned = await store.outbox.fail({
          owner: 'relay-a',
          eventId: poison.id,
          error: 'poison',
          maxAttempts: 1,
          backoffMs: 0,
        })
        assert.equal(poisoned, 'dead', 'fail with maxAttempts 1: the first failure makes the event dead')
        await sleep(ctx.leaseMs)
        assert.deepEqual(
          await store.outbox.lag(),
          { pending: 0, dead: 1, oldestPendingAgeMs: 0 },
          'lag with one dead event and nothing pending: oldestPendingAgeMs is the age of the oldest pending event, 0 when none is pending; a dead event counts in dead only',
        )
        const { events } = await userWithEvents(store, tenantId, 1)
        const occurred = Date.parse(events[0]!.occurredAt)
        const [held] = await claimOwn(store, tenantId, 'relay-a')
        assert.ok(held)
        // Leased: still pending (a relay holding it has not published it yet).
        assert.deepEqual(
          [(await store.outbox.lag()).pending, (await store.outbox.lag()).dead],
          [1, 1],
          'lag counts a leased event as pending (and the dead one as dead)',
        )
        // Backed off for an hour: still pending, and as old as it has been since it occurred.
        await store.outbox.fail({
          owner: 'relay-a',
          eventId: held.id,
          error: 'later',
          maxAttempts: 5,
          backoffMs: 3_600_000,
        })
        await sleep(ctx.leaseMs)
        const lag = await store.outbox.lag()
        assert.deepEqual([lag.pending, lag.dead], [1, 1], 'a backed-off event is pending')
        // The age is on the store's clock (`occurredAt` on the host's): allow the two a little skew.
        const waited = Date.now() - occurred
        assert.ok(
          lag.oldestPendingAgeMs >= ctx.leaseMs / 2 && lag.oldestPendingAgeMs <= waited + 5_000,
          `oldestPendingAgeMs ${lag.oldestPendingAgeMs} after ${waited} ms: the age of the oldest pending event since it occurred (not since it became due, and no dead event's)`,
        )
      },
    },
    {
      name: "discardDead unblocks the dead event's user",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { events } = await userWithEvents(store, tenantId, 2)
        const [e1, e2] = events
        assert.ok(e1 && e2)
        await claimOwn(store, tenantId, 'relay-a')
        const status = await store.outbox.fail({
          owner: 'relay-a',
          eventId: e1.id,
          error: 'poison',
          maxAttempts: 1,
          backoffMs: 0,
        })
        assert.equal(status, 'dead')
        assert.deepEqual(await claimOwn(store, tenantId, 'relay-a'), [])
        assert.equal(await store.outbox.discardDead(e1.id), true)
        assert.equal((await store.outbox.get(e1.id))?.status, 'discarded')
        assert.equal(await store.outbox.discardDead(e1.id), false, 'discarded twice')
        assert.equal(await store.outbox.retryDead(e1.id), false, 'a discarded event was retried')
        assert.deepEqual(
          (await claimOwn(store, tenantId, 'relay-a')).map((e) => e.id),
          [e2.id],
        )
      },
    },
    {
      name: 'an event from a rolled-back commit is never claimed',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const existing = await seedUser(store, tenantId, { events: 0 })
        const thrower = freshId('u')
        await store
          .transaction(tenantId, async (tx) => {
            tx.putUser({ id: thrower, status: 'active' }, { mustNotExist: true })
            tx.enqueue({ type: 'user.created', userId: thrower })
            throw new Error('roll back')
          })
          .catch(() => {})
        await expectCode(
          store.transaction(tenantId, async (tx) => {
            tx.enqueue({ type: 'user.changed', userId: existing.userId })
            tx.putUser({ id: existing.userId, status: 'active' }, { expectedVersion: 5 })
          }),
          ErrorCode.VERSION_CONFLICT,
          'a conflicting commit with an event',
        )
        const control = await seedUser(store, tenantId, { events: 1 })
        const claimed = await claimOwn(store, tenantId, 'relay-a')
        assert.deepEqual(
          claimed.map((e) => e.aggregateId),
          [control.userId],
          'only the committed event is claimable',
        )
      },
    },
    {
      // A store that writes a commit's events before its checks (or its other rows) and takes them back on
      // failure shows them to a relay in between: claims run the whole time the failing commits are in flight.
      name: 'an event of a commit that fails is never claimable, not even while that commit runs',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const existing = await seedUser(store, tenantId, { events: 0 })
        let settled = false
        const commits = (async () => {
          for (let i = 0; i < 5; i++) {
            await expectCode(
              store.transaction(tenantId, async (tx) => {
                tx.enqueue({ type: 'user.changed', userId: existing.userId })
                tx.putUser({ id: existing.userId, status: 'active' }, { expectedVersion: 5 })
              }),
              ErrorCode.VERSION_CONFLICT,
              'a commit with an event and a stale user write',
            )
          }
        })().then(
          () => {
            settled = true
          },
          (error: unknown) => {
            settled = true
            return { error }
          },
        )
        // The user has no committed event, so any event of its aggregate comes from a failing commit.
        const leaked = new Set<string>()
        for (let claims = 0; !settled || claims === 0; claims++) {
          const got = await claimOwn(store, tenantId, 'relay-a')
          for (const e of got) if (e.aggregateId === existing.userId) leaked.add(e.id)
          if (got.length > 0) {
            await store.outbox.release(
              'relay-a',
              got.map((e) => e.id),
            )
          }
          await new Promise((resolve) => setImmediate(resolve))
        }
        const failure = await commits
        if (failure) throw failure.error
        assert.equal(
          leaked.size,
          0,
          `a relay claimed ${leaked.size} event(s) of commits that then failed with VERSION_CONFLICT: a commit's events must become claimable only with its other writes, when it commits`,
        )
        assert.deepEqual(
          await store.outbox.listForAggregate(tenantId, existing.userId),
          [],
          'a failed commit left events behind',
        )
      },
    },
    {
      name: 'a commit that began earlier but lands later is claimed, not skipped',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const lateUser = freshId('u')
        const entered = deferred()
        const gate = deferred()
        const late = store.transaction(tenantId, async (tx) => {
          expectNullUser(await tx.getUser(lateUser))
          tx.putUser({ id: lateUser, status: 'active' }, { mustNotExist: true })
          tx.enqueue({ type: 'user.created', userId: lateUser })
          entered.resolve()
          await gate.promise
        })
        try {
          await within(entered.promise, 5000, 'the late unit never reached its barrier')
          // While the late unit is open, another commit lands and the relay publishes past it.
          const early = await within(
            seedUser(store, tenantId, { events: 2 }),
            5000,
            'a commit waited for an open unit of work (UnitOfWork rule 6)',
          )
          for (let i = 0; i < 2; i++) {
            const claimed = await claimOwn(store, tenantId, 'relay-a')
            assert.deepEqual(
              claimed.map((e) => e.aggregateId),
              [early.userId],
            )
            await store.outbox.acknowledge(
              'relay-a',
              claimed.map((e) => e.id),
            )
          }
        } finally {
          gate.resolve()
          await late
        }
        const claimed = await claimOwn(store, tenantId, 'relay-a')
        assert.deepEqual(
          claimed.map((e) => e.aggregateId),
          [lateUser],
          'the event of the late commit was skipped',
        )
      },
    },
    {
      name: 'concurrent claimers never hold the same event',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        for (let i = 0; i < 12; i++) await userWithEvents(store, tenantId, 1 + (i % 2))
        const held = new Map<string, string>()
        for (let round = 0; round < 4; round++) {
          const [a, b] = await Promise.all([
            claimOwn(store, tenantId, 'relay-a', { limit: 4 }),
            claimOwn(store, tenantId, 'relay-b', { limit: 4 }),
          ])
          for (const [owner, got] of [
            ['relay-a', a],
            ['relay-b', b],
          ] as const) {
            for (const e of got) {
              assert.equal(held.get(e.id), undefined, `event ${e.id} held by ${held.get(e.id)} and ${owner}`)
              assert.equal(e.leaseOwner, owner)
              held.set(e.id, owner)
            }
          }
        }
        assert.equal(held.size, 12, 'every head should be claimed exactly once')
      },
    },
    {
      name: 'per-user order holds across two claimers draining to completion',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const all: OutboxEntry[] = []
        for (let i = 0; i < 6; i++)
          all.push(...(await userWithEvents(store, tenantId, 3, 1 + (i % 2))).events)
        const log = await drain([store, store], tenantId, all.length)
        assertPerUserOrder(log, all)
      },
    },
    {
      name: 'relays on separate store instances never hold the same event and keep per-user order',
      requires: ['concurrentInstances', 'isolatedClaims'],
      needsSharedStores: true,
      async run(ctx) {
        const stores = await ctx.sharedStores(2, { ownDatabase: true })
        for (const s of stores) await s.migrate()
        const [one, two] = stores as [UserEngineStore, UserEngineStore]
        const tenantId = await ctx.newTenant(one)
        const all: OutboxEntry[] = []
        for (let i = 0; i < 8; i++)
          all.push(...(await userWithEvents(i % 2 ? one : two, tenantId, 3, 1 + (i % 2))).events)
        const [a, b] = await Promise.all([
          claimOwn(one, tenantId, 'relay-a'),
          claimOwn(two, tenantId, 'relay-b'),
        ])
        const both = a.filter((e) => b.some((o) => o.id === e.id))
        assert.deepEqual(both.map(label), [], 'two instances hold the same events')
        assert.equal(a.length + b.length, 8, 'every head claimed once')
        await one.outbox.release(
          'relay-a',
          a.map((e) => e.id),
        )
        await two.outbox.release(
          'relay-b',
          b.map((e) => e.id),
        )
        assertPerUserOrder(await drain(stores, tenantId, all.length), all)
      },
    },
    {
      name: "claim takes each aggregate's ready prefix in order, at most perAggregate, and nothing more of it meanwhile",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const a = await userWithEvents(store, tenantId, 3, 2)
        const b = await userWithEvents(store, tenantId, 2, 1)
        const first = await claimOwn(store, tenantId, 'relay-a', { perAggregate: 4 })
        assert.deepEqual(perAggregate(first), {
          [a.userId]: a.events.slice(0, 4).map(label),
          [b.userId]: b.events.map(label),
        })
        assert.ok(
          first.every((e) => e.leaseOwner === 'relay-a'),
          'a claimed event is not leased to its claimer',
        )
        assert.deepEqual(
          await claimOwn(store, tenantId, 'relay-b', { perAggregate: 10 }),
          [],
          'an event behind a held prefix was claimed by another relay',
        )
        await store.outbox.acknowledge('relay-a', ids(first))
        const rest = await claimOwn(store, tenantId, 'relay-b', { perAggregate: 10 })
        assert.deepEqual(perAggregate(rest), { [a.userId]: a.events.slice(4).map(label) })
      },
    },
    {
      name: 'a prefix stops before the first event that is not claimable: leased, not due or dead',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { events } = await userWithEvents(store, tenantId, 4)
        const [e1, e2, e3, e4] = events as [OutboxEntry, OutboxEntry, OutboxEntry, OutboxEntry]
        const held = await claimOwn(store, tenantId, 'relay-a', { perAggregate: 2 })
        assert.deepEqual(ids(held), [e1.id, e2.id])
        // e1 given back, e2 still leased: a claim from the head takes e1 and stops at e2.
        assert.equal(await store.outbox.release('relay-a', [e1.id]), 1)
        const again = await claimOwn(store, tenantId, 'relay-b', { perAggregate: 10 })
        assert.deepEqual(ids(again), [e1.id], 'the prefix ran past a leased event')
        await store.outbox.acknowledge('relay-b', [e1.id])
        await store.outbox.acknowledge('relay-a', [e2.id])
        // e3 fails with a long backoff: not due, so e4 behind it waits too.
        const [h3] = await claimOwn(store, tenantId, 'relay-a')
        assert.equal(h3?.id, e3.id)
        const status = await store.outbox.fail({
          owner: 'relay-a',
          eventId: e3.id,
          error: 'broker said no',
          maxAttempts: 2,
          backoffMs: LONG_LEASE,
        })
        assert.equal(status, 'pending')
        assert.deepEqual(await claimOwn(store, tenantId, 'relay-b', { perAggregate: 10 }), [], 'not due')
        assert.equal((await store.outbox.get(e4.id))?.leaseOwner, null)
      },
    },
    {
      name: 'the limit cuts the last prefix short, never skipping an event; newAggregates bounds how many start',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const users = [] as { userId: string; events: OutboxEntry[] }[]
        for (let i = 0; i < 3; i++) users.push(await userWithEvents(store, tenantId, 3))
        const all = users.flatMap((u) => u.events)
        const none = await claimOwn(store, tenantId, 'relay-a', { perAggregate: 3, newAggregates: 0 })
        assert.deepEqual(none, [], 'newAggregates 0 started an aggregate')
        const two = await claimOwn(store, tenantId, 'relay-a', { perAggregate: 3, newAggregates: 2 })
        assert.equal(Object.keys(perAggregate(two)).length, 2, 'newAggregates 2')
        await store.outbox.release('relay-a', ids(two))
        const cut = await claimOwn(store, tenantId, 'relay-a', { perAggregate: 3, limit: 4 })
        assert.equal(cut.length, 4)
        for (const [userId, got] of Object.entries(perAggregate(cut))) {
          const expected = all.filter((e) => e.aggregateId === userId).map(label)
          assert.deepEqual(got, expected.slice(0, got.length), `the claim of ${userId} is not a prefix`)
        }
      },
    },
    {
      name: "a continuation claims what follows the owner's last event, renews its lease, and is refused to others",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { userId, events } = await userWithEvents(store, tenantId, 6)
        const e = events as OutboxEntry[]
        const first = await claimOwn(store, tenantId, 'relay-a', {
          perAggregate: 2,
          leaseMs: ctx.leaseMs * 3,
        })
        assert.deepEqual(ids(first), ids(e.slice(0, 2)))
        const cursor = (owner: string, last: OutboxEntry) =>
          claimOwn(store, tenantId, owner, {
            perAggregate: 2,
            newAggregates: 0,
            continueAfter: [{ tenantId, eventId: last.id }],
          })
        assert.deepEqual(await cursor('relay-b', e[1]!), [], 'a continuation for an owner holding nothing')
        const next = await cursor('relay-a', e[1]!)
        assert.deepEqual(ids(next), ids(e.slice(2, 4)), 'the continuation')
        // The first claim's lease was short; the continuation renewed the first event's, so after it lapses
        // nobody can start the aggregate from its head.
        await sleep(ctx.leaseMs * 3 + 30)
        assert.deepEqual(
          await claimOwn(store, tenantId, 'relay-b', { perAggregate: 10 }),
          [],
          "the aggregate was started while its owner's continuation held it",
        )
        await store.outbox.acknowledge('relay-a', ids(next))
        // Only the first event's lease was renewed; the second's lapsed, so its acknowledgement is refused.
        assert.deepEqual(await store.outbox.acknowledge('relay-a', ids(first)), [e[0]!.id], 'renewed lease')
        assert.deepEqual(await cursor('relay-a', e[3]!), [], 'a continuation behind a lapsed lease')
        const rest = await claimOwn(store, tenantId, 'relay-b', { perAggregate: 10 })
        assert.deepEqual(ids(rest), [e[1]!.id, e[4]!.id, e[5]!.id], 'the pending events from the head')
        await store.outbox.acknowledge('relay-b', ids(rest))
        assert.deepEqual(await cursor('relay-b', e[5]!), [], 'nothing follows the last event')
        // Everything up to the cursor is published: a continuation is then a claim from the head.
        await changeUser(store, tenantId, userId, (tx) => tx.enqueue({ type: 'user.changed', userId }))
        const [later] = await store.outbox.listForAggregate(tenantId, userId).then((all) => all.slice(6))
        assert.deepEqual(
          ids(await cursor('relay-a', e[5]!)),
          [later?.id],
          'a continuation whose event and every event before it are published claims from the head, and newAggregates (0 here) does not limit it',
        )
      },
    },
    {
      name: "a continuation never shortens the head's lease: a shorter leaseMs keeps the later leaseUntil",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { events } = await userWithEvents(store, tenantId, 3)
        const [head] = await claimOwn(store, tenantId, 'relay-a', { limit: 1 })
        assert.equal(head?.id, events[0]!.id)
        const next = await claimOwn(store, tenantId, 'relay-a', {
          perAggregate: 1,
          newAggregates: 0,
          leaseMs: ctx.leaseMs,
          continueAfter: [{ tenantId, eventId: head!.id }],
        })
        assert.deepEqual(ids(next), [events[1]!.id], 'the continuation')
        const rule =
          "a continuation renews the head's lease to now + leaseMs or its current leaseUntil, whichever is later: never shortened (store contract, outbox rule 5)"
        const renewed = await store.outbox.get(head!.id)
        assert.ok(
          renewed?.leaseUntil && Date.parse(renewed.leaseUntil) >= Date.parse(head!.leaseUntil!),
          `the head's leaseUntil went from ${head!.leaseUntil} to ${renewed?.leaseUntil}: ${rule}`,
        )
        // Past the continuation's short lease the head is still held, so nobody starts the aggregate over.
        await sleep(ctx.leaseMs * 2 + 20)
        assert.deepEqual(
          await claimOwn(store, tenantId, 'relay-b', { perAggregate: 10 }),
          [],
          `another relay claimed the head while its owner's long lease ran: ${rule}`,
        )
      },
    },
    {
      name: 'a continuation counts against the claim limit like any event',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { events } = await userWithEvents(store, tenantId, 5)
        const [head] = await claimOwn(store, tenantId, 'relay-a', { limit: 1 })
        assert.equal(head?.id, events[0]!.id)
        const next = await claimOwn(store, tenantId, 'relay-a', {
          limit: 2,
          perAggregate: 10,
          newAggregates: 0,
          continueAfter: [{ tenantId, eventId: head!.id }],
        })
        assert.deepEqual(
          ids(next),
          ids(events.slice(1, 3)),
          'limit 2: the two events after the head, no more',
        )
      },
    },
    {
      name: "a continuation claims nothing once the owner's lease on the aggregate lapsed, and the head is free",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const { events } = await userWithEvents(store, tenantId, 3)
        const [held] = await claimOwn(store, tenantId, 'relay-a', { leaseMs: ctx.leaseMs })
        assert.equal(held?.id, events[0]!.id)
        await sleep(ctx.leaseMs * 2 + 20)
        const late = await claimOwn(store, tenantId, 'relay-a', {
          perAggregate: 5,
          newAggregates: 0,
          continueAfter: [{ tenantId, eventId: held.id }],
        })
        assert.deepEqual(late, [], 'a continuation behind a lapsed lease')
        const taken = await claimOwn(store, tenantId, 'relay-b', { perAggregate: 5 })
        assert.deepEqual(ids(taken), ids(events), 'another relay could not start the aggregate')
      },
    },
    {
      name: 'settle publishes, fails and releases a batch at once, only where the owner holds the lease',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const users = []
        for (let i = 0; i < 5; i++) users.push(await userWithEvents(store, tenantId, 2))
        const [pub, retry, kill, back, other] = users.map((u) => u.events) as OutboxEntry[][]
        const held = await claimOwn(store, tenantId, 'relay-a', { newAggregates: 4 })
        assert.equal(held.length, 4)
        const byUser = (events: OutboxEntry[] | undefined) => held.find((h) => h.id === events?.[0]?.id)
        const theirs = await claimOwn(store, tenantId, 'relay-b')
        assert.equal(theirs.length, 1)
        const mine = (events: OutboxEntry[] | undefined) => {
          const h = byUser(events) ?? theirs[0]!
          return { tenantId, eventId: h.id }
        }
        const result = await store.outbox.settle({
          owner: 'relay-a',
          maxAttempts: 2,
          items: [
            { ...mine(pub), outcome: 'published' },
            { ...mine(retry), outcome: 'failed', error: 'timeout', backoffMs: 0 },
            { ...mine(back), outcome: 'released' },
            { tenantId, eventId: theirs[0]!.id, outcome: 'published' },
          ],
        })
        const outcome = (events: OutboxEntry[] | undefined) => result.get(mine(events).eventId)
        assert.equal(outcome(pub), 'published')
        assert.equal(outcome(retry), 'pending')
        assert.equal(outcome(back), 'released')
        assert.equal(result.get(theirs[0]!.id), 'lost', "settling another owner's event")
        const retried = await store.outbox.get(mine(retry).eventId)
        assert.deepEqual([retried?.attempts, retried?.lastError, retried?.leaseOwner], [1, 'timeout', null])
        const released = await store.outbox.get(mine(back).eventId)
        assert.deepEqual([released?.attempts, released?.leaseOwner, released?.status], [0, null, 'pending'])
        assert.equal((await store.outbox.get(theirs[0]!.id))?.status, 'pending')
        const killed = await store.outbox.settle({
          owner: 'relay-a',
          maxAttempts: 1,
          items: [{ ...mine(kill), outcome: 'failed', error: 'poison', backoffMs: 0 }],
        })
        assert.equal(killed.get(mine(kill).eventId), 'dead')
        const again = await store.outbox.settle({
          owner: 'relay-a',
          maxAttempts: 2,
          items: [{ ...mine(pub), outcome: 'published' }],
        })
        assert.equal(again.get(mine(pub).eventId), 'lost', 'settled twice')
        assert.ok(other, 'five users')
      },
    },
    {
      name: "settle changes nothing for an item whose tenantId is not its event's, and reports it lost",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const other = await ctx.newTenant(store)
        await userWithEvents(store, tenantId, 1)
        await userWithEvents(store, tenantId, 1)
        const held = await claimOwn(store, tenantId, 'relay-a')
        assert.equal(held.length, 2)
        const [pub, failed] = held as [OutboxEntry, OutboxEntry]
        const wrongTenant = await store.outbox.settle({
          owner: 'relay-a',
          maxAttempts: 1,
          items: [
            { tenantId: other, eventId: pub.id, outcome: 'published' },
            { tenantId: other, eventId: failed.id, outcome: 'failed', error: 'x', backoffMs: 0 },
          ],
        })
        const rule =
          'a settle item names its event by tenant and id: when the tenantId is not the event’s, nothing changes and the outcome is lost'
        assert.deepEqual(
          [wrongTenant.get(pub.id), wrongTenant.get(failed.id)],
          ['lost', 'lost'],
          `settle under another tenant's id: ${rule}`,
        )
        for (const e of held) {
          const now = await store.outbox.get(e.id)
          assert.deepEqual(
            [now?.status, now?.attempts, now?.leaseOwner],
            ['pending', 0, 'relay-a'],
            `event ${label(e)} after a settle under another tenant's id: ${rule}`,
          )
        }
        const right = await store.outbox.settle({
          owner: 'relay-a',
          maxAttempts: 1,
          items: held.map((e) => ({ tenantId, eventId: e.id, outcome: 'published' as const })),
        })
        assert.deepEqual(
          held.map((e) => right.get(e.id)),
          ['published', 'published'],
          'the same items under their own tenant',
        )
      },
    },
    {
      name: 'settle: an event named twice in one call keeps its first item and is settled once',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        await userWithEvents(store, tenantId, 1)
        await userWithEvents(store, tenantId, 1)
        const held = await claimOwn(store, tenantId, 'relay-a')
        assert.equal(held.length, 2)
        const [a, b] = held as [OutboxEntry, OutboxEntry]
        const item = (e: OutboxEntry) => ({ tenantId, eventId: e.id })
        const result = await store.outbox.settle({
          owner: 'relay-a',
          maxAttempts: 5,
          items: [
            { ...item(a), outcome: 'published' },
            { ...item(b), outcome: 'failed', error: 'first', backoffMs: 0 },
            { ...item(a), outcome: 'failed', error: 'second', backoffMs: 0 },
            { ...item(b), outcome: 'published' },
            { ...item(a), outcome: 'released' },
          ],
        })
        const rule =
          'an event named twice in one settle keeps its first item and is settled once (the later items are ignored, not reported)'
        assert.deepEqual(
          [result.get(a.id), result.get(b.id), result.size],
          ['published', 'pending', 2],
          `settle's outcomes for event A (published, then failed, then released) and B (failed, then published): ${rule}`,
        )
        const [nowA, nowB] = [await store.outbox.get(a.id), await store.outbox.get(b.id)]
        assert.deepEqual(
          [nowA?.status, nowA?.attempts, nowA?.lastError],
          ['published', 0, null],
          `event A after settle: ${rule}`,
        )
        assert.deepEqual(
          [nowB?.status, nowB?.attempts, nowB?.lastError, nowB?.publishedAt],
          ['pending', 1, 'first', null],
          `event B after settle: ${rule}`,
        )
      },
    },
    {
      name: "list by tenant, or by tenant and aggregate, never shows another tenant's events",
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const other = await ctx.newTenant(store)
        // One user id in both tenants: the aggregate filter alone cannot tell them apart, the tenant can.
        const { userId } = await seedUser(store, tenantId, { events: 2 })
        await seedUser(store, other, { userId, events: 2 })
        await userWithEvents(store, other, 1)
        const listed = async (query: { tenantId?: string; aggregateId?: string }) => {
          const page = await store.outbox.list({ status: 'pending', limit: 1000, ...query })
          return page.items.map(
            (e) =>
              `${e.tenantId === tenantId ? 'mine' : 'other'}:${e.aggregateId === userId ? 'shared' : 'own'}`,
          )
        }
        assert.deepEqual(await listed({ tenantId }), ['mine:shared', 'mine:shared'], 'list({ tenantId })')
        assert.deepEqual(
          await listed({ tenantId, aggregateId: userId }),
          ['mine:shared', 'mine:shared'],
          'list({ tenantId, aggregateId })',
        )
        assert.deepEqual(
          (await listed({ tenantId: other })).sort(),
          ['other:own', 'other:shared', 'other:shared'],
          'list({ tenantId }) of the other tenant',
        )
        assert.deepEqual(
          (await listed({ aggregateId: userId })).sort(),
          ['mine:shared', 'mine:shared', 'other:shared', 'other:shared'],
          'list({ aggregateId }) across tenants',
        )
      },
    },
    {
      name: 'a list cursor resumes only its own listing: another tenant, aggregate or status is VALIDATION',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const other = await ctx.newTenant(store)
        const a = await userWithEvents(store, tenantId, 3)
        await userWithEvents(store, other, 2)
        const first = await store.outbox.list({ status: 'pending', tenantId, limit: 1 })
        const cursor = first.nextCursor
        assert.ok(cursor, 'a page of 1 of 3 events has a nextCursor')
        const next = await store.outbox.list({ status: 'pending', tenantId, limit: 1, cursor })
        assert.equal(next.items.length, 1, 'the same listing resumes with its cursor')
        const elsewhere: Array<[string, Parameters<typeof store.outbox.list>[0]]> = [
          ['another tenant', { status: 'pending', tenantId: other, cursor }],
          ['no tenant filter', { status: 'pending', cursor }],
          ['an aggregate filter added', { status: 'pending', tenantId, aggregateId: a.userId, cursor }],
          ['another status', { status: 'dead', tenantId, cursor }],
        ]
        for (const [what, query] of elsewhere) {
          await expectCode(
            store.outbox.list(query),
            ErrorCode.VALIDATION,
            `a pending listing's cursor of one tenant, passed to a listing with ${what} (a page there would skip events)`,
          )
        }
      },
    },
    {
      name: 'list finds pending and dead events by tenant and aggregate, page by page in aggregate order',
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        const a = await userWithEvents(store, tenantId, 3)
        const b = await userWithEvents(store, tenantId, 2)
        const [head] = await claimOwn(store, tenantId, 'relay-a', { newAggregates: 1, perAggregate: 1 })
        assert.ok(head)
        await store.outbox.fail({
          owner: 'relay-a',
          eventId: head.id,
          error: 'x',
          maxAttempts: 1,
          backoffMs: 0,
        })
        const dead = await store.outbox.list({ status: 'dead', tenantId })
        assert.deepEqual(ids(dead.items), [head.id])
        assert.equal(dead.nextCursor, null)
        const seen: OutboxEntry[] = []
        let cursor: string | undefined
        for (let page = 0; page < 10; page++) {
          const got = await store.outbox.list({
            status: 'pending',
            tenantId,
            limit: 2,
            ...(cursor === undefined ? {} : { cursor }),
          })
          seen.push(...got.items)
          if (got.nextCursor === null) break
          cursor = got.nextCursor
        }
        const pending = [...a.events, ...b.events].filter((e) => e.id !== head.id)
        assert.deepEqual(ids(seen).sort(), ids(pending).sort(), 'paging missed or repeated events')
        assert.ok(
          seen.every((e) => e.status === 'pending'),
          'a listed event is not pending',
        )
        const ofB = await store.outbox.list({ status: 'pending', tenantId, aggregateId: b.userId })
        assert.deepEqual(ids(ofB.items), ids(b.events), "one user's pending events, in order")
        await expectCode(
          store.outbox.list({ status: 'published' as 'dead' }),
          ErrorCode.VALIDATION,
          'a status list does not offer',
        )
        await expectCode(
          store.outbox.list({ status: 'dead', cursor: 'not-a-cursor' }),
          ErrorCode.VALIDATION,
          'a forged cursor',
        )
      },
    },
    {
      name: 'subscribe wakes a relay soon after a commit that wrote events (optional)',
      needsSubscribe: true,
      async run(ctx) {
        const { store, tenantId } = await setup(ctx)
        if (store.outbox.subscribe === undefined) throw new ConformanceSkip(SUBSCRIBE_SKIP)
        let wakes = 0
        const woke = deferred()
        const subscription = await store.outbox.subscribe(() => {
          wakes++
          woke.resolve()
        })
        try {
          const before = wakes
          await userWithEvents(store, tenantId, 1)
          await within(woke.promise, 5000, 'no wake after a commit with events')
          assert.ok(wakes > before)
        } finally {
          await subscription.close()
        }
      },
    },
  ],
)

function expectNullUser(value: unknown): void {
  assert.equal(value, null, 'the late user exists before its commit')
}
