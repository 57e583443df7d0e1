import { ErrorCode } from '../../domain/errors.js'
import type { UserEngineStore } from '../../store/store.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectCode } from '../shared/expect.js'

/** Every call a service or relay makes, on a closed store. */
function calls(store: UserEngineStore, tenantId: string): [string, () => Promise<unknown>][] {
  const key = `identifier:${'0'.repeat(64)}`
  const event = freshId('evt')
  return [
    ['readiness()', () => store.readiness()],
    ['migrate()', () => store.migrate()],
    ['transaction()', () => store.transaction(tenantId, async (tx) => tx.getTenant())],
    ['getTenant()', () => store.getTenant(tenantId)],
    ['listTenants()', () => store.listTenants()],
    ['getUser()', () => store.getUser(tenantId, freshId('u'))],
    ['findUserByIdentifier()', () => store.findUserByIdentifier(tenantId, 'email', 'a@example.com')],
    ['getIdentifier()', () => store.getIdentifier(tenantId, 'email', 'a@example.com')],
    ['listUsers()', () => store.listUsers(tenantId)],
    [
      'listUsers() by prefix, with identifiers',
      () =>
        store.listUsers(tenantId, {
          identifierPrefix: { kind: 'email', prefix: 'a' },
          includeIdentifiers: true,
        }),
    ],
    ['countUsers()', () => store.countUsers(tenantId)],
    ['listAudit()', () => store.listAudit(tenantId)],
    ['findSession()', () => store.findSession(tenantId, freshId('ses'))],
    ['purgeExpired()', () => store.purgeExpired(tenantId, { before: new Date().toISOString(), limit: 10 })],
    ['listSealedFactors()', () => store.listSealedFactors(tenantId, { excludeKeyId: 'k1', limit: 10 })],
    ['diagnostics()', () => store.diagnostics()],
    ['outbox.claim()', () => store.outbox.claim({ owner: 'closed-check', limit: 1, leaseMs: 1000 })],
    ['outbox.lag()', () => store.outbox.lag()],
    ['outbox.acknowledge()', () => store.outbox.acknowledge('closed-check', [event])],
    [
      'outbox.fail()',
      () =>
        store.outbox.fail({
          owner: 'closed-check',
          eventId: event,
          error: 'x',
          maxAttempts: 3,
          backoffMs: 0,
        }),
    ],
    ['outbox.release()', () => store.outbox.release('closed-check', [event])],
    [
      'outbox.settle()',
      () =>
        store.outbox.settle({
          owner: 'closed-check',
          items: [{ tenantId, eventId: event, outcome: 'published' }],
          maxAttempts: 3,
        }),
    ],
    ['outbox.retryDead()', () => store.outbox.retryDead(event)],
    ['outbox.discardDead()', () => store.outbox.discardDead(event)],
    ['outbox.purgePublished()', () => store.outbox.purgePublished(0, 10)],
    ['outbox.get()', () => store.outbox.get(event)],
    ['outbox.listForAggregate()', () => store.outbox.listForAggregate(tenantId, freshId('u'))],
    ['outbox.list()', () => store.outbox.list({ status: 'dead' })],
    ['throttle.read()', () => store.throttle.read(tenantId, [key])],
    [
      'throttle.recordFailure()',
      () =>
        store.throttle.recordFailure(
          tenantId,
          [key],
          { lockAfter: 5, baseLockMs: 1000, maxLockMs: 10_000, windowMs: 60_000 },
          new Date(),
        ),
    ],
    ['throttle.clear()', () => store.throttle.clear(tenantId, [key])],
    // Optional in the contract: checked when the store offers it.
    ...(store.outbox.subscribe === undefined
      ? []
      : [
          ['outbox.subscribe()', () => store.outbox.subscribe!(() => {})] as [string, () => Promise<unknown>],
        ]),
  ]
}

/** Store rule 7 after close(): every call is STORE_CLOSED, never a driver's TypeError or a hang. */
export const closedStoreSuite = suite('closed-store', 'a closed store refuses every call with STORE_CLOSED', [
  {
    name: 'after close(), every method rejects with STORE_CLOSED, and close() again is a no-op',
    async run(ctx) {
      const store = await ctx.emptyStore()
      await store.migrate()
      const tenantId = await ctx.newTenant(store)
      await store.close()
      for (const [name, call] of calls(store, tenantId)) {
        await expectCode(call(), ErrorCode.STORE_CLOSED, `${name} on a closed store`)
      }
      try {
        await store.close()
      } catch (error) {
        assert.fail(
          `a second close() threw (${error instanceof Error ? error.message : String(error)}): close() must be idempotent, a second call does nothing and resolves`,
        )
      }
    },
  },
])
