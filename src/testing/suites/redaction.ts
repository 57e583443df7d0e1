import { createHash, randomBytes } from 'node:crypto'
import { ErrorCode } from '../../domain/errors.js'
import { Secret } from '../../domain/secret.js'
import { DIAGNOSTIC_COUNT_KEYS } from '../../store/schema-versions.js'
import type { UserEngineStore } from '../../store/store.js'
import {
  type Canaries,
  type CanaryKind,
  leakedCanaries,
  makeCanaries,
  renderings,
} from '../shared/canaries.js'
import { type CaseContext, freshId, suite } from '../shared/context.js'
import { assert, expectCode } from '../shared/expect.js'
import { changeUser, putIdentifier, type SeededUser, seedUser } from '../shared/fixtures.js'

interface Planted {
  readonly store: UserEngineStore
  readonly tenantId: string
  readonly canaries: Canaries
  readonly user: SeededUser
}

/** One user whose profile, identifiers and factor secret hold canaries. */
async function plant(ctx: CaseContext): Promise<Planted> {
  const store = await ctx.store()
  const tenantId = await ctx.newTenant(store)
  const canaries = makeCanaries()
  const user = await seedUser(store, tenantId, {
    email: canaries.email,
    username: canaries.username,
    attributes: { displayName: canaries.profile, note: `x ${canaries.profile} y` },
    factor: { kind: 'password', secret: { hash: canaries.secret, salt: `${canaries.secret}-salt` } },
  })
  return { store, tenantId, canaries, user }
}

function assertNoLeak(
  value: unknown,
  canaries: Canaries,
  what: string,
  allowed: readonly CanaryKind[] = [],
): void {
  const leaked = leakedCanaries(value, canaries, allowed)
  if (leaked.length === 0) return
  const where = value instanceof Error ? ` (in its ${leakPlaces(value, canaries, allowed).join(', ')})` : ''
  assert.fail(`${what} prints ${leaked.join(', ')} value(s) it was not asked for${where}`)
}

/** Which parts of an error print a canary: its message, details, cause chain, or other own properties. */
function leakPlaces(error: Error, canaries: Canaries, allowed: readonly CanaryKind[]): string[] {
  const parts: Array<[string, unknown]> = [
    ['message', error.message],
    ['details', (error as { details?: unknown }).details],
    ['cause', error.cause],
  ]
  const rest = Object.fromEntries(
    Object.entries(error).filter(([key]) => !['message', 'details', 'cause'].includes(key)),
  )
  parts.push(['other properties', rest], ['stack', error.stack])
  const places = parts
    .filter(([, part]) => leakedCanaries(part, canaries, allowed).length > 0)
    .map(([p]) => p)
  return places.length > 0 ? places : ['printing']
}

/** Store rule 7: no value leaks into diagnostics, errors, or the printing of returned objects. */
export const redactionSuite = suite('redaction', 'no profile value, identifier value or secret leaks', [
  {
    name: 'diagnostics hold counts only',
    async run(ctx) {
      const { store, tenantId, canaries, user } = await plant(ctx)
      const diagnostics = await store.diagnostics()
      assertNoLeak(diagnostics, canaries, 'diagnostics()')
      for (const text of renderings(diagnostics)) {
        for (const id of [tenantId, user.userId, user.factorId!]) {
          assert.ok(!text.includes(id), 'diagnostics() names a tenant, user or factor id')
        }
      }
      for (const key of DIAGNOSTIC_COUNT_KEYS) {
        const n = diagnostics.counts[key]
        assert.ok(typeof n === 'number' && Number.isSafeInteger(n) && n >= 0, `diagnostics count ${key}`)
      }
      for (const [key, n] of Object.entries(diagnostics.counts)) {
        assert.equal(typeof n, 'number', `diagnostics count ${key} is not a number`)
      }
      for (const key of ['users', 'identifiers', 'profiles', 'factors', 'audit_records', 'outbox_pending']) {
        assert.ok((diagnostics.counts[key] ?? 0) >= 1, `diagnostics count ${key} misses the planted records`)
      }
    },
  },
  {
    name: 'errors name ids and codes, never the values involved',
    async run(ctx) {
      const { store, tenantId, canaries, user } = await plant(ctx)
      const { userId } = user
      const other = freshId('u')
      const errors: Array<[string, unknown]> = []
      const collect = async (what: string, code: string, action: () => Promise<unknown>) => {
        errors.push([what, await expectCode(action(), code, what)])
      }
      await collect('a duplicate email', ErrorCode.DUPLICATE_IDENTIFIER, () =>
        store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: other, status: 'active' }, { mustNotExist: true })
          putIdentifier(tx, freshId('idn'), other, 'email', canaries.email)
        }),
      )
      await collect('a duplicate username', ErrorCode.DUPLICATE_IDENTIFIER, () =>
        store.transaction(tenantId, async (tx) => {
          tx.putUser({ id: other, status: 'active' }, { mustNotExist: true })
          putIdentifier(tx, freshId('idn'), other, 'username', canaries.username)
        }),
      )
      await collect('a stale profile write', ErrorCode.VERSION_CONFLICT, () =>
        store.transaction(tenantId, async (tx) => {
          tx.putProfile({ userId, attributes: { displayName: canaries.profile } }, { expectedVersion: 3 })
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        }),
      )
      await collect('a stale factor write', ErrorCode.VERSION_CONFLICT, () =>
        store.transaction(tenantId, async (tx) => {
          tx.putFactor(
            {
              id: user.factorId!,
              userId,
              kind: 'password',
              secret: new Secret({ hash: `${canaries.secret}-new` }),
              state: {},
            },
            { expectedVersion: 5 },
          )
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        }),
      )
      await collect('an existing factor inserted', ErrorCode.ALREADY_EXISTS, () =>
        store.transaction(tenantId, async (tx) => {
          tx.putFactor(
            {
              id: user.factorId!,
              userId,
              kind: 'password',
              secret: new Secret({ hash: canaries.secret }),
              state: {},
            },
            { mustNotExist: true },
          )
          tx.putUser({ id: userId, status: 'active' }, { expectedVersion: 1 })
        }),
      )
      await collect('a profile write without the user', ErrorCode.INVALID_UNIT_OF_WORK, () =>
        store.transaction(tenantId, async (tx) => {
          tx.putProfile({ userId, attributes: { displayName: canaries.profile } }, { expectedVersion: 1 })
        }),
      )
      await collect('an email passed as a cursor', ErrorCode.VALIDATION, () =>
        store.listUsers(tenantId, { cursor: canaries.email }),
      )
      await collect('an email passed as a user id', ErrorCode.VALIDATION, () =>
        store.getUser(tenantId, canaries.email),
      )
      for (const [what, error] of errors) assertNoLeak(error, canaries, `the error for ${what}`)
    },
  },
  {
    name: 'returned objects print only the values asked for, and factor secrets print redacted',
    async run(ctx) {
      const { store, tenantId, canaries, user } = await plant(ctx)
      const { userId } = user
      // The detector must see a planted value, or every check below would pass vacuously.
      assert.deepEqual(
        leakedCanaries({ v: canaries.profile }, canaries),
        ['profile'],
        'canary detector self-check',
      )
      assertNoLeak(await store.getUser(tenantId, userId), canaries, 'getUser')
      assertNoLeak(
        await store.findUserByIdentifier(tenantId, 'email', canaries.email),
        canaries,
        'findUserByIdentifier',
      )
      assertNoLeak(await store.listUsers(tenantId), canaries, 'listUsers')
      assertNoLeak(await store.countUsers(tenantId), canaries, 'countUsers')
      assertNoLeak(
        await store.listUsers(tenantId, { includeIdentifiers: true }),
        canaries,
        'listUsers with identifiers',
        ['email', 'username'],
      )
      const search = { kind: 'username' as const, prefix: canaries.username.slice(0, 20) }
      assertNoLeak(
        await store.listUsers(tenantId, { identifierPrefix: search }),
        canaries,
        'listUsers by username prefix',
      )
      assertNoLeak(await store.listAudit(tenantId), canaries, 'listAudit')
      assertNoLeak(await store.listAudit(tenantId, { userId }), canaries, 'listAudit by user')
      const events = await store.outbox.listForAggregate(tenantId, userId)
      assertNoLeak(events, canaries, 'outbox.listForAggregate')
      assertNoLeak(await store.outbox.get(events[0]!.id), canaries, 'outbox.get')
      assertNoLeak(await store.readiness(), canaries, 'readiness')
      assertNoLeak(await store.migrate(), canaries, 'migrate')
      assertNoLeak(await store.outbox.lag(), canaries, 'outbox.lag')
      assertNoLeak(await store.getIdentifier(tenantId, 'email', canaries.email), canaries, 'getIdentifier', [
        'email',
      ])
      // A sealed factor (a key id set), as key rotation lists it: its secret is a Secret there too.
      await changeUser(store, tenantId, userId, (tx) =>
        tx.putFactor(
          {
            id: freshId('fac'),
            userId,
            kind: 'totp',
            secret: new Secret({ sealed: canaries.secret }),
            keyId: 'conformance-old-key',
            state: {},
          },
          { mustNotExist: true },
        ),
      )
      const sealed = await store.listSealedFactors(tenantId, {
        excludeKeyId: 'conformance-new-key',
        limit: 10,
      })
      assert.equal(sealed.length, 1, 'listSealedFactors: the sealed factor')
      assert.equal(
        typeof (sealed[0]?.secret as { reveal?: unknown } | undefined)?.reveal,
        'function',
        `listSealedFactors returned factor.secret as a plain ${typeof sealed[0]?.secret === 'object' ? 'object' : 'value'}, not a Secret: factor secrets are Secret objects that print [redacted] and give the value only through reveal()`,
      )
      assertNoLeak(sealed, canaries, 'listSealedFactors')
      await store.transaction(tenantId, async (tx) => {
        assertNoLeak(await tx.getUser(userId), canaries, 'tx.getUser')
        assertNoLeak(await tx.getProfile(userId), canaries, 'tx.getProfile', ['profile'])
        assertNoLeak(await tx.listIdentifiers(userId), canaries, 'tx.listIdentifiers', ['email', 'username'])
        const factors = await tx.listFactors(userId)
        const password = factors.find((f) => f.kind === 'password')
        assertNoLeak(factors, canaries, 'tx.listFactors')
        assertNoLeak(String(password?.secret), canaries, 'String(factor.secret)')
        assertNoLeak(`${password?.secret}`, canaries, 'a factor secret in a template literal')
        const revealed = password?.secret.reveal()
        assert.deepEqual(
          leakedCanaries(revealed, canaries),
          ['secret'],
          'secret.reveal() gives the stored secret',
        )
      })
    },
  },
  {
    name: 'session and token records print their token hashes redacted, wherever they are read',
    async run(ctx) {
      const { store, tenantId, user } = await plant(ctx)
      const { userId } = user
      const hashes = [0, 1].map(() => createHash('sha256').update(randomBytes(32)).digest('hex'))
      const sessionId = freshId('ses')
      const tokenId = freshId('tok')
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
      await changeUser(store, tenantId, userId, (tx) => {
        tx.putSession(
          {
            id: sessionId,
            userId,
            tokenHash: new Secret(hashes[0]!),
            methods: ['password'],
            lastSeenAt: new Date().toISOString(),
            expiresAt,
            absoluteExpiresAt: expiresAt,
          },
          { mustNotExist: true },
        )
        tx.putToken(
          {
            id: tokenId,
            userId,
            purpose: 'password_reset',
            tokenHash: new Secret(hashes[1]!),
            expiresAt,
            data: {},
          },
          { mustNotExist: true },
        )
      })
      const printed: [string, unknown][] = [['findSession', await store.findSession(tenantId, sessionId)]]
      await store.transaction(tenantId, async (tx) => {
        printed.push(
          ['tx.getSession', await tx.getSession(sessionId)],
          ['tx.listSessions', await tx.listSessions(userId)],
          ['tx.getToken', await tx.getToken(tokenId)],
          ['tx.listTokens', await tx.listTokens(userId)],
        )
        assert.equal((await tx.getToken(tokenId))?.tokenHash.reveal(), hashes[1], 'reveal() gives the hash')
      })
      printed.push(['diagnostics', await store.diagnostics()], ['listAudit', await store.listAudit(tenantId)])
      for (const [what, value] of printed) {
        for (const text of renderings(value)) {
          assert.ok(!hashes.some((h) => text.includes(h)), `${what} prints a token hash`)
        }
      }
      const counts = (printed.find(([w]) => w === 'diagnostics')![1] as { counts: Record<string, number> })
        .counts
      assert.ok(counts.sessions! >= 1 && counts.tokens! >= 1, 'diagnostics count sessions and tokens')
    },
  },
])
