// Long on purpose: one property-based suite; its operation generators, the model runner and the mismatch
// report belong to the same fast-check property.
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import type {
  AuditRecord,
  FactorRecord,
  IdentifierKind,
  OutboxEntry,
  ProfileValue,
  SessionRecord,
  TokenRecord,
  UserStatus,
} from '../../domain/records.js'
import { Secret } from '../../domain/secret.js'
import { commitUserChange, recordUserChange } from '../../store/change-user.js'
import { InMemoryUserEngineStore } from '../../store/memory/index.js'
import type { ListedUser, UserEngineStore } from '../../store/store.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import { suite } from '../shared/context.js'
import { assert, errorCode } from '../shared/expect.js'

/*
 * Model-based differential testing: fast-check generates operation sequences over three tenants; each runs on
 * the store under test and on a fresh InMemoryUserEngineStore (the reference), and every observable result
 * (records without timestamps, error codes, pages) must be equal. Ids are small indexes in the ops, so a
 * shrunk counterexample reads as a script.
 */

const TENANTS = 3
const USERS = 4
const VALUES: Record<IdentifierKind, readonly string[]> = {
  email: ['ann@example.com', 'bob@example.com', 'cy@example.com'],
  username: ['ann', 'bob', 'cy'],
}
const STATUSES = ['active', 'disabled', 'deleted'] as const
// Prefixes of the values above (and of none): search ranges, shared prefixes and the empty result.
const PREFIXES = ['a', 'an', 'ann', 'b', 'c', 'cy@', 'z'] as const

type Op =
  | { kind: 'createUser'; t: number; u: number; status: UserStatus; email: number | null; profile: boolean }
  | { kind: 'setStatus'; t: number; u: number; status: UserStatus; skew: number }
  | {
      kind: 'putIdentifier'
      t: number
      u: number
      id: number
      ik: IdentifierKind
      v: number
      verified: boolean
    }
  | { kind: 'deleteIdentifier'; t: number; u: number; id: number }
  | { kind: 'putProfile'; t: number; u: number; attrs: Record<string, ProfileValue>; stale: boolean }
  | { kind: 'deleteProfile'; t: number; u: number }
  | { kind: 'putFactor'; t: number; u: number; id: number; used: number }
  | { kind: 'deleteFactor'; t: number; u: number; id: number }
  | { kind: 'throwing'; t: number; u: number }
  | { kind: 'tenant'; t: number; name: string }
  | { kind: 'read'; t: number; u: number }
  | { kind: 'lookup'; t: number; ik: IdentifierKind; v: number }
  | { kind: 'listUsers'; t: number; limit: number; status: UserStatus | null; include: boolean }
  | {
      kind: 'searchUsers'
      t: number
      ik: IdentifierKind
      prefix: number
      limit: number
      status: UserStatus | null
      include: boolean
    }
  | { kind: 'listAudit'; t: number; limit: number; u: number | null }
  | { kind: 'putSession'; t: number; u: number; id: number; exp: number; refresh: boolean }
  | { kind: 'deleteSession'; t: number; u: number; id: number }
  | { kind: 'putToken'; t: number; u: number; id: number; exp: number }
  | { kind: 'deleteToken'; t: number; u: number; id: number }
  | { kind: 'findSession'; t: number; u: number; id: number }
  | { kind: 'purge'; t: number; before: number; limit: number }

// Fixed instants, so both stores judge expiry against the same times (ties included: purge order is defined).
const EXPIRIES = ['2030-01-01T00:00:00.000Z', '2030-01-01T01:00:00.000Z', '2030-01-01T02:00:00.000Z']

// Weighted toward the records SETUP creates, so most writes meet existing records rather than NO_USER.
const t = fc.constantFrom(0, 0, 0, 1, 2)
const u = fc.constantFrom(0, 0, 1, 1, 2, 3)
const status = fc.constantFrom(...STATUSES)
const ik = fc.constantFrom<IdentifierKind>('email', 'username')
const v = fc.nat({ max: 2 })
const attrs = fc.dictionary(
  fc.constantFrom('name', 'age', 'admin', 'note'),
  fc.oneof(fc.constantFrom('x', 'Zoë', ''), fc.integer({ min: -5, max: 5 }), fc.boolean(), fc.constant(null)),
  { maxKeys: 3 },
)

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('createUser'),
      t,
      u,
      status,
      email: fc.option(v),
      profile: fc.boolean(),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('setStatus'),
      t,
      u,
      status,
      skew: fc.constantFrom(0, 0, 0, 1, -1),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('putIdentifier'),
      t,
      u,
      id: fc.nat({ max: 3 }),
      ik,
      v,
      verified: fc.boolean(),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('deleteIdentifier'), t, u, id: fc.nat({ max: 3 }) }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('putProfile'), t, u, attrs, stale: fc.boolean() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('deleteProfile'), t, u }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('putFactor'),
      t,
      u,
      id: fc.nat({ max: 1 }),
      used: fc.nat({ max: 9 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('deleteFactor'), t, u, id: fc.nat({ max: 1 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('throwing'), t, u }), weight: 1 },
  {
    arbitrary: fc.record({ kind: fc.constant('tenant'), t, name: fc.constantFrom('Acme', 'Umbrella') }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('read'), t, u }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('lookup'), t, ik, v }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('listUsers'),
      t,
      limit: fc.integer({ min: 1, max: 3 }),
      status: fc.option(status),
      include: fc.boolean(),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('searchUsers'),
      t,
      ik,
      prefix: fc.nat({ max: PREFIXES.length - 1 }),
      limit: fc.integer({ min: 1, max: 3 }),
      status: fc.option(status),
      include: fc.boolean(),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('listAudit'),
      t,
      limit: fc.integer({ min: 1, max: 4 }),
      u: fc.option(u),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('putSession'),
      t,
      u,
      id: fc.nat({ max: 1 }),
      exp: fc.nat({ max: EXPIRIES.length - 1 }),
      refresh: fc.boolean(),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('deleteSession'), t, u, id: fc.nat({ max: 1 }) }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('putToken'),
      t,
      u,
      id: fc.nat({ max: 1 }),
      exp: fc.nat({ max: EXPIRIES.length - 1 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('deleteToken'), t, u, id: fc.nat({ max: 1 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('findSession'), t, u, id: fc.nat({ max: 1 }) }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('purge'),
      t,
      before: fc.nat({ max: EXPIRIES.length - 1 }),
      limit: fc.integer({ min: 1, max: 3 }),
    }),
    weight: 1,
  },
) as fc.Arbitrary<Op>

const userId = (n: number) => `usr-${n}`
// Identifier and factor ids are per user, so no write can meet two failing preconditions at once: which of
// two conflicts a store reports first is not part of the contract.
const identifierId = (uid: string, n: number) => `${uid}-idn-${n}`
const factorId = (uid: string, n: number) => `${uid}-fac-${n}`
const sessionId = (uid: string, n: number) => `${uid}-ses-${n}`
const tokenId = (uid: string, n: number) => `${uid}-tok-${n}`
const hashOf = (id: string) => new Secret(createHash('sha256').update(id).digest('hex'))

/** A refusal the operation's own callback decided on (e.g. the user is missing): identical in both stores. */
class Refused extends Error {}

type Outcome = { ok: unknown } | { error: string }

function withoutTimes<T extends object>(record: T | null): unknown {
  if (record === null) return null
  const { createdAt: _c, updatedAt: _u, ...rest } = record as T & { createdAt?: string; updatedAt?: string }
  return rest
}

const listedView = (u: ListedUser) =>
  u.identifiers === undefined
    ? withoutTimes(u)
    : { ...(withoutTimes(u) as object), identifiers: u.identifiers.map(withoutTimes) }
const factorView = (f: FactorRecord) => ({ ...(withoutTimes(f) as object), secret: f.secret.reveal() })
const hashedView = (r: SessionRecord | TokenRecord | null) =>
  r === null ? null : { ...(withoutTimes(r) as object), tokenHash: r.tokenHash.reveal() }
const auditView = (a: AuditRecord) => ({
  tenantId: a.tenantId,
  action: a.action,
  userId: a.userId,
  actorId: a.actorId,
  data: a.data,
})
const eventView = (e: OutboxEntry) => ({
  tenantId: e.tenantId,
  aggregateType: e.aggregateType,
  aggregateId: e.aggregateId,
  sequence: e.sequence,
  position: e.position,
  type: e.type,
  payload: e.payload,
  status: e.status,
  attempts: e.attempts,
})

/** Pages as lists of items; a trailing empty page (a cursor on a full last page) is allowed and dropped. */
async function pages<T>(fetch: (cursor?: string) => Promise<{ items: T[]; nextCursor: string | null }>) {
  const out: T[][] = []
  let cursor: string | undefined
  for (let i = 0; i < 100; i++) {
    const page = await fetch(cursor)
    out.push(page.items)
    if (page.nextCursor === null) break
    cursor = page.nextCursor
  }
  while (out.length > 1 && out.at(-1)?.length === 0) out.pop()
  return out
}

/** A write commit about one existing user: reads it, lets `fn` write, bumps it, audits and emits. */
async function userCommit(
  store: UserEngineStore,
  tenantId: string,
  uid: string,
  op: Op,
  fn: (tx: UnitOfWork) => Promise<void>,
) {
  await commitUserChange(store, tenantId, uid, {
    write: fn,
    notFound: () => new Refused('NO_USER'),
    audit: { action: `op.${op.kind}` },
    events: [{ type: `user.${op.kind}`, payload: { op: op.kind } }],
  })
}

async function apply(store: UserEngineStore, tenants: readonly string[], op: Op): Promise<Outcome> {
  try {
    return { ok: await perform(store, tenants, op) }
  } catch (error) {
    if (error instanceof Refused) return { error: `REFUSED:${error.message}` }
    const code = errorCode(error)
    if (code) return { error: code }
    // Unexpected errors are part of the observation; the reference raises none.
    return {
      error: `UNEXPECTED:${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    }
  }
}

async function perform(store: UserEngineStore, tenants: readonly string[], op: Op): Promise<unknown> {
  const tenantId = tenants[op.t]!
  switch (op.kind) {
    case 'createUser': {
      const uid = userId(op.u)
      await store.transaction(tenantId, async (tx) => {
        // Refused by a read: a commit would meet two failing preconditions (user and email) at once.
        if (await tx.getUser(uid)) throw new Refused('USER_EXISTS')
        await recordUserChange(tx, uid, null, {
          status: op.status,
          audit: { action: 'user.created', data: { status: op.status } },
          events: [{ type: 'user.created', payload: { status: op.status } }],
        })
        if (op.email !== null) {
          tx.putIdentifier(
            {
              id: `${uid}-email`,
              userId: uid,
              kind: 'email',
              value: VALUES.email[op.email]!,
              verified: false,
            },
            { mustNotExist: true },
          )
        }
        if (op.profile) tx.putProfile({ userId: uid, attributes: { name: uid } }, { mustNotExist: true })
      })
      return null
    }
    case 'setStatus': {
      const uid = userId(op.u)
      await store.transaction(tenantId, async (tx) => {
        const user = await tx.getUser(uid)
        if (!user) throw new Refused('NO_USER')
        // A skew makes a stale or future precondition: VERSION_CONFLICT, and nothing else can fail.
        const expected = user.version + op.skew
        tx.putUser({ id: uid, status: op.status }, { expectedVersion: expected })
        tx.appendAudit({ action: 'user.status', userId: uid, data: { status: op.status } })
        tx.enqueue({ type: 'user.status_changed', userId: uid, payload: { status: op.status } })
      })
      return null
    }
    case 'putIdentifier': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const mine = (await tx.listIdentifiers(uid)).find((i) => i.id === identifierId(uid, op.id))
        const draft = {
          id: identifierId(uid, op.id),
          userId: uid,
          kind: op.ik,
          value: VALUES[op.ik][op.v]!,
          verified: op.verified,
        }
        tx.putIdentifier(draft, mine ? { expectedVersion: mine.version } : { mustNotExist: true })
      })
      return null
    }
    case 'deleteIdentifier': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const mine = (await tx.listIdentifiers(uid)).find((i) => i.id === identifierId(uid, op.id))
        if (!mine) throw new Refused('NO_IDENTIFIER')
        tx.deleteIdentifier({ id: mine.id, userId: uid }, { expectedVersion: mine.version })
      })
      return null
    }
    case 'putProfile': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const profile = await tx.getProfile(uid)
        const precondition = profile
          ? { expectedVersion: profile.version + (op.stale ? 1 : 0) }
          : { mustNotExist: true as const }
        tx.putProfile({ userId: uid, attributes: op.attrs }, precondition)
      })
      return null
    }
    case 'deleteProfile': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const profile = await tx.getProfile(uid)
        if (!profile) throw new Refused('NO_PROFILE')
        tx.deleteProfile(uid, { expectedVersion: profile.version })
      })
      return null
    }
    case 'putFactor': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const mine = (await tx.listFactors(uid)).find((f) => f.id === factorId(uid, op.id))
        const draft = {
          id: factorId(uid, op.id),
          userId: uid,
          kind: 'recovery_codes' as const,
          secret: new Secret({ hashes: [`h${op.id}`] }),
          state: { used: op.used },
        }
        tx.putFactor(draft, mine ? { expectedVersion: mine.version } : { mustNotExist: true })
      })
      return null
    }
    case 'deleteFactor': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const mine = (await tx.listFactors(uid)).find((f) => f.id === factorId(uid, op.id))
        if (!mine) throw new Refused('NO_FACTOR')
        tx.deleteFactor({ id: mine.id, userId: uid }, { expectedVersion: mine.version })
      })
      return null
    }
    case 'throwing': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        tx.putProfile({ userId: uid, attributes: { thrown: true } }, { mustNotExist: true })
        throw new Refused('THROWN')
      })
      return null
    }
    case 'tenant': {
      await store.transaction(tenantId, async (tx) => {
        const tenant = await tx.getTenant()
        tx.putTenant(
          { id: tenantId, name: op.name, status: 'active' },
          tenant ? { expectedVersion: tenant.version } : { mustNotExist: true },
        )
        tx.appendAudit({ action: 'tenant.saved', data: { name: op.name } })
        tx.enqueue({ type: 'tenant.saved', payload: { name: op.name } })
      })
      return null
    }
    case 'read': {
      const uid = userId(op.u)
      const inside = await store.transaction(tenantId, async (tx) => ({
        tenant: withoutTimes(await tx.getTenant()),
        user: withoutTimes(await tx.getUser(uid)),
        profile: withoutTimes(await tx.getProfile(uid)),
        identifiers: (await tx.listIdentifiers(uid)).map(withoutTimes),
        factors: (await tx.listFactors(uid)).map(factorView),
        sessions: (await tx.listSessions(uid)).map(hashedView),
        tokens: (await tx.listTokens(uid)).map(hashedView),
      }))
      return {
        user: withoutTimes(await store.getUser(tenantId, uid)),
        tenant: withoutTimes(await store.getTenant(tenantId)),
        inside,
        events: (await store.outbox.listForAggregate(tenantId, uid)).map(eventView),
        tenantEvents: (await store.outbox.listForAggregate(tenantId, tenantId)).map(eventView),
      }
    }
    case 'lookup': {
      const value = VALUES[op.ik][op.v]!
      return {
        identifier: withoutTimes(await store.getIdentifier(tenantId, op.ik, value)),
        user: withoutTimes(await store.findUserByIdentifier(tenantId, op.ik, value)),
      }
    }
    case 'listUsers': {
      const status = op.status ?? undefined
      const listed = await pages((cursor) =>
        store.listUsers(tenantId, { limit: op.limit, cursor, status, includeIdentifiers: op.include }),
      )
      return {
        pages: listed.map((p) => p.map(listedView)),
        count: await store.countUsers(tenantId, { status }),
      }
    }
    case 'searchUsers': {
      const status = op.status ?? undefined
      const identifierPrefix = { kind: op.ik, prefix: PREFIXES[op.prefix]! }
      const listed = await pages((cursor) =>
        store.listUsers(tenantId, {
          limit: op.limit,
          cursor,
          status,
          identifierPrefix,
          includeIdentifiers: op.include,
        }),
      )
      return {
        pages: listed.map((p) => p.map(listedView)),
        count: await store.countUsers(tenantId, { status, identifierPrefix }),
      }
    }
    case 'putSession': {
      const uid = userId(op.u)
      const id = sessionId(uid, op.id)
      const fields = (expiresAt: string) => ({
        id,
        userId: uid,
        tokenHash: hashOf(id),
        methods: ['password' as const],
        lastSeenAt: EXPIRIES[0]!,
        expiresAt,
        absoluteExpiresAt: EXPIRIES[EXPIRIES.length - 1]!,
      })
      if (op.refresh) {
        // Rule 5's exception: a session update without the user's write.
        await store.transaction(tenantId, async (tx) => {
          const mine = await tx.getSession(id)
          if (!mine || mine.userId !== uid) throw new Refused('NO_SESSION')
          tx.putSession(fields(EXPIRIES[op.exp]!), { expectedVersion: mine.version })
        })
        return null
      }
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const mine = await tx.getSession(id)
        tx.putSession(
          fields(EXPIRIES[op.exp]!),
          mine ? { expectedVersion: mine.version } : { mustNotExist: true },
        )
      })
      return null
    }
    case 'deleteSession': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const mine = await tx.getSession(sessionId(uid, op.id))
        if (!mine) throw new Refused('NO_SESSION')
        tx.deleteSession({ id: mine.id, userId: uid }, { expectedVersion: mine.version })
      })
      return null
    }
    case 'putToken': {
      const uid = userId(op.u)
      const id = tokenId(uid, op.id)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const mine = await tx.getToken(id)
        const draft = {
          id,
          userId: uid,
          purpose: 'email_verification' as const,
          tokenHash: hashOf(id),
          expiresAt: EXPIRIES[op.exp]!,
          data: { n: op.id },
        }
        tx.putToken(draft, mine ? { expectedVersion: mine.version } : { mustNotExist: true })
      })
      return null
    }
    case 'deleteToken': {
      const uid = userId(op.u)
      await userCommit(store, tenantId, uid, op, async (tx) => {
        const mine = await tx.getToken(tokenId(uid, op.id))
        if (!mine) throw new Refused('NO_TOKEN')
        tx.deleteToken({ id: mine.id, userId: uid }, { expectedVersion: mine.version })
      })
      return null
    }
    case 'findSession': {
      const found = await store.findSession(tenantId, sessionId(userId(op.u), op.id))
      return found && { session: hashedView(found.session), tenantStatus: found.tenantStatus }
    }
    case 'purge':
      return store.purgeExpired(tenantId, { before: EXPIRIES[op.before]!, limit: op.limit })
    case 'listAudit': {
      const filter = op.u === null ? undefined : userId(op.u)
      const listed = await pages((cursor) =>
        store.listAudit(tenantId, { limit: op.limit, cursor, userId: filter }),
      )
      return listed.map((p) => p.map(auditView))
    }
  }
}

/**
 * Tenants 0 and 1 start with users (so generated writes mostly meet existing records); tenant 2 exists only
 * once a 'tenant' op creates it, so writes into it exercise rule 7 (NOT_FOUND) until then.
 */
const SETUP: readonly Op[] = [
  { kind: 'tenant', t: 0, name: 'Acme' },
  { kind: 'tenant', t: 1, name: 'Acme' },
  { kind: 'createUser', t: 0, u: 0, status: 'active', email: 0, profile: true },
  { kind: 'createUser', t: 0, u: 1, status: 'disabled', email: 1, profile: false },
  { kind: 'createUser', t: 1, u: 0, status: 'active', email: 0, profile: true },
]

/** Everything observable at the end of a run, through every read path. */
function finalReads(): Op[] {
  const ops: Op[] = []
  for (let tn = 0; tn < TENANTS; tn++) {
    for (let un = 0; un < USERS; un++) ops.push({ kind: 'read', t: tn, u: un })
    for (const kind of ['email', 'username'] as const) {
      for (let vn = 0; vn < 3; vn++) ops.push({ kind: 'lookup', t: tn, ik: kind, v: vn })
    }
    ops.push(
      { kind: 'listUsers', t: tn, limit: 2, status: null, include: true },
      { kind: 'searchUsers', t: tn, ik: 'email', prefix: 0, limit: 2, status: null, include: true },
      { kind: 'searchUsers', t: tn, ik: 'username', prefix: 1, limit: 1, status: null, include: false },
      { kind: 'listAudit', t: tn, limit: 3, u: null },
    )
  }
  return ops
}

/** A result for a failure message, bounded. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 1500 ? `${text.slice(0, 1500)}... (${text.length} characters)` : text
}

/** Store rules 3-6 as a whole: the store behaves like the reference model on any operation sequence. */
export const differentialSuite = suite(
  'differential',
  'random operation sequences match the reference store',
  [
    {
      name: 'random operation sequences over three tenants match InMemoryUserEngineStore',
      async run(ctx) {
        const store = await ctx.store()
        const options = ctx.options.differential ?? {}
        const property = fc.asyncProperty(
          fc.array(opArbitrary, { minLength: 1, maxLength: options.maxOperations ?? 24, size: 'max' }),
          async (ops) => {
            // Fresh tenants every run: the store under test may keep a shared database across runs.
            const tenants = Array.from({ length: TENANTS }, () => ctx.unknownTenantId())
            const reference = new InMemoryUserEngineStore({ migrated: true })
            try {
              for (const [i, op] of [...SETUP, ...ops, ...finalReads()].entries()) {
                const expected = await apply(reference, tenants, op)
                const actual = await apply(store, tenants, op)
                const n = i - SETUP.length
                const step =
                  n < 0 ? `setup ${i}` : n < ops.length ? `operation ${n}` : `final read ${n - ops.length}`
                // The message names the step and both results: a provider can act without re-running.
                assert.deepStrictEqual(
                  actual,
                  expected,
                  `${step} ${JSON.stringify(op)} differs from the reference store\n` +
                    `  this store returned: ${shown(actual)}\n  the reference store: ${shown(expected)}`,
                )
              }
            } finally {
              await reference.close()
            }
          },
        )
        const details = await fc.check(property, {
          numRuns: options.numRuns ?? 25,
          ...(options.seed === undefined ? {} : { seed: options.seed }),
          ...(options.path === undefined ? {} : { path: options.path }),
        })
        if (details.failed) {
          const report = fc.defaultReportMessage(details) ?? 'the property failed'
          const cause = details.errorInstance instanceof Error ? details.errorInstance.message : ''
          assert.fail(
            `differential run failed; reproduce with differential: { seed: ${details.seed}, path: '${details.counterexamplePath}' }\n${cause}\n${report}`,
          )
        }
      },
    },
  ],
)
