// One case of the records suite: the times a commit stores are the unit's (CommitPlan.now), not the store's.
import { Secret } from '../../domain/secret.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import { type CaseDefinition, freshId } from '../shared/context.js'
import { assert, sleep } from '../shared/expect.js'
import { putIdentifier } from '../shared/fixtures.js'

// The unit waits this long between starting and committing, so a commit stamped with the store's own clock
// lands outside the window in which the unit's time was taken.
const GAP_MS = 120

interface Stamp {
  readonly what: string
  readonly at: string | undefined
}

/**
 * Runs `write` in a unit that waits GAP_MS before buffering, and returns the window (ms) in which the unit's
 * time (`CommitPlan.now`, taken when the unit starts) must lie.
 */
async function timedCommit(
  store: { transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> },
  tenantId: string,
  write: (tx: UnitOfWork) => void | Promise<void>,
): Promise<{ from: number; to: number }> {
  const from = Date.now()
  let to = Number.NaN
  await store.transaction(tenantId, async (tx) => {
    to = Date.now()
    await sleep(GAP_MS)
    await write(tx)
  })
  return { from, to }
}

/** Every stamp is one instant, inside the window: the unit's time, whatever the store's clock says. */
function expectUnitTime(stamps: readonly Stamp[], window: { from: number; to: number }, commit: string) {
  const iso = (ms: number) => new Date(ms).toISOString()
  const when =
    window.from === window.to ? iso(window.from) : `between ${iso(window.from)} and ${iso(window.to)}`
  const rule = `a commit stores CommitPlan.now (taken when the unit started: ${when}; the commit came ${GAP_MS} ms or more later), never the store's clock at commit`
  for (const { what, at } of stamps) {
    const ms = Date.parse(at ?? '')
    assert.ok(ms >= window.from && ms <= window.to, `${commit}: ${what} is ${at}: ${rule}`)
  }
  const distinct = [...new Set(stamps.map((s) => Date.parse(s.at ?? '')))]
  assert.equal(
    distinct.length,
    1,
    `${commit}: its records, audit records and events carry ${distinct.length} different times: ${rule}`,
  )
}

export const commitTimeCase: CaseDefinition = {
  name: 'records, audit records and events carry the unit’s time (CommitPlan.now), not the store’s clock',
  async run(ctx) {
    const store = await ctx.store()
    const tenantId = ctx.unknownTenantId()
    const userId = freshId('u')
    const factorId = freshId('fac')
    const email = `${freshId('m')}@example.com`.toLowerCase()
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
    const sessionId = freshId('ses')
    const tokenId = freshId('tok')
    const created = await timedCommit(store, tenantId, (tx) => {
      tx.putTenant({ id: tenantId, name: 'Clock', status: 'active' }, { mustNotExist: true })
      tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
      putIdentifier(tx, freshId('idn'), userId, 'email', email)
      tx.putProfile({ userId, attributes: { a: 1 } }, { mustNotExist: true })
      tx.putFactor(
        { id: factorId, userId, kind: 'password', secret: new Secret({ hash: 'h' }), state: {} },
        { mustNotExist: true },
      )
      const tokenHash = new Secret('0'.repeat(64))
      tx.putSession(
        {
          id: sessionId,
          userId,
          tokenHash,
          methods: ['password'],
          lastSeenAt: expiresAt,
          expiresAt,
          absoluteExpiresAt: expiresAt,
        },
        { mustNotExist: true },
      )
      tx.putToken(
        { id: tokenId, userId, purpose: 'password_reset', tokenHash, expiresAt, data: {} },
        { mustNotExist: true },
      )
      tx.appendAudit({ action: 'user.created', userId })
      tx.enqueue({ type: 'user.created', userId })
      tx.enqueue({ type: 'tenant.created' })
    })
    const recordStamps = async (fields: readonly ('createdAt' | 'updatedAt')[]) => {
      const stamps: Stamp[] = []
      const add = (what: string, record: { createdAt: string; updatedAt: string } | null | undefined) => {
        assert.ok(record, `${what}: the committed record`)
        for (const field of fields) stamps.push({ what: `${what}.${field}`, at: record[field] })
      }
      add('tenant', await store.getTenant(tenantId))
      add('user', await store.getUser(tenantId, userId))
      add('identifier', await store.getIdentifier(tenantId, 'email', email))
      await store.transaction(tenantId, async (tx) => {
        add('profile', await tx.getProfile(userId))
        add('factor', (await tx.listFactors(userId))[0])
        add('session', await tx.getSession(sessionId))
        add('token', await tx.getToken(tokenId))
      })
      return stamps
    }
    const audit = (await store.listAudit(tenantId)).items
    const events = [
      ...(await store.outbox.listForAggregate(tenantId, userId)),
      ...(await store.outbox.listForAggregate(tenantId, tenantId)),
    ]
    assert.equal(audit.length, 1, 'the audit record')
    assert.equal(events.length, 2, 'the events')
    expectUnitTime(
      [
        ...(await recordStamps(['createdAt', 'updatedAt'])),
        ...audit.map((a) => ({ what: 'audit record occurredAt', at: a.occurredAt })),
        ...events.map((e) => ({ what: `event ${e.type} occurredAt`, at: e.occurredAt })),
      ],
      created,
      'the creating commit',
    )
    // An update stores its own unit's time as updatedAt and keeps createdAt.
    const createdAt = (await store.getUser(tenantId, userId))?.createdAt
    const updated = await timedCommit(store, tenantId, async (tx) => {
      const [user, profile, factor, session, token] = await Promise.all([
        tx.getUser(userId),
        tx.getProfile(userId),
        tx.listFactors(userId).then((f) => f[0]),
        tx.getSession(sessionId),
        tx.getToken(tokenId),
      ])
      assert.ok(user && profile && factor && session && token, 'the records to update')
      tx.putUser({ id: userId, status: 'disabled' }, { expectedVersion: user.version })
      tx.putProfile({ userId, attributes: { a: 2 } }, { expectedVersion: profile.version })
      tx.putFactor({ ...factor, state: { n: 1 } }, { expectedVersion: factor.version })
      tx.putSession({ ...session, lastSeenAt: expiresAt }, { expectedVersion: session.version })
      tx.putToken({ ...token, data: { n: 1 } }, { expectedVersion: token.version })
      tx.putTenant({ id: tenantId, name: 'Clock 2', status: 'active' }, { expectedVersion: 1 })
      tx.appendAudit({ action: 'user.disabled', userId })
      tx.enqueue({ type: 'user.disabled', userId })
    })
    const later = (await store.listAudit(tenantId)).items.filter((a) => a.action === 'user.disabled')
    const disabled = (await store.outbox.listForAggregate(tenantId, userId)).filter(
      (e) => e.type === 'user.disabled',
    )
    const identifier = await store.getIdentifier(tenantId, 'email', email)
    expectUnitTime(
      [
        ...(await recordStamps(['updatedAt'])).filter((s) => !s.what.startsWith('identifier')),
        ...later.map((a) => ({ what: 'audit record occurredAt', at: a.occurredAt })),
        ...disabled.map((e) => ({ what: `event ${e.type} occurredAt`, at: e.occurredAt })),
      ],
      updated,
      'the updating commit',
    )
    assert.equal((await store.getUser(tenantId, userId))?.createdAt, createdAt, 'an update changed createdAt')
    assert.equal(identifier?.updatedAt, identifier?.createdAt, 'a record the update did not write changed')
  },
}
