// A unit of work called directly (a service's own transaction, a migration script) is held to what the engine
// writes: a record the engine would never write, an event payload with no JSON form or a version past the
// database's integers is VALIDATION on every store, and nothing is written.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { foldIdentifier } from '../../src/domain/validation.js'
import type { UserEngineStore } from '../../src/store/store.js'
import type { UnitOfWork } from '../../src/store/unit-of-work.js'
import { ADAPTERS } from '../support/adapters.js'

// What a JavaScript caller can pass where the types say JSON.
const untyped = (payload: unknown) => payload as Record<string, number>

for (const adapter of ADAPTERS) {
  const skip = await adapter.skip()
  describe(`direct unit-of-work writes are held to the engine's records on ${adapter.name}`, { skip }, () => {
    let store: UserEngineStore
    let release: () => Promise<void>
    let tenantId: string
    let userId: string
    before(async () => {
      ;({ store, release } = await adapter.migratedStore())
      tenantId = newId('ten')
      userId = newId('usr')
      await store.transaction(tenantId, async (tx) => {
        tx.putTenant({ id: tenantId, name: 'T', status: 'active' }, { mustNotExist: true })
        tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
        tx.putIdentifier(
          { id: newId('idn'), userId, kind: 'email', value: 'taken@example.com', verified: false },
          { mustNotExist: true },
        )
      })
    })
    after(async () => release())

    const refused: Array<[string, (tx: UnitOfWork) => void]> = [
      [
        'an email differing from a taken one only in case',
        (tx) =>
          tx.putIdentifier(
            { id: newId('idn'), userId, kind: 'email', value: 'TAKEN@example.com', verified: false },
            { mustNotExist: true },
          ),
      ],
      [
        'an identifier of an unknown kind',
        (tx) =>
          tx.putIdentifier(
            { id: newId('idn'), userId, kind: 'phone' as 'email', value: '555', verified: false },
            { mustNotExist: true },
          ),
      ],
      [
        'a user status the engine does not know',
        (tx) => tx.putUser({ id: userId, status: 'root' as 'active' }, { expectedVersion: 1 }),
      ],
      [
        'a tenant status the engine does not know',
        (tx) => tx.putTenant({ id: tenantId, name: 'T', status: 'gone' as 'active' }, { expectedVersion: 1 }),
      ],
      [
        'a profile attribute named __proto__',
        (tx) =>
          tx.putProfile(
            { userId, attributes: JSON.parse('{"__proto__": "x"}') as Record<string, string> },
            { mustNotExist: true },
          ),
      ],
      [
        'nested audit data',
        (tx) => tx.appendAudit({ action: 'x', data: { a: { b: [1] } as unknown as string } }),
      ],
      ['an event payload holding a bigint', (tx) => tx.enqueue({ type: 'x', payload: untyped({ a: 1n }) })],
      [
        'a cyclic event payload',
        (tx) => {
          const payload: Record<string, unknown> = {}
          payload.self = payload
          tx.enqueue({ type: 'x', payload: untyped(payload) })
        },
      ],
      [
        'an event payload whose toJSON throws with a secret in its message',
        (tx) =>
          tx.enqueue({
            type: 'x',
            payload: untyped({
              a: {
                toJSON() {
                  throw new Error('HUNTER2-secret')
                },
              },
            }),
          }),
      ],
      [
        'an event payload nested 100 deep',
        (tx) => {
          let payload: Record<string, unknown> = {}
          for (let i = 0; i < 100; i++) payload = { n: payload }
          tx.enqueue({ type: 'x', payload: untyped(payload) })
        },
      ],
      [
        'an expectedVersion past the database integers',
        (tx) => tx.putUser({ id: userId, status: 'disabled' }, { expectedVersion: 2 ** 31 }),
      ],
    ]

    test('each is VALIDATION, shows nothing of the value, and writes nothing', async () => {
      const before = await store.diagnostics()
      for (const [what, write] of refused) {
        await assert.rejects(
          store.transaction(tenantId, async (tx) => {
            tx.appendAudit({ action: 'probe' })
            write(tx)
          }),
          (error: Error & { code?: string }) => {
            assert.equal(error.code, 'VALIDATION', `${what}: ${error.message}`)
            assert.ok(!`${error.message}${JSON.stringify(error)}`.includes('HUNTER2'), what)
            return true
          },
          what,
        )
      }
      assert.deepEqual((await store.diagnostics()).counts, before.counts)
      const user = await store.getUser(tenantId, userId)
      assert.equal(user?.status, 'active')
      assert.equal(user?.version, 1)
    })

    test('an identifier value the engine normalized is taken as it is, a mark it left decomposed included', async () => {
      // 'H' + U+0331 lower-cases to 'h' + U+0331, which NFKC (so folding again) would compose to U+1E96.
      const value = foldIdentifier('H\u0331ans@example.com')
      assert.notEqual(foldIdentifier(value), value, 'the fold is not idempotent for this value')
      const id = newId('idn')
      await store.transaction(tenantId, async (tx) => {
        tx.putUser({ id: userId, status: 'active' }, { expectedVersion: (await tx.getUser(userId))!.version })
        tx.putIdentifier({ id, userId, kind: 'email', value, verified: false }, { mustNotExist: true })
      })
      // Verifying it rewrites the stored value unchanged.
      await store.transaction(tenantId, async (tx) => {
        tx.putUser({ id: userId, status: 'active' }, { expectedVersion: (await tx.getUser(userId))!.version })
        tx.putIdentifier({ id, userId, kind: 'email', value, verified: true }, { expectedVersion: 1 })
      })
      assert.equal((await store.getIdentifier(tenantId, 'email', value))?.verified, true)
    })

    test('a payload is stored as its JSON: a Date as ISO text, an undefined property dropped', async () => {
      const at = new Date('2026-01-02T03:04:05.000Z')
      await store.transaction(tenantId, async (tx) => {
        tx.putUser({ id: userId, status: 'active' }, { expectedVersion: (await tx.getUser(userId))!.version })
        tx.enqueue({
          type: 'json.shape',
          userId,
          payload: { at, gone: undefined, n: 1 } as unknown as Record<string, number>,
        })
      })
      const events = await store.outbox.listForAggregate(tenantId, userId)
      const event = events.find((e) => e.type === 'json.shape')
      assert.deepEqual(event?.payload, { at: '2026-01-02T03:04:05.000Z', n: 1 })
    })
  })
}
