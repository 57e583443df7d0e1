// acknowledge, release, fail and purgePublished refuse malformed input as VALIDATION, on every shipped
// store, as claim, list and settle do: a string where the id list goes must not be read character by
// character, and nothing may reach SQL as a raw database error (22023, 22021, 22P05).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createKeyring, generateKey, UserEngine } from '../../src/engine/index.js'
import { FAST_HASHING, forEachStore, rejectsWith } from '../engine/support.js'

await forEachStore('outbox inputs', ({ store }) => {
  test('malformed owners, id lists, fail options and purge ages are VALIDATION', async () => {
    const outbox = store().outbox
    const lag = await outbox.lag()
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['acknowledge string ids', () => outbox.acknowledge('relay_1', 'evt_x' as never)],
      ['acknowledge null ids', () => outbox.acknowledge('relay_1', null as never)],
      ['acknowledge NUL owner', () => outbox.acknowledge('relay\u00001', ['evt_x'])],
      ['acknowledge NUL id', () => outbox.acknowledge('relay_1', ['evt\u0000x'])],
      ['acknowledge lone surrogate id', () => outbox.acknowledge('relay_1', ['evt_\uD800'])],
      ['acknowledge number id', () => outbox.acknowledge('relay_1', [42 as never])],
      ['release string ids', () => outbox.release('relay_1', 'evt_x' as never)],
      ['release undefined owner', () => outbox.release(undefined as never, [])],
      ['fail undefined', () => outbox.fail(undefined as never)],
      [
        'fail unknown key',
        () =>
          outbox.fail({
            owner: 'relay_1',
            eventId: 'evt_x',
            error: 'e',
            maxAttempts: 3,
            backoffMs: 0,
            x: 1,
          } as never),
      ],
      [
        'fail bad maxAttempts',
        () => outbox.fail({ owner: 'relay_1', eventId: 'evt_x', error: 'e', maxAttempts: 0, backoffMs: 0 }),
      ],
      ['purgePublished negative age', () => outbox.purgePublished(-1, 10)],
      ['purgePublished NaN age', () => outbox.purgePublished(Number.NaN, 10)],
      ['purgePublished huge age', () => outbox.purgePublished(1e20, 10)],
      ['purgePublished bad limit', () => outbox.purgePublished(0, 0)],
    ]
    for (const [name, call] of calls) {
      await rejectsWith(call(), 'VALIDATION').catch((e: unknown) => {
        throw new Error(`${name}: ${String(e)}`)
      })
    }
    assert.deepEqual(await outbox.lag(), lag)
  })

  test('an error text with NUL or a cut surrogate pair is kept, cleaned, not refused by the database', async () => {
    const engine = new UserEngine({
      store: store(),
      keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
      passwordHashing: FAST_HASHING,
    })
    const tenant = await engine.createTenant('acme')
    const [event] = await store().outbox.listForAggregate(tenant.id, tenant.id)
    assert.ok(event, 'tenant.created is in the outbox')
    const owner = 'relay_input_test'
    const claimed = await store().outbox.claim({ owner, limit: 1000, leaseMs: 60_000, perAggregate: 1000 })
    assert.ok(claimed.some((e) => e.id === event.id))
    // 499 characters, then a pair the 500-character cut splits, and a NUL.
    const error = `boom\u0000${'x'.repeat(494)}\uD83D\uDE00`
    assert.equal(
      await store().outbox.fail({ owner, eventId: event.id, error, maxAttempts: 3, backoffMs: 0 }),
      'pending',
    )
    const [after] = await store().outbox.listForAggregate(tenant.id, tenant.id)
    assert.equal(after?.lastError, `boom\uFFFD${'x'.repeat(494)}\uFFFD`)
    await store().outbox.release(
      owner,
      claimed.filter((e) => e.id !== event.id).map((e) => e.id),
    )
  })
})
