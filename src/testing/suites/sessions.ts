// Long on purpose: one suite, the session and token rules' cases side by side (each case is short).
import { createHash, randomBytes } from 'node:crypto'
import { ErrorCode } from '../../domain/errors.js'
import type { SessionRecord, TokenRecord } from '../../domain/records.js'
import { Secret } from '../../domain/secret.js'
import type { UserEngineStore } from '../../store/store.js'
import type { Draft, UnitOfWork } from '../../store/unit-of-work.js'
import { barrier } from '../shared/barrier.js'
import { freshId, suite } from '../shared/context.js'
import { assert, expectCode, expectNull, sleep } from '../shared/expect.js'
import { changeUser, seedUser } from '../shared/fixtures.js'

const T0 = Date.parse('2030-01-01T00:00:00.000Z')
const at = (ms: number) => new Date(T0 + ms).toISOString()
const HOUR = 3_600_000
// The purge race: rounds, and the milliseconds over which each round's refreshes start.
const PURGE_RACE_ROUNDS = 5
const PURGE_RACE_SPREAD_MS = 6

const newHash = () => new Secret(createHash('sha256').update(randomBytes(32)).digest('hex'))

function sessionDraft(userId: string, expiresIn = HOUR, id = freshId('ses')): Draft<SessionRecord> {
  return {
    id,
    userId,
    tokenHash: newHash(),
    methods: ['password'],
    lastSeenAt: at(0),
    expiresAt: at(expiresIn),
    absoluteExpiresAt: at(24 * HOUR),
  }
}

function tokenDraft(userId: string, expiresIn = HOUR, id = freshId('tok')): Draft<TokenRecord> {
  return {
    id,
    userId,
    purpose: 'password_reset',
    tokenHash: newHash(),
    expiresAt: at(expiresIn),
    data: { note: 'ids only' },
  }
}

/** Writes records of one user in one commit that also bumps the user (rule 5). */
async function withUser(
  store: UserEngineStore,
  tenantId: string,
  userId: string,
  fn: (tx: UnitOfWork) => void | Promise<void>,
): Promise<void> {
  await changeUser(store, tenantId, userId, fn)
}

/** Store rules 10-12 and rule 5's session exception. */
export const sessionsSuite = suite(
  'sessions',
  'sessions and tokens: one-read lookup, rule 5 with the refresh exception, bounded purge, sealed factors',
  [
    {
      name: 'session and token records round-trip through units of work, reads seeing buffered writes',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        const session = sessionDraft(userId)
        const token = tokenDraft(userId)
        await withUser(store, tenantId, userId, async (tx) => {
          tx.putSession(session, { mustNotExist: true })
          tx.putToken(token, { mustNotExist: true })
          assert.equal(
            (await tx.getSession(session.id))?.version,
            1,
            'tx.getSession sees the buffered insert',
          )
          assert.deepEqual(
            (await tx.listTokens(userId)).map((t) => t.id),
            [token.id],
          )
        })
        await store.transaction(tenantId, async (tx) => {
          const s = await tx.getSession(session.id)
          assert.ok(s, 'session read back')
          assert.deepEqual(
            [s.id, s.userId, s.tenantId, s.version, s.tokenHash.reveal(), [...s.methods]],
            [session.id, userId, tenantId, 1, session.tokenHash.reveal(), ['password']],
          )
          assert.deepEqual(
            [s.lastSeenAt, s.expiresAt, s.absoluteExpiresAt],
            [session.lastSeenAt, session.expiresAt, session.absoluteExpiresAt],
          )
          const t = await tx.getToken(token.id)
          assert.ok(t, 'token read back')
          assert.deepEqual(
            [t.purpose, t.tokenHash.reveal(), t.expiresAt, t.data, t.version],
            ['password_reset', token.tokenHash.reveal(), token.expiresAt, { note: 'ids only' }, 1],
          )
          assert.deepEqual(
            (await tx.listSessions(userId)).map((x) => x.id),
            [session.id],
          )
        })
        await withUser(store, tenantId, userId, async (tx) => {
          tx.deleteToken({ id: token.id, userId }, { expectedVersion: 1 })
          expectNull(await tx.getToken(token.id), 'tx.getToken after a buffered delete')
          tx.deleteSession({ id: session.id, userId }, { expectedVersion: 1 })
        })
        await store.transaction(tenantId, async (tx) => {
          expectNull(await tx.getSession(session.id), 'deleted session')
          assert.deepEqual(await tx.listTokens(userId), [])
        })
      },
    },
    {
      name: "rule 5: a session or token insert or delete needs the user's write; a session update (a refresh) does not",
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        const session = sessionDraft(userId)
        for (const [what, write] of [
          ['a session insert', (tx: UnitOfWork) => tx.putSession(session, { mustNotExist: true })],
          ['a token insert', (tx: UnitOfWork) => tx.putToken(tokenDraft(userId), { mustNotExist: true })],
        ] as const) {
          await expectCode(
            store.transaction(tenantId, async (tx) => write(tx)),
            ErrorCode.INVALID_UNIT_OF_WORK,
            `${what} without the user`,
          )
        }
        await withUser(store, tenantId, userId, (tx) => tx.putSession(session, { mustNotExist: true }))
        const user = await store.getUser(tenantId, userId)
        await store.transaction(tenantId, async (tx) => {
          tx.putSession({ ...session, lastSeenAt: at(HOUR), expiresAt: at(2 * HOUR) }, { expectedVersion: 1 })
        })
        const refreshed = await store.findSession(tenantId, session.id)
        assert.deepEqual(
          [refreshed?.session.version, refreshed?.session.expiresAt],
          [2, at(2 * HOUR)],
          'the refresh committed',
        )
        assert.equal((await store.getUser(tenantId, userId))?.version, user?.version, 'the user did not move')
        await expectCode(
          store.transaction(tenantId, async (tx) => {
            tx.putSession({ ...session, expiresAt: at(3 * HOUR) }, { expectedVersion: 1 })
          }),
          ErrorCode.VERSION_CONFLICT,
          'a refresh at a stale version',
        )
        await expectCode(
          store.transaction(tenantId, async (tx) => {
            tx.deleteSession({ id: session.id, userId }, { expectedVersion: 2 })
          }),
          ErrorCode.INVALID_UNIT_OF_WORK,
          'a session delete without the user',
        )
      },
    },
    {
      name: "findSession: the session and its tenant's status in one read; a deleted session or another tenant's is not found",
      async run(ctx) {
        const store = await ctx.store()
        const [t1, t2] = [await ctx.newTenant(store), await ctx.newTenant(store)]
        const { userId } = await seedUser(store, t1)
        const session = sessionDraft(userId)
        await withUser(store, t1, userId, (tx) => tx.putSession(session, { mustNotExist: true }))
        const found = await store.findSession(t1, session.id)
        assert.ok(found, 'findSession')
        assert.equal(found.session.id, session.id)
        assert.equal(found.tenantStatus, 'active', "the tenant's status comes with it")
        await store.transaction(t1, async (tx) => {
          const tenant = await tx.getTenant()
          tx.putTenant(
            { id: t1, name: tenant!.name, status: 'suspended' },
            { expectedVersion: tenant!.version },
          )
        })
        assert.equal((await store.findSession(t1, session.id))?.tenantStatus, 'suspended')
        expectNull(await store.findSession(t2, session.id), 'the session from another tenant')
        expectNull(await store.findSession(t1, freshId('ses')), 'an unknown session')
        await expectCode(store.findSession(t1, 'not an id!'), ErrorCode.VALIDATION, 'a malformed session id')
        // A revoked session (its record deleted) is gone from the hot path at once: no cache, no soft delete.
        await withUser(store, t1, userId, (tx) =>
          tx.deleteSession({ id: session.id, userId }, { expectedVersion: 1 }),
        )
        expectNull(await store.findSession(t1, session.id), 'a revoked (deleted) session')
      },
    },
    {
      name: 'purgeExpired deletes only expired sessions and tokens of the tenant, oldest first, at most limit',
      async run(ctx) {
        const store = await ctx.store()
        const [t1, t2] = [await ctx.newTenant(store), await ctx.newTenant(store)]
        const { userId } = await seedUser(store, t1)
        const other = await seedUser(store, t2)
        // Written newest first, so a purge in write order would delete a different pair than oldest first.
        const expired = [sessionDraft(userId, 3), tokenDraft(userId, 2), sessionDraft(userId, 1)]
        const live = [sessionDraft(userId, HOUR), tokenDraft(userId, HOUR)]
        await withUser(store, t1, userId, (tx) => {
          for (const r of [...expired, ...live]) {
            if ('purpose' in r) tx.putToken(r, { mustNotExist: true })
            else tx.putSession(r, { mustNotExist: true })
          }
        })
        const foreign = sessionDraft(other.userId, 1)
        await withUser(store, t2, other.userId, (tx) => tx.putSession(foreign, { mustNotExist: true }))
        const before = at(10)
        const counts =
          'purgeExpired(tenant, { before, limit: 2 }) deletes only that tenant’s expired rows, oldest first'
        assert.deepEqual(
          await store.purgeExpired(t1, { before, limit: 2 }),
          { sessions: 1, tokens: 1 },
          `first purge: ${counts}; the tenant has 2 expired sessions and 1 expired token, another tenant 1 expired session`,
        )
        assert.equal(
          (await store.findSession(t1, expired[0]!.id))?.session.id,
          expired[0]!.id,
          'limit 2 deleted the session expiring last instead of the two oldest rows (expiresAt order)',
        )
        assert.deepEqual(
          await store.purgeExpired(t1, { before, limit: 2 }),
          { sessions: 1, tokens: 0 },
          `second purge: ${counts}; one expired session of the tenant is left (a count above 1 took another tenant's)`,
        )
        assert.deepEqual(
          await store.purgeExpired(t1, { before, limit: 2 }),
          { sessions: 0, tokens: 0 },
          `third purge: ${counts}; nothing of the tenant is left expired (a count here took another tenant's)`,
        )
        await store.transaction(t1, async (tx) => {
          assert.deepEqual(
            (await tx.listSessions(userId)).map((s) => s.id),
            [live[0]!.id],
          )
          assert.deepEqual(
            (await tx.listTokens(userId)).map((t) => t.id),
            [live[1]!.id],
          )
        })
        assert.ok(
          await store.findSession(t2, foreign.id),
          "another tenant's expired session was deleted by a purge of this tenant: purgeExpired is tenant-scoped",
        )
        assert.equal((await store.getUser(t1, userId))?.version, 2, 'a purge bumps no version')
        for (const query of [
          { before: 'yesterday', limit: 1 },
          { before, limit: 0 },
          { before, limit: 1_000_000 },
          { before },
        ]) {
          await expectCode(
            // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong input
            store.purgeExpired(t1, query as any),
            ErrorCode.VALIDATION,
            `purgeExpired(${JSON.stringify(query)})`,
          )
        }
      },
    },
    {
      name: 'purgeExpired keeps a session or token whose expiresAt equals before: only expiresAt < before is expired',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        const before = at(5)
        const [session, token] = [sessionDraft(userId, 5), tokenDraft(userId, 5)]
        const expired = sessionDraft(userId, 4)
        await withUser(store, tenantId, userId, (tx) => {
          tx.putSession(session, { mustNotExist: true })
          tx.putToken(token, { mustNotExist: true })
          tx.putSession(expired, { mustNotExist: true })
        })
        const purged = await store.purgeExpired(tenantId, { before, limit: 10 })
        const rule = `expiresAt equal to before (${before}) is not expired: compare expiresAt < before, never <=`
        assert.deepEqual(purged, { sessions: 1, tokens: 0 }, `purgeExpired's counts: ${rule}`)
        await store.transaction(tenantId, async (tx) => {
          assert.ok(await tx.getSession(session.id), `the session expiring at before was purged: ${rule}`)
          assert.ok(await tx.getToken(token.id), `the token expiring at before was purged: ${rule}`)
          expectNull(await tx.getSession(expired.id), 'the session that expired before the cut')
        })
      },
    },
    {
      name: 'a purge racing refreshes never deletes a session a refresh kept alive',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        // Each round starts the purge and the refreshes together; the refreshes' starts are spread over the
        // purge's first milliseconds, so some commit while it runs. A purge that selects the expired rows and
        // deletes them by id a round trip later, without re-checking expiry, deletes those sessions.
        for (let round = 0; round < PURGE_RACE_ROUNDS; round++) {
          const sessions = Array.from({ length: 12 }, () => sessionDraft(userId, 5))
          await withUser(store, tenantId, userId, (tx) => {
            for (const s of sessions) tx.putSession(s, { mustNotExist: true })
          })
          const refreshes = sessions.map(async (s, i) => {
            // Spreads the starts only: whatever the timing, the outcome asserted below must hold.
            if (i > 0) await sleep(i % PURGE_RACE_SPREAD_MS)
            return store
              .transaction(tenantId, async (tx) => {
                tx.putSession({ ...s, lastSeenAt: at(6), expiresAt: at(HOUR) }, { expectedVersion: 1 })
              })
              .then(
                () => true,
                () => false,
              )
          })
          const [refreshed] = await Promise.all([
            Promise.all(refreshes),
            store.purgeExpired(tenantId, { before: at(10), limit: 100 }),
          ])
          await store.purgeExpired(tenantId, { before: at(10), limit: 100 })
          for (const [i, s] of sessions.entries()) {
            const found = await store.findSession(tenantId, s.id)
            assert.equal(
              found !== null,
              refreshed[i],
              refreshed[i]
                ? `round ${round}, session ${i}: its refresh committed (expiresAt moved past before) and a purge running meanwhile deleted it: purgeExpired must check expiresAt < before on the row it deletes, not only when it selected it`
                : `round ${round}, session ${i}: its refresh failed (the purge took it first), yet the expired session is still there`,
            )
          }
        }
      },
    },
    {
      name: 'a refresh that read a session before a revoke committed fails, and the session stays revoked',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        const session = sessionDraft(userId)
        await withUser(store, tenantId, userId, (tx) => tx.putSession(session, { mustNotExist: true }))
        const read = barrier(2, 5000)
        const revoked = barrier(2, 5000)
        const refresh = store.transaction(tenantId, async (tx) => {
          const current = await tx.getSession(session.id)
          assert.ok(current, 'the refresh reads the session')
          await read()
          await revoked()
          // A refresh alone: rule 5 lets a session update go without the user's write.
          tx.putSession({ ...current, lastSeenAt: at(60_000) }, { expectedVersion: current.version })
        })
        refresh.catch(() => {})
        await read()
        await withUser(store, tenantId, userId, (tx) =>
          tx.deleteSession({ id: session.id, userId }, { expectedVersion: 1 }),
        )
        await revoked()
        await expectCode(
          refresh,
          ErrorCode.VERSION_CONFLICT,
          'a refresh of a session revoked after it was read',
        )
        expectNull(
          await store.findSession(tenantId, session.id),
          'the revoked session after the late refresh',
        )
      },
    },
    {
      name: '16 racing commits deleting one token at its version: exactly one commits',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        const token = tokenDraft(userId)
        await withUser(store, tenantId, userId, (tx) => tx.putToken(token, { mustNotExist: true }))
        const ready = barrier(16)
        const outcomes = await Promise.allSettled(
          Array.from({ length: 16 }, () =>
            store.transaction(tenantId, async (tx) => {
              const [user, found] = await Promise.all([tx.getUser(userId), tx.getToken(token.id)])
              await ready()
              if (!user || !found) throw new Error('read nothing')
              tx.deleteToken({ id: token.id, userId }, { expectedVersion: found.version })
              tx.putUser({ id: userId, status: 'active' }, { expectedVersion: user.version })
            }),
          ),
        )
        const won = outcomes.filter((o) => o.status === 'fulfilled').length
        assert.equal(won, 1, `${won} commits consumed one token`)
        for (const o of outcomes) {
          if (o.status === 'rejected') {
            const code = (o.reason as { code?: string }).code
            assert.equal(code, ErrorCode.VERSION_CONFLICT, 'a loser fails with VERSION_CONFLICT')
          }
        }
      },
    },
    {
      name: 'listSealedFactors pages factors under other keys in id order; diagnostics count them per key id',
      async run(ctx) {
        const store = await ctx.isolatedStore()
        const tenantId = await ctx.newTenant(store)
        const other = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        const ids = Array.from({ length: 5 }, () => freshId('fac')).sort()
        const keys = ['old1', 'current', 'old1', 'old2', null] as const
        await withUser(store, tenantId, userId, (tx) => {
          ids.forEach((id, i) => {
            tx.putFactor(
              {
                id,
                userId,
                kind: i === 4 ? 'password' : 'totp',
                secret: new Secret({ sealed: i }),
                keyId: keys[i] ?? null,
                state: {},
              },
              { mustNotExist: true },
            )
          })
        })
        const second = await seedUser(store, other)
        await withUser(store, other, second.userId, (tx) => {
          tx.putFactor(
            {
              id: freshId('fac'),
              userId: second.userId,
              kind: 'totp',
              secret: new Secret({}),
              keyId: 'old1',
              state: {},
            },
            { mustNotExist: true },
          )
        })
        const page1 = await store.listSealedFactors(tenantId, { excludeKeyId: 'current', limit: 2 })
        assert.deepEqual(
          page1.map((f) => [f.id, f.keyId]),
          [
            [ids[0], 'old1'],
            [ids[2], 'old1'],
          ],
        )
        const page2 = await store.listSealedFactors(tenantId, {
          excludeKeyId: 'current',
          after: page1[1]!.id,
          limit: 2,
        })
        assert.deepEqual(
          page2.map((f) => [f.id, f.keyId]),
          [[ids[3], 'old2']],
          `the page after ${page1[1]!.id}: listSealedFactors lists ids strictly after \`after\` (the last id of the previous page is not repeated)`,
        )
        assert.equal(
          typeof page2[0]?.secret?.reveal,
          'function',
          'listSealedFactors: factor.secret is not a Secret (see the redaction suite)',
        )
        assert.equal(page2[0]?.secret.reveal().sealed, 3)
        const { sealedByKeyId } = await store.diagnostics()
        assert.deepEqual(sealedByKeyId, { current: 1, old1: 3, old2: 1 })
        await store.transaction(tenantId, async (tx) => {
          const password = (await tx.listFactors(userId)).find((f) => f.kind === 'password')
          assert.equal(password?.keyId, null, 'a factor written without keyId reads null')
        })
        await expectCode(
          store.listSealedFactors(tenantId, { excludeKeyId: 'current', limit: 0 }),
          ErrorCode.VALIDATION,
          'limit 0',
        )
      },
    },
    {
      name: 'malformed session and token writes are VALIDATION and buffer nothing',
      async run(ctx) {
        const store = await ctx.store()
        const tenantId = await ctx.newTenant(store)
        const { userId } = await seedUser(store, tenantId)
        const bad: [string, (tx: UnitOfWork) => void][] = [
          [
            'expiresAt not an instant',
            (tx) =>
              tx.putSession({ ...sessionDraft(userId), expiresAt: '2030-01-01' }, { mustNotExist: true }),
          ],
          [
            'a plain string hash',
            (tx) =>
              tx.putSession({ ...sessionDraft(userId), tokenHash: 'x' as never }, { mustNotExist: true }),
          ],
          [
            'an unknown method',
            (tx) =>
              tx.putSession({ ...sessionDraft(userId), methods: ['sso' as never] }, { mustNotExist: true }),
          ],
          [
            'an unknown purpose',
            (tx) =>
              tx.putToken({ ...tokenDraft(userId), purpose: 'invite' as never }, { mustNotExist: true }),
          ],
          [
            'data not an object',
            (tx) => tx.putToken({ ...tokenDraft(userId), data: [] as never }, { mustNotExist: true }),
          ],
          [
            'a malformed token id',
            (tx) => tx.putToken({ ...tokenDraft(userId), id: 'a b' }, { mustNotExist: true }),
          ],
        ]
        for (const [what, write] of bad) {
          await expectCode(
            store.transaction(tenantId, async (tx) => write(tx)),
            ErrorCode.VALIDATION,
            what,
          )
        }
        await store.transaction(tenantId, async (tx) => {
          assert.deepEqual(await tx.listSessions(userId), [])
          assert.deepEqual(await tx.listTokens(userId), [])
        })
      },
    },
  ],
)
