// One case of the records suite (unit-of-work rule 8): a write the engine never makes is VALIDATION when it is
// buffered, and nothing of its unit is written. Its own file because it tries one write of each kind.
import { ErrorCode } from '../../domain/errors.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import type { CaseDefinition } from '../shared/context.js'
import { freshId } from '../shared/context.js'
import { assert, expectCode } from '../shared/expect.js'
import { seedUser } from '../shared/fixtures.js'

// What a JavaScript caller can pass where the types say JSON.
const untyped = <T>(value: unknown) => value as T

export const engineShapedWritesCase: CaseDefinition = {
  name: 'a write the engine never makes (an unknown status or kind, a value not normalized, nested audit data, no JSON form) is VALIDATION and writes nothing',
  async run(ctx) {
    const store = await ctx.store()
    const tenantId = await ctx.newTenant(store)
    const { userId } = await seedUser(store, tenantId)
    const user = await store.getUser(tenantId, userId)
    assert.ok(user, 'the seeded user')
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const bad: Array<[string, (tx: UnitOfWork) => void]> = [
      [
        'a user status the engine does not know',
        (tx) => tx.putUser({ id: userId, status: untyped('root') }, { expectedVersion: user.version }),
      ],
      [
        'an identifier kind the engine does not know',
        (tx) =>
          tx.putIdentifier(
            { id: freshId('i'), userId, kind: untyped('phone'), value: '555', verified: false },
            { mustNotExist: true },
          ),
      ],
      [
        'an identifier value not in normalized form (upper case)',
        (tx) =>
          tx.putIdentifier(
            { id: freshId('i'), userId, kind: 'email', value: 'Upper@Example.com', verified: false },
            { mustNotExist: true },
          ),
      ],
      ['nested audit data', (tx) => tx.appendAudit({ action: 'x', userId, data: untyped({ a: { b: 1 } }) })],
      [
        'an event payload holding a bigint',
        (tx) => tx.enqueue({ type: 'x', userId, payload: untyped({ n: 1n }) }),
      ],
      ['a cyclic event payload', (tx) => tx.enqueue({ type: 'x', userId, payload: untyped(cyclic) })],
      [
        'an expectedVersion past 2^31 - 1',
        (tx) => tx.putUser({ id: userId, status: 'disabled' }, { expectedVersion: 2 ** 31 }),
      ],
    ]
    const before = (await store.outbox.listForAggregate(tenantId, userId)).length
    for (const [what, write] of bad) {
      await expectCode(
        store.transaction(tenantId, async (tx) => {
          // An audit record first, so a store that drops the bad write still has something to commit.
          tx.appendAudit({ action: 'engine-shaped.probe' })
          write(tx)
        }),
        ErrorCode.VALIDATION,
        what,
      )
    }
    const after = await store.getUser(tenantId, userId)
    assert.equal(after?.version, user.version, 'a refused unit bumped the user version')
    assert.equal(after?.status, 'active', 'a refused unit changed the user')
    assert.equal(
      (await store.outbox.listForAggregate(tenantId, userId)).length,
      before,
      'a refused unit wrote an event',
    )
    assert.equal(
      await store.getIdentifier(tenantId, 'email', 'Upper@Example.com'),
      null,
      'a refused identifier was stored',
    )
    const audit = await store.listAudit(tenantId, { limit: 500 })
    assert.ok(
      !audit.items.some((a) => a.action === 'engine-shaped.probe'),
      "a refused unit's audit record was written",
    )
  },
}
