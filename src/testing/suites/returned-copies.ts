// One case of the records suite: what a store returns belongs to the caller. Its own file because it reads
// every kind of record, through the store and through a unit of work.
import { createHash, randomBytes } from 'node:crypto'
import { Secret } from '../../domain/secret.js'
import type { UserEngineStore } from '../../store/store.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import { type CaseDefinition, freshId } from '../shared/context.js'
import { assert } from '../shared/expect.js'
import { changeUser, seedUser } from '../shared/fixtures.js'
import { mutateDeeply, snapshot } from '../shared/mutate.js'

type Read = readonly [what: string, read: () => Promise<unknown>]

const MESSAGE =
  'mutating a returned record changed what the store holds: return copies (or frozen objects), never the store’s own objects'

/** Each read twice: mutate what the first returned, then the second must equal the first as it was. */
async function expectUnchanged(reads: readonly Read[], when: string): Promise<void> {
  for (const [what, read] of reads) {
    const returned = await read()
    const before = snapshot(returned)
    mutateDeeply(returned)
    assert.deepEqual(snapshot(await read()), before, `${what}${when}: ${MESSAGE}`)
  }
}

function unitReads(tx: UnitOfWork, ids: Ids): Read[] {
  return [
    ['tx.getTenant', () => tx.getTenant()],
    ['tx.getUser', () => tx.getUser(ids.userId)],
    ['tx.findIdentifier', () => tx.findIdentifier('email', ids.email)],
    ['tx.listIdentifiers', () => tx.listIdentifiers(ids.userId)],
    ['tx.getProfile', () => tx.getProfile(ids.userId)],
    ['tx.listFactors (secret and state)', () => tx.listFactors(ids.userId)],
    ['tx.getSession', () => tx.getSession(ids.sessionId)],
    ['tx.listSessions', () => tx.listSessions(ids.userId)],
    ['tx.getToken', () => tx.getToken(ids.tokenId)],
    ['tx.listTokens', () => tx.listTokens(ids.userId)],
  ]
}

interface Ids {
  readonly tenantId: string
  readonly userId: string
  readonly email: string
  readonly sessionId: string
  readonly tokenId: string
}

/**
 * A user holding one record of every type, with nested values wherever a type allows them: one user, email,
 * username, profile, factor, session, token, audit record and pending event.
 */
export async function seed(store: UserEngineStore, tenantId: string): Promise<Ids> {
  const hash = () => new Secret(createHash('sha256').update(randomBytes(32)).digest('hex'))
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
  const seeded = await seedUser(store, tenantId, {
    email: `copies.${randomBytes(4).toString('hex')}@example.com`,
    username: `copies_${randomBytes(4).toString('hex')}`,
    attributes: { name: 'Ann', age: 41, admin: false },
    factor: {
      kind: 'totp',
      secret: { sealed: 'seed', nested: [1, { ok: true }] },
      state: { lastStep: 7, used: [0, 3], nested: { step: 1 } },
    },
    events: 0,
    audits: 0,
  })
  const { userId } = seeded
  const sessionId = freshId('ses')
  const tokenId = freshId('tok')
  await changeUser(store, tenantId, userId, async (tx) => {
    const [factor] = await tx.listFactors(userId)
    if (factor) tx.putFactor({ ...factor, keyId: 'conformance-old-key' }, { expectedVersion: factor.version })
    tx.putSession(
      {
        id: sessionId,
        userId,
        tokenHash: hash(),
        methods: ['password', 'totp'],
        lastSeenAt: new Date().toISOString(),
        expiresAt,
        absoluteExpiresAt: expiresAt,
      },
      { mustNotExist: true },
    )
    tx.putToken(
      { id: tokenId, userId, purpose: 'password_reset', tokenHash: hash(), expiresAt, data: { note: 'ids' } },
      { mustNotExist: true },
    )
    tx.appendAudit({ action: 'user.changed', userId, data: { count: 2, reason: 'test' } })
    tx.enqueue({ type: 'user.changed', userId, payload: { n: 1, list: [1, 'x'], nested: { ok: true } } })
  })
  return { tenantId, userId, email: seeded.email!, sessionId, tokenId }
}

export const returnedCopiesCase: CaseDefinition = {
  name: 'returned records are the caller’s: mutating them, deeply, changes nothing the store holds',
  async run(ctx) {
    // A database of its own: the case claims events, and lists tenants.
    const store = await ctx.isolatedStore()
    const tenantId = await ctx.newTenant(store)
    const ids = await seed(store, tenantId)
    const { userId, email } = ids
    const [event] = await store.outbox.listForAggregate(tenantId, userId)
    assert.ok(event, 'the seeded event')
    await expectUnchanged(
      [
        ['getTenant', () => store.getTenant(tenantId)],
        ['listTenants', () => store.listTenants()],
        ['getUser', () => store.getUser(tenantId, userId)],
        ['getIdentifier', () => store.getIdentifier(tenantId, 'email', email)],
        ['findUserByIdentifier', () => store.findUserByIdentifier(tenantId, 'email', email)],
        ['listUsers with identifiers', () => store.listUsers(tenantId, { includeIdentifiers: true })],
        [
          'listUsers by prefix',
          () => store.listUsers(tenantId, { identifierPrefix: { kind: 'email', prefix: 'copies.' } }),
        ],
        ['listAudit (the append-only trail)', () => store.listAudit(tenantId)],
        ['findSession', () => store.findSession(tenantId, ids.sessionId)],
        [
          'listSealedFactors (secret and state)',
          () => store.listSealedFactors(tenantId, { excludeKeyId: 'conformance-new-key', limit: 10 }),
        ],
        ['outbox.get (payload)', () => store.outbox.get(event.id)],
        ['outbox.listForAggregate', () => store.outbox.listForAggregate(tenantId, userId)],
        ['outbox.list', () => store.outbox.list({ status: 'pending', tenantId })],
      ],
      '',
    )
    // A claim hands out entries too; what it returned must not reach the stored (now leased) event.
    const claimed = await store.outbox.claim({ owner: 'copies', limit: 10, leaseMs: 30_000 })
    const claimedIds = claimed.map((e) => e.id)
    const leased = snapshot(await store.outbox.get(event.id))
    mutateDeeply(claimed)
    assert.deepEqual(snapshot(await store.outbox.get(event.id)), leased, `outbox.claim: ${MESSAGE}`)
    await store.outbox.release('copies', claimedIds)
    // Unit-of-work reads, in a unit that commits nothing and in one that rolls back.
    await store.transaction(tenantId, async (tx) => expectUnchanged(unitReads(tx, ids), ''))
    const rolledBack = new Error('conformance: roll back')
    await assert.rejects(
      store.transaction(tenantId, async (tx) => {
        await expectUnchanged(unitReads(tx, ids), ' (in a unit that then rolls back)')
        throw rolledBack
      }),
      (error) => error === rolledBack,
    )
    // And what a later unit reads: the mutations above must not have reached the stored records.
    await store.transaction(tenantId, async (tx) => {
      const [factor] = await tx.listFactors(userId)
      assert.deepEqual(
        [factor?.state, factor?.secret.reveal()],
        [
          { lastStep: 7, used: [0, 3], nested: { step: 1 } },
          { sealed: 'seed', nested: [1, { ok: true }] },
        ],
        `the factor after the units above: ${MESSAGE}`,
      )
    })
  },
}
