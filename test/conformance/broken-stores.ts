import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import {
  decodeIdCursor,
  decodeValueCursor,
  encodeCursor,
  encodeValueCursor,
} from '../../src/domain/cursor.js'
import { ConflictError, ErrorCode, isUserEngineError, UserEngineError } from '../../src/domain/errors.js'
import { newId } from '../../src/domain/ids.js'
import type { AuditRecord, IdentifierKind, OutboxEntry, UserRecord } from '../../src/domain/records.js'
import { compareCodePoints } from '../../src/domain/user-queries.js'
import { assertId, validatePageSize } from '../../src/domain/validation.js'
import { failedAtCommit } from '../../src/store/commit-phase.js'
import type {
  AuditDraft,
  Diagnostics,
  ListAuditQuery,
  ListedUser,
  ListUsersQuery,
  MigrateResult,
  OutboxAccess,
  Page,
  PurgeExpiredQuery,
  PurgeExpiredResult,
  Readiness,
  ThrottleAccess,
  UnitOfWork,
  UserEngineStore,
} from '../../src/store/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import type { OutboxRow } from '../../src/store/memory/memory-outbox.js'
import { validatePurgePublished } from '../../src/store/outbox-checks.js'
import { SCHEMA_VERSIONS } from '../../src/store/schema-versions.js'
import type { ConformanceOptions, RowRefusal } from '../../src/testing/index.js'
import { DelegatingStore } from './delegating-store.js'

/** An outbox with some methods replaced; the rest go to the correct store's outbox. */
function outboxWith(inner: OutboxAccess, overrides: Partial<OutboxAccess>): OutboxAccess {
  return new Proxy(inner, {
    get: (target, prop, receiver) => {
      const own = (overrides as Record<PropertyKey, unknown>)[prop]
      if (own !== undefined) return own
      const value = Reflect.get(target, prop, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/** Reports a late acknowledge or fail as done: the caller believes it still held a lease it lost. */
class LateSettleStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      acknowledge: async (owner, ids) => {
        await inner.acknowledge(owner, ids)
        return [...ids]
      },
      fail: async (options) => (await inner.fail(options)) ?? 'pending',
    })
  }
}

/** Purges pending events with the published ones (here: they vanish from listings after a purge). */
class PurgeEverythingStore extends DelegatingStore {
  #purged = false
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      purgePublished: async (olderThanMs, limit) => {
        this.#purged = true
        return inner.purgePublished(olderThanMs, limit)
      },
      listForAggregate: async (tenantId, aggregateId) => {
        const events = await inner.listForAggregate(tenantId, aggregateId)
        return this.#purged ? events.filter((e) => e.status !== 'pending') : events
      },
    })
  }
}

/** Commits the buffered writes even when the callback throws. */
class NoRollbackStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    let failure: { error: unknown } | undefined
    const result = await this.inner.transaction(tenantId, async (tx) => {
      try {
        return await fn(tx)
      } catch (error) {
        failure = { error }
        return undefined as T
      }
    })
    if (failure) throw failure.error
    return result
  }
}

/** Reads fall back to any tenant it has seen when the asked tenant has no such record. */
class TenantLeakStore extends DelegatingStore {
  readonly #tenants = new Set<string>()
  override transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    this.#tenants.add(tenantId)
    return super.transaction(tenantId, fn)
  }
  async #anyTenant<R>(tenantId: string, read: (t: string) => Promise<R | null>): Promise<R | null> {
    for (const t of [tenantId, ...this.#tenants]) {
      const found = await read(t)
      if (found !== null) return found
    }
    return null
  }
  override getUser(tenantId: string, userId: string) {
    return this.#anyTenant(tenantId, (t) => this.inner.getUser(t, userId))
  }
  override getIdentifier(tenantId: string, kind: IdentifierKind, value: string) {
    return this.#anyTenant(tenantId, (t) => this.inner.getIdentifier(t, kind, value))
  }
  override findUserByIdentifier(tenantId: string, kind: IdentifierKind, value: string) {
    return this.#anyTenant(tenantId, (t) => this.inner.findUserByIdentifier(t, kind, value))
  }
}

/** Remembers the last identifier value written and reports it in diagnostics. */
class DiagnosticsLeakStore extends DelegatingStore {
  #last = ''
  override transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    return super.transaction(tenantId, (tx) => {
      const put = tx.putIdentifier.bind(tx)
      tx.putIdentifier = (identifier, precondition) => {
        this.#last = identifier.value
        put(identifier, precondition)
      }
      return fn(tx)
    })
  }
  override async diagnostics(): Promise<Diagnostics> {
    return { ...(await super.diagnostics()), lastIdentifier: this.#last } as Diagnostics
  }
}

/** Returns users with their email attached: personal data the caller did not ask for. */
class RecordLeakStore extends DelegatingStore {
  override async getUser(tenantId: string, userId: string): Promise<UserRecord | null> {
    const user = await super.getUser(tenantId, userId)
    if (!user) return null
    const identifiers = await this.inner.transaction(tenantId, (tx) => tx.listIdentifiers(userId))
    return Object.assign({}, user, { email: identifiers.find((i) => i.kind === 'email')?.value ?? null })
  }
}

/** Puts the duplicate identifier value into the conflict message. */
class ErrorLeakStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const values: string[] = []
    try {
      return await super.transaction(tenantId, (tx) => {
        const put = tx.putIdentifier.bind(tx)
        tx.putIdentifier = (identifier, precondition) => {
          values.push(identifier.value)
          put(identifier, precondition)
        }
        return fn(tx)
      })
    } catch (error) {
      if (isUserEngineError(error, ErrorCode.DUPLICATE_IDENTIFIER)) {
        throw new ConflictError(ErrorCode.DUPLICATE_IDENTIFIER, `identifier ${values.join(', ')} is taken`)
      }
      throw error
    }
  }
}

/** Pages users by offset: users inserted before the cursor shift the next page. */
class OffsetPaginationStore extends DelegatingStore {
  override async listUsers(tenantId: string, query: ListUsersQuery = {}): Promise<Page<UserRecord>> {
    if (query.identifierPrefix || (query.cursor !== undefined && !/^o\d+$/.test(cursorText(query.cursor))))
      return super.listUsers(tenantId, query)
    const limit = validatePageSize(query.limit)
    const offset = query.cursor === undefined ? 0 : Number(cursorText(query.cursor).slice(1))
    const all = (await this.inner.listUsers(tenantId, { ...query, cursor: undefined, limit: 500 })).items
    const items = all.slice(offset, offset + limit)
    return { items, nextCursor: offset + limit < all.length ? encodeCursor(`o${offset + limit}`) : null }
  }
}

/** The text inside an id cursor, or '' when it is not one. */
function cursorText(cursor: string): string {
  try {
    return decodeIdCursor(cursor)
  } catch {
    return ''
  }
}

/** A relay cursor on the event id: the bug class that skips events whose commits land late. */
class CursorRelayStore extends DelegatingStore {
  #after = ''
  readonly #outbox: OutboxAccess = {
    claim: async (options) => {
      const claimed = await this.inner.outbox.claim(options)
      const behind = claimed.filter((e) => e.id <= this.#after)
      await this.inner.outbox.release(
        options.owner,
        behind.map((e) => e.id),
      )
      const fresh: OutboxEntry[] = claimed.filter((e) => e.id > this.#after)
      for (const e of fresh) if (e.id > this.#after) this.#after = e.id
      return fresh
    },
    acknowledge: (owner, ids) => this.inner.outbox.acknowledge(owner, ids),
    fail: (options) => this.inner.outbox.fail(options),
    release: (owner, ids) => this.inner.outbox.release(owner, ids),
    retryDead: (id) => this.inner.outbox.retryDead(id),
    discardDead: (id) => this.inner.outbox.discardDead(id),
    purgePublished: (olderThanMs, limit) => this.inner.outbox.purgePublished(olderThanMs, limit),
    lag: () => this.inner.outbox.lag(),
    get: (id) => this.inner.outbox.get(id),
    listForAggregate: (tenantId, aggregateId) => this.inner.outbox.listForAggregate(tenantId, aggregateId),
    settle: (options) => this.inner.outbox.settle(options),
    list: (query) => this.inner.outbox.list(query),
  }
  override get outbox(): OutboxAccess {
    return this.#outbox
  }
}

/** Keys identifier uniqueness by (tenant, value), ignoring the kind: an email and a username collide. */
class KindlessIdentifierStore extends DelegatingStore {
  override transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    return super.transaction(tenantId, async (tx) => {
      const written: { kind: IdentifierKind; value: string; userId: string }[] = []
      const put = tx.putIdentifier.bind(tx)
      tx.putIdentifier = (identifier, precondition) => {
        written.push(identifier)
        put(identifier, precondition)
      }
      const result = await fn(tx)
      for (const w of written) {
        const other = await tx.findIdentifier(w.kind === 'email' ? 'username' : 'email', w.value)
        if (other && other.userId !== w.userId) {
          throw new ConflictError(ErrorCode.DUPLICATE_IDENTIFIER, 'identifier is taken')
        }
      }
      return result
    })
  }
}

/** Compares identifiers under an accent- and case-insensitive collation (utf8mb4_general_ci-like). */
class CollatingStore extends DelegatingStore {
  static fold(value: string): string {
    return value.normalize('NFD').replace(/\p{M}/gu, '').replace(/ß/g, 'ss').replace(/ı/g, 'i')
  }
  override transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    return super.transaction(tenantId, (tx) => {
      const put = tx.putIdentifier.bind(tx)
      tx.putIdentifier = (identifier, precondition) =>
        put({ ...identifier, value: CollatingStore.fold(identifier.value) }, precondition)
      const find = tx.findIdentifier.bind(tx)
      tx.findIdentifier = (kind, value) => find(kind, CollatingStore.fold(value))
      return fn(tx)
    })
  }
  override findUserByIdentifier(tenantId: string, kind: IdentifierKind, value: string) {
    return super.findUserByIdentifier(tenantId, kind, CollatingStore.fold(value))
  }
  override getIdentifier(tenantId: string, kind: IdentifierKind, value: string) {
    return super.getIdentifier(tenantId, kind, CollatingStore.fold(value))
  }
}

/** After close(), its calls fail as a driver's would: a raw TypeError, not STORE_CLOSED. */
class ClosedTypeErrorStore extends DelegatingStore {
  // A public flag: the proxy is `this` inside methods, and a private field cannot be read through it.
  closed = false
  constructor() {
    super()
    // biome-ignore lint/correctness/noConstructorReturn: a proxy that fails every call once closed
    return new Proxy(this, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver)
        if (prop === 'close' || typeof value !== 'function' || !target.closed) return value
        return () => Promise.reject(new TypeError("Cannot read properties of null (reading 'query')"))
      },
    })
  }
  override async close(): Promise<void> {
    this.closed = true
    await super.close()
  }
}

// ---- the broken stores added with the 25-bug table --------------------------------------------------------

/**
 * Commits the records and events, then the audit records in a second transaction (an audit writer on its own
 * connection): a crash or a refused audit write between the two leaves a change with no audit trail.
 */
class SplitAuditStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const audit: AuditDraft[] = []
    const result = await this.inner.transaction(tenantId, (tx) => {
      tx.appendAudit = (entry) => {
        audit.push(entry)
      }
      return fn(tx)
    })
    if (audit.length > 0) {
      await this.inner.transaction(tenantId, async (tx) => {
        for (const entry of audit) tx.appendAudit(entry)
      })
    }
    return result
  }
}

type Replay = (tx: UnitOfWork) => Promise<void>

/** The version a record has now, read through a unit of work (null: no such record). */
async function versionNow(tx: UnitOfWork, type: string, id: string, userId: string): Promise<number | null> {
  const pick = (rows: Array<{ id: string; version: number }>) =>
    rows.find((r) => r.id === id)?.version ?? null
  if (type === 'tenant') return (await tx.getTenant())?.version ?? null
  if (type === 'user') return (await tx.getUser(id))?.version ?? null
  if (type === 'profile') return (await tx.getProfile(userId))?.version ?? null
  if (type === 'identifier') return pick(await tx.listIdentifiers(userId))
  if (type === 'factor') return pick(await tx.listFactors(userId))
  if (type === 'session') return (await tx.getSession(id))?.version ?? null
  return (await tx.getToken(id))?.version ?? null
}

/**
 * Updates without the version check (`UPDATE ... WHERE id = $1`): a commit that meets a newer version writes
 * over it, as if it had read the latest. Lost updates, and a single-use state consumed twice.
 */
class LastWriterWinsStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const replay: Replay[] = []
    let ran: { value: T } | undefined
    try {
      return await this.inner.transaction(tenantId, async (tx) => {
        const record = (name: string, type: string, idOf: (d: never) => [string, string]) => {
          const original = (tx as unknown as Record<string, (...a: unknown[]) => void>)[name]!.bind(tx)
          ;(tx as unknown as Record<string, unknown>)[name] = (draft: never, precondition: unknown) => {
            original(draft, precondition)
            const [id, userId] = idOf(draft)
            replay.push(async (again) => {
              const current = await versionNow(again, type, id, userId)
              const blind =
                current === null || (precondition as { mustNotExist?: true }).mustNotExist
                  ? precondition
                  : { expectedVersion: current }
              ;(again as unknown as Record<string, (...a: unknown[]) => void>)[name]!(draft, blind)
            })
          }
        }
        const byId = (d: { id: string; userId?: string }): [string, string] => [d.id, d.userId ?? d.id]
        record('putTenant', 'tenant', byId)
        record('putUser', 'user', byId)
        record('putIdentifier', 'identifier', byId)
        record('putProfile', 'profile', (d: { userId: string }) => [d.userId, d.userId])
        record('putFactor', 'factor', byId)
        record('putSession', 'session', byId)
        record('putToken', 'token', byId)
        record('deleteIdentifier', 'identifier', byId)
        record('deleteFactor', 'factor', byId)
        record('deleteSession', 'session', byId)
        record('deleteToken', 'token', byId)
        record('deleteProfile', 'profile', ((userId: string) => [userId, userId]) as never)
        const appendAudit = tx.appendAudit.bind(tx)
        tx.appendAudit = (entry) => {
          appendAudit(entry)
          replay.push(async (again) => again.appendAudit(entry))
        }
        const enqueue = tx.enqueue.bind(tx)
        tx.enqueue = (event) => {
          enqueue(event)
          replay.push(async (again) => again.enqueue(event))
        }
        const value = await fn(tx)
        ran = { value }
        return value
      })
    } catch (error) {
      if (!ran || !isUserEngineError(error, ErrorCode.VERSION_CONFLICT)) throw error
      await this.inner.transaction(tenantId, async (again) => {
        for (const r of replay) await r(again)
      })
      return ran.value
    }
  }
}

/** Keys identifier uniqueness by kind and value across every tenant: one tenant's email blocks another's. */
class GlobalIdentifierStore extends DelegatingStore {
  readonly #owners = new Map<string, string>()
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const written: string[] = []
    const result = await this.inner.transaction(tenantId, async (tx) => {
      const put = tx.putIdentifier.bind(tx)
      tx.putIdentifier = (identifier, precondition) => {
        written.push(`${identifier.kind}\u0000${identifier.value}`)
        put(identifier, precondition)
      }
      const value = await fn(tx)
      for (const k of written) {
        const owner = this.#owners.get(k)
        if (owner !== undefined && owner !== tenantId)
          throw new ConflictError(ErrorCode.DUPLICATE_IDENTIFIER, 'identifier is taken')
      }
      return value
    })
    for (const k of written) this.#owners.set(k, tenantId)
    return result
  }
}

/** Resumes a user listing at the cursor's user instead of after it (`>=` for `>`). */
class OffByOneCursorStore extends DelegatingStore {
  override async listUsers(tenantId: string, query: ListUsersQuery = {}): Promise<Page<UserRecord>> {
    if (query.cursor === undefined || query.identifierPrefix) return super.listUsers(tenantId, query)
    const limit = validatePageSize(query.limit)
    const after = decodeIdCursor(query.cursor)
    const all = (await this.inner.listUsers(tenantId, { ...query, cursor: undefined, limit: 500 })).items
    const rest = all.filter((u) => u.id >= after)
    const items = rest.slice(0, limit)
    const last = items[items.length - 1]
    return { items, nextCursor: rest.length > limit && last ? encodeCursor(last.id) : null }
  }
}

/** Every audit record of the tenant (or user), read through the correct store's pages. */
async function wholeTrail(inner: UserEngineStore, tenantId: string, userId: string | undefined) {
  const out: AuditRecord[] = []
  let cursor: string | undefined
  do {
    const page = await inner.listAudit(tenantId, { limit: 500, cursor, ...(userId ? { userId } : {}) })
    out.push(...page.items)
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return out
}

/** Resumes an audit listing after the cursor record's time: records of one commit share it, so some vanish. */
class TimeCursorAuditStore extends DelegatingStore {
  override async listAudit(tenantId: string, query: ListAuditQuery = {}): Promise<Page<AuditRecord>> {
    if (query.cursor === undefined) return super.listAudit(tenantId, query)
    await super.listAudit(tenantId, { ...query, limit: 1 }) // the correct store's cursor checks
    const limit = validatePageSize(query.limit)
    const after = decodeIdCursor(query.cursor)
    const all = await wholeTrail(this.inner, tenantId, undefined)
    const at = all.find((a) => a.id === after)?.occurredAt ?? ''
    const rest = all
      .filter((a) => a.occurredAt > at)
      .filter((a) => query.userId === undefined || a.userId === query.userId)
    const items = rest.slice(0, limit)
    const last = items[items.length - 1]
    return { items, nextCursor: rest.length > limit && last ? encodeCursor(last.id) : null }
  }
}

/** Answers a cursor it cannot find (another tenant's) with the first page instead of VALIDATION. */
class LenientAuditCursorStore extends DelegatingStore {
  override async listAudit(tenantId: string, query: ListAuditQuery = {}): Promise<Page<AuditRecord>> {
    try {
      return await super.listAudit(tenantId, query)
    } catch (error) {
      if (query.cursor === undefined || !isUserEngineError(error, ErrorCode.VALIDATION)) throw error
      return super.listAudit(tenantId, { ...query, cursor: undefined })
    }
  }
}

/** Counts users without the status filter (the count query forgot its WHERE clause). */
class CountIgnoresStatusStore extends DelegatingStore {
  override countUsers(tenantId: string, query: Parameters<UserEngineStore['countUsers']>[1] = {}) {
    const { status: _ignored, ...rest } = query
    return super.countUsers(tenantId, rest)
  }
}

/** Maps every unique violation to ALREADY_EXISTS, a taken identifier included. */
class UniqueViolationCodeStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    try {
      return await super.transaction(tenantId, fn)
    } catch (error) {
      if (isUserEngineError(error, ErrorCode.DUPLICATE_IDENTIFIER) && failedAtCommit(error))
        throw new ConflictError(ErrorCode.ALREADY_EXISTS, 'unique violation')
      throw error
    }
  }
}

/** Re-wraps commit errors in errors of its own, losing the commit-phase mark the engine's retry needs. */
class UnmarkedCommitErrorStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    try {
      return await super.transaction(tenantId, fn)
    } catch (error) {
      if (error instanceof UserEngineError && failedAtCommit(error))
        throw new UserEngineError(error.code, error.message, { details: error.details })
      throw error
    }
  }
}

/** Creates a missing tenant on the fly (`INSERT ... ON CONFLICT DO NOTHING`) instead of refusing the commit. */
class AutoTenantStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    try {
      return await super.transaction(tenantId, fn)
    } catch (error) {
      if (!isUserEngineError(error, ErrorCode.NOT_FOUND) || !failedAtCommit(error)) throw error
      await super.transaction(tenantId, async (tx) => {
        tx.putTenant({ id: tenantId, name: 'auto', status: 'active' }, { mustNotExist: true })
      })
      return super.transaction(tenantId, fn)
    }
  }
}

/** Ready as soon as it opens: the provider never checks its schema history. */
class AlwaysReadyStore extends DelegatingStore {
  override async readiness(): Promise<Readiness> {
    const r = await super.readiness()
    return { ...r, ready: true, reason: null }
  }
}

/** Reports every version as applied on each migrate(), migrated or not. */
class RepeatingMigrateStore extends DelegatingStore {
  override async migrate(): Promise<MigrateResult> {
    const result = await super.migrate()
    const applied = SCHEMA_VERSIONS.map((v) => ({ version: v.version, name: v.name, executionMs: 0 }))
    return { ...result, fromVersion: 0, applied }
  }
}

/** close() a second time throws (a pool ended twice) instead of doing nothing. */
class CloseTwiceStore extends DelegatingStore {
  #closed = false
  override async close(): Promise<void> {
    if (this.#closed) throw new UserEngineError(ErrorCode.STORE_CLOSED, 'the store is closed')
    this.#closed = true
    await super.close()
  }
}

/** Reads a session's tenant status from a cache filled at first sight: a suspension never shows. */
class StaleTenantStatusStore extends DelegatingStore {
  readonly #status = new Map<string, 'active' | 'suspended'>()
  override async findSession(tenantId: string, sessionId: string) {
    const found = await super.findSession(tenantId, sessionId)
    if (!found) return null
    if (!this.#status.has(tenantId)) this.#status.set(tenantId, found.tenantStatus)
    return { ...found, tenantStatus: this.#status.get(tenantId)! }
  }
}

/** Purges every expired session and token at once, ignoring `limit` (one unbounded DELETE). */
class UnboundedPurgeStore extends DelegatingStore {
  override purgeExpired(tenantId: string, query: { before: string; limit: number }) {
    if (typeof query?.limit === 'number' && query.limit >= 1 && query.limit <= 10_000)
      return super.purgeExpired(tenantId, { ...query, limit: 10_000 })
    return super.purgeExpired(tenantId, query)
  }
}

/** Lists every sealed factor, the ones under the current key included (the exclusion was left out). */
class SealedFactorsExcludeIgnoredStore extends DelegatingStore {
  static readonly NONE = newId('key')
  override async listSealedFactors(
    tenantId: string,
    query: Parameters<UserEngineStore['listSealedFactors']>[1],
  ) {
    return super.listSealedFactors(tenantId, {
      ...query,
      excludeKeyId: SealedFactorsExcludeIgnoredStore.NONE,
    })
  }
}

/** Returns each aggregate's claimed events newest first (ORDER BY sequence DESC). */
class ReversedClaimStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      claim: async (options) => {
        const claimed = await inner.claim(options)
        const groups = new Map<string, OutboxEntry[]>()
        for (const e of claimed) {
          const k = `${e.tenantId}:${e.aggregateId}`
          groups.set(k, [...(groups.get(k) ?? []), e])
        }
        return [...groups.values()].flatMap((g) => g.reverse())
      },
    })
  }
}

/** Reads `leaseMs` as seconds: leases outlive the relay that took them by a factor of 1000. */
class LeaseSecondsStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      claim: (options) =>
        inner.claim(
          typeof options?.leaseMs === 'number' ? { ...options, leaseMs: options.leaseMs * 1000 } : options,
        ),
    })
  }
}

/** Dead-letters only after one attempt more than `maxAttempts` (`>` for `>=`). */
class DeadLetterLateStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    const more = (n: unknown) => (typeof n === 'number' ? n + 1 : n) as number
    return outboxWith(inner, {
      fail: (options) => inner.fail({ ...options, maxAttempts: more(options.maxAttempts) }),
      settle: (options) => inner.settle({ ...options, maxAttempts: more(options.maxAttempts) }),
    })
  }
}

/** Makes a failed event due again at once, ignoring `backoffMs`: a poison event spins the relay. */
class NoBackoffStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      fail: (options) => inner.fail({ ...options, backoffMs: 0 }),
      settle: (options) =>
        inner.settle({
          ...options,
          items: options.items.map((i) => (i.outcome === 'failed' ? { ...i, backoffMs: 0 } : i)),
        }),
    })
  }
}

/**
 * An outbox that shows `keep(error)` as the `lastError` of each event a `fail` or failed `settle` item changed,
 * in place of what the correct store kept: a store keeping errors its own way.
 */
function outboxKeepingErrors(inner: OutboxAccess, keep: (error: string) => string): OutboxAccess {
  const errors = new Map<string, string>()
  const patch = (e: OutboxEntry): OutboxEntry =>
    errors.has(e.id) ? { ...e, lastError: errors.get(e.id)! } : e
  return outboxWith(inner, {
    fail: async (options) => {
      const status = await inner.fail(options)
      if (status !== null) errors.set(options.eventId, keep(options.error))
      return status
    },
    settle: async (options) => {
      const result = await inner.settle(options)
      // An event named twice keeps its first item, as the correct store's settle does.
      const first = new Map<string, (typeof options.items)[number]>()
      for (const i of options.items) if (!first.has(i.eventId)) first.set(i.eventId, i)
      for (const i of first.values())
        if (i.outcome === 'failed' && result.get(i.eventId) !== 'lost') errors.set(i.eventId, keep(i.error))
      return result
    },
    get: async (id) => {
      const e = await inner.get(id)
      return e && patch(e)
    },
    listForAggregate: async (tenantId, aggregateId) =>
      (await inner.listForAggregate(tenantId, aggregateId)).map(patch),
  })
}

/** Keeps a publisher's whole error message as lastError: rows grow with whatever a broker says. */
class UncappedLastErrorStore extends DelegatingStore {
  #outbox: OutboxAccess | undefined
  override get outbox(): OutboxAccess {
    this.#outbox ??= outboxKeepingErrors(this.inner.outbox, (error) => error)
    return this.#outbox
  }
}

/**
 * Counts a failure as read, then write (`SELECT failures` ... `UPDATE SET failures = $read + 1`): a call that
 * lands between another's read and write is lost.
 */
class ReadThenWriteThrottleStore extends DelegatingStore {
  override get throttle(): ThrottleAccess {
    const inner = this.inner.throttle
    return {
      read: (tenantId, keys) => inner.read(tenantId, keys),
      clear: (tenantId, keys) => inner.clear(tenantId, keys),
      recordFailure: async (tenantId, keys, policy, now) => {
        const before = await inner.read(tenantId, keys)
        await yieldToLoop()
        const meanwhile = await inner.read(tenantId, keys)
        const same = JSON.stringify(before) === JSON.stringify(meanwhile)
        // Another caller wrote between this one's read and write: its write and this one's are the same row
        // value, so only one failure counts.
        return same ? inner.recordFailure(tenantId, keys, policy, now) : meanwhile
      },
    }
  }
}

/** Keys throttle rows by key alone, not tenant and key: one tenant's failures lock another's users. */
class TenantlessThrottleStore extends DelegatingStore {
  static readonly SHARED = newId('ct')
  override get throttle(): ThrottleAccess {
    const inner = this.inner.throttle
    const t = (tenantId: string) => {
      try {
        assertId(tenantId, 'tenantId')
        return TenantlessThrottleStore.SHARED
      } catch {
        return tenantId // the correct store's VALIDATION
      }
    }
    return {
      read: (tenantId, keys) => inner.read(t(tenantId), keys),
      clear: (tenantId, keys) => inner.clear(t(tenantId), keys),
      recordFailure: (tenantId, keys, policy, now) => inner.recordFailure(t(tenantId), keys, policy, now),
    }
  }
}

// ---- more broken stores: outbox heads, soft deletes, prefix search done in code --------------------------

/**
 * Claims an aggregate's next event while its head is leased to another relay: the "no earlier event pending"
 * check looks only at unleased events (`NOT EXISTS (... AND lease_until IS NULL)`).
 */
class ClaimPastLeasedHeadStore extends DelegatingStore {
  readonly #tenants = new Set<string>()
  override transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    this.#tenants.add(tenantId)
    return super.transaction(tenantId, fn)
  }
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      claim: async (options) => {
        const claimed = await inner.claim(options)
        const now = Date.now()
        for (const tenantId of this.#tenants) {
          const pending = (await inner.list({ status: 'pending', tenantId, limit: 1000 })).items
          const byAggregate = new Map<string, OutboxEntry[]>()
          for (const e of pending)
            byAggregate.set(e.aggregateId, [...(byAggregate.get(e.aggregateId) ?? []), e])
          for (const events of byAggregate.values()) {
            events.sort((a, b) => a.sequence - b.sequence || a.position - b.position)
            const [head, next] = events
            const heldByOther =
              head?.leaseOwner != null &&
              head.leaseOwner !== options.owner &&
              Date.parse(head.leaseUntil!) > now
            if (heldByOther && next && next.leaseOwner === null && Date.parse(next.availableAt) <= now)
              claimed.push({
                ...next,
                leaseOwner: options.owner,
                leaseUntil: new Date(now + options.leaseMs).toISOString(),
              })
          }
        }
        return claimed
      },
    })
  }
}

/** Implements `fail` as a release: no attempt counted, no backoff, no error kept, never dead. */
class FailAsReleaseStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      fail: async (options) =>
        (await inner.release(options.owner, [options.eventId])) > 0 ? 'pending' : null,
    })
  }
}

/**
 * Deletes identifiers softly (a `deleted_at` column) under a unique index that still covers deleted rows:
 * a deleted identifier's value can never be taken again.
 */
class SoftDeletedIdentifierStore extends DelegatingStore {
  readonly #tombstones = new Set<string>()
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const deleted: Array<{ id: string; userId: string }> = []
    const values: string[] = []
    const result = await super.transaction(tenantId, async (tx) => {
      const del = tx.deleteIdentifier.bind(tx)
      tx.deleteIdentifier = (ref, precondition) => {
        deleted.push(ref)
        del(ref, precondition)
      }
      const put = tx.putIdentifier.bind(tx)
      tx.putIdentifier = (identifier, precondition) => {
        if (this.#tombstones.has(`${tenantId}\u0000${identifier.kind}\u0000${identifier.value}`))
          throw new ConflictError(ErrorCode.DUPLICATE_IDENTIFIER, 'identifier is taken')
        put(identifier, precondition)
      }
      const value = await fn(tx)
      // What the deleted rows held, read from the committed state (the unit's own reads hide them).
      for (const ref of deleted) {
        const rows = await this.inner.transaction(tenantId, (read) => read.listIdentifiers(ref.userId))
        const row = rows.find((r) => r.id === ref.id)
        if (row) values.push(`${tenantId}\u0000${row.kind}\u0000${row.value}`)
      }
      return value
    })
    for (const v of values) this.#tombstones.add(v)
    return result
  }
}

/** Marks revoked sessions deleted but `findSession` forgets the filter: a revoked session still validates. */
class SoftDeletedSessionStore extends DelegatingStore {
  readonly #revoked = new Map<string, Awaited<ReturnType<UserEngineStore['findSession']>>>()
  override async findSession(tenantId: string, sessionId: string) {
    const found = await super.findSession(tenantId, sessionId)
    if (found) this.#revoked.set(`${tenantId}\u0000${sessionId}`, found)
    return found ?? this.#revoked.get(`${tenantId}\u0000${sessionId}`) ?? null
  }
}

/** Every user holding an identifier of `kind`, with its identifiers, through the correct store's pages. */
async function usersWithIdentifiers(
  inner: UserEngineStore,
  tenantId: string,
  status: ListUsersQuery['status'],
) {
  const out: ListedUser[] = []
  let cursor: string | undefined
  do {
    const page = await inner.listUsers(tenantId, { limit: 500, cursor, includeIdentifiers: true, status })
    out.push(...page.items)
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return out
}

/**
 * Serves prefix searches in code, from every user's identifiers: `match` decides what a prefix matches,
 * `compare` the order. The stores below get one of them wrong, as a hand-written SQL or ORM query would.
 */
class CodedPrefixSearchStore extends DelegatingStore {
  constructor(
    readonly match: (value: string, prefix: string) => boolean,
    readonly compare: (a: string, b: string) => number,
  ) {
    super()
  }
  async #matches(tenantId: string, query: ListUsersQuery) {
    const { kind, prefix } = query.identifierPrefix!
    const found: Array<{ value: string; user: ListedUser }> = []
    for (const user of await usersWithIdentifiers(this.inner, tenantId, query.status)) {
      const values = (user.identifiers ?? [])
        .filter((i) => i.kind === kind && this.match(i.value, prefix))
        .map((i) => i.value)
        .sort(this.compare)
      if (values[0] !== undefined) found.push({ value: values[0], user })
    }
    return found.sort((a, b) => this.compare(a.value, b.value))
  }
  override async listUsers(tenantId: string, query: ListUsersQuery = {}): Promise<Page<ListedUser>> {
    const correct = await super.listUsers(tenantId, query) // the correct store's validation
    if (!query.identifierPrefix) return correct
    const limit = validatePageSize(query.limit)
    const after = query.cursor === undefined ? null : decodeValueCursor(query.cursor)
    const rest = (await this.#matches(tenantId, query)).filter(
      (m) => after === null || this.compare(m.value, after) > 0,
    )
    const items = rest.slice(0, limit)
    const last = items[items.length - 1]
    return {
      items: items.map(({ user }) => {
        if (query.includeIdentifiers) return user
        const { identifiers: _left, ...plain } = user
        return plain
      }),
      nextCursor: rest.length > limit && last ? encodeValueCursor(last.value) : null,
    }
  }
  override async countUsers(tenantId: string, query: Parameters<UserEngineStore['countUsers']>[1] = {}) {
    const correct = await super.countUsers(tenantId, query)
    return query.identifierPrefix ? (await this.#matches(tenantId, query)).length : correct
  }
}

/** Sorts prefix matches with JavaScript's `<` (UTF-16 units), not code points. */
class Utf16PrefixOrderStore extends CodedPrefixSearchStore {
  constructor() {
    super(
      (value, prefix) => value.startsWith(prefix),
      (a, b) => (a < b ? -1 : a > b ? 1 : 0),
    )
  }
}

/** Matches prefixes with `LIKE prefix || '%'` without escaping: `_` and `%` in a prefix are wildcards. */
class UnescapedLikePrefixStore extends CodedPrefixSearchStore {
  constructor() {
    super((value, prefix) => {
      const pattern = [...prefix]
        .map((c) => (c === '%' ? '.*' : c === '_' ? '.' : c.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')))
        .join('')
      return new RegExp(`^${pattern}`, 'su').test(value)
    }, compareCodePoints)
  }
}

/** Deletes with `DELETE ... WHERE id = $1 AND version = $2` and never checks that a row went: a missing record's delete succeeds. */
class UncheckedDeleteStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const ops: Replay[] = []
    const deletes: Array<{ type: string; id: string; userId: string }> = []
    let ran: { value: T } | undefined
    try {
      return await this.inner.transaction(tenantId, async (tx) => {
        const raw = tx as unknown as Record<string, (...a: unknown[]) => void>
        for (const name of Object.keys(WRITE_METHODS)) {
          const original = raw[name]!.bind(tx)
          raw[name] = (...args: unknown[]) => {
            original(...args)
            const type = WRITE_METHODS[name]!
            if (name.startsWith('delete')) {
              const ref = (type === 'profile' ? { id: args[0], userId: args[0] } : args[0]) as {
                id: string
                userId: string
              }
              deletes.push({ type, ...ref })
              ops.push(async (again) => {
                if ((await versionNow(again, type, ref.id, ref.userId)) !== null)
                  (again as unknown as Record<string, (...a: unknown[]) => void>)[name]!(...args)
              })
            } else
              ops.push(async (again) =>
                (again as unknown as Record<string, (...a: unknown[]) => void>)[name]!(...args),
              )
          }
        }
        const value = await fn(tx)
        ran = { value }
        return value
      })
    } catch (error) {
      if (!ran || deletes.length === 0 || !isUserEngineError(error, ErrorCode.VERSION_CONFLICT)) throw error
      await this.inner.transaction(tenantId, async (again) => {
        for (const op of ops) await op(again)
      })
      return ran.value
    }
  }
}

/** The unit-of-work write methods and the record type each writes. */
const WRITE_METHODS: Record<string, string> = {
  putTenant: 'tenant',
  putUser: 'user',
  putIdentifier: 'identifier',
  putProfile: 'profile',
  putFactor: 'factor',
  putSession: 'session',
  putToken: 'token',
  deleteIdentifier: 'identifier',
  deleteProfile: 'profile',
  deleteFactor: 'factor',
  deleteSession: 'session',
  deleteToken: 'token',
  appendAudit: 'audit',
  enqueue: 'event',
}

/** Measures the oldest pending age from when the event became due (`availableAt`): a backed-off event looks new. */
class LagFromDueTimeStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      lag: async () => {
        const lag = await inner.lag()
        const pending = (await inner.list({ status: 'pending', limit: 1000 })).items
        const due = Math.min(...pending.map((e) => Date.parse(e.availableAt)))
        return { ...lag, oldestPendingAgeMs: pending.length === 0 ? 0 : Math.max(0, Date.now() - due) }
      },
    })
  }
}

/**
 * Commits the records and audit, then the events in a second transaction, into an outbox of its own (a second
 * database, or a second connection): a crash or a refused event between the two loses the event. The outbox
 * keeps a copy of each user and tenant record's version, so events still carry the version as sequence.
 */
class SplitOutboxStore extends DelegatingStore {
  readonly eventStore = new InMemoryUserEngineStore()
  override get outbox(): OutboxAccess {
    return this.eventStore.outbox
  }
  override async migrate() {
    await this.eventStore.migrate()
    return super.migrate()
  }
  override async close() {
    await this.eventStore.close()
    await super.close()
  }
  override async diagnostics(): Promise<Diagnostics> {
    const [records, outbox] = [await super.diagnostics(), await this.eventStore.diagnostics()]
    const counts = { ...records.counts }
    for (const [k, n] of Object.entries(outbox.counts)) if (k.startsWith('outbox_')) counts[k] = n
    return { ...records, counts }
  }
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const events: Parameters<UnitOfWork['enqueue']>[0][] = []
    const mirrored: Array<{ type: 'user' | 'tenant'; id: string }> = []
    const result = await this.inner.transaction(tenantId, (tx) => {
      tx.enqueue = (event) => {
        events.push(event)
      }
      const putUser = tx.putUser.bind(tx)
      tx.putUser = (user, precondition) => {
        mirrored.push({ type: 'user', id: user.id })
        putUser(user, precondition)
      }
      const putTenant = tx.putTenant.bind(tx)
      tx.putTenant = (tenant, precondition) => {
        mirrored.push({ type: 'tenant', id: tenant.id })
        putTenant(tenant, precondition)
      }
      return fn(tx)
    })
    if (mirrored.length > 0 || events.length > 0) {
      await this.eventStore.transaction(tenantId, async (tx) => {
        for (const m of mirrored) {
          const copy = m.type === 'user' ? await tx.getUser(m.id) : await tx.getTenant()
          const write = copy ? { expectedVersion: copy.version } : ({ mustNotExist: true } as const)
          if (m.type === 'user') tx.putUser({ id: m.id, status: 'active' }, write)
          else tx.putTenant({ id: m.id, name: 'copy', status: 'active' }, write)
        }
        for (const event of events) tx.enqueue(event)
      })
    }
    return result
  }
}

/**
 * Caches the records it read and hands out the cached objects themselves: a caller that changes one (a
 * factor's state it then does not write, an audit record) rewrites what every later read returns.
 */
class SharedObjectsStore extends DelegatingStore {
  readonly #cache = new Map<string, unknown>()
  #own<T extends { id: string; version?: number }>(kind: string, tenantId: string, record: T): T {
    const key = `${kind}\0${tenantId}\0${record.id}\0${record.version ?? ''}`
    if (!this.#cache.has(key)) this.#cache.set(key, record)
    return this.#cache.get(key) as T
  }
  override async getUser(tenantId: string, userId: string) {
    const user = await this.inner.getUser(tenantId, userId)
    return user && this.#own('user', tenantId, user)
  }
  override async listAudit(tenantId: string, query?: ListAuditQuery): Promise<Page<AuditRecord>> {
    const page = await this.inner.listAudit(tenantId, query)
    return { ...page, items: page.items.map((a) => this.#own('audit', tenantId, a)) }
  }
  override transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    return this.inner.transaction(tenantId, (tx) => {
      const listFactors = tx.listFactors.bind(tx)
      tx.listFactors = async (userId) =>
        (await listFactors(userId)).map((f) => this.#own('factor', tenantId, f))
      return fn(tx)
    })
  }
}

/** Stamps audit records with the database's clock at insert (`occurred_at DEFAULT now()`), not the unit's. */
class AuditDatabaseClockStore extends DelegatingStore {
  readonly #stamped = new Map<string, string>()
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    let audited = false
    const result = await this.inner.transaction(tenantId, (tx) => {
      const appendAudit = tx.appendAudit.bind(tx)
      tx.appendAudit = (entry) => {
        audited = true
        appendAudit(entry)
      }
      return fn(tx)
    })
    if (audited) {
      const at = new Date().toISOString()
      let cursor: string | undefined
      do {
        const page = await this.inner.listAudit(tenantId, { limit: 500, ...(cursor ? { cursor } : {}) })
        for (const a of page.items) if (!this.#stamped.has(a.id)) this.#stamped.set(a.id, at)
        cursor = page.nextCursor ?? undefined
      } while (cursor)
    }
    return result
  }
  override async listAudit(tenantId: string, query?: ListAuditQuery): Promise<Page<AuditRecord>> {
    const page = await this.inner.listAudit(tenantId, query)
    return {
      ...page,
      items: page.items.map((a) => ({ ...a, occurredAt: this.#stamped.get(a.id) ?? a.occurredAt })),
    }
  }
}

/** `outbox.list` drops the tenant filter (`WHERE status = $1 AND ($3 IS NULL OR aggregate_id = $3)`). */
class OutboxListAnyTenantStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      list: ({ tenantId: _ignored, ...query }) => inner.list(query),
    })
  }
}

/**
 * The outbox list cursor names the last event only, so any listing resumes from it: this store re-tags a
 * cursor for whatever listing it is passed to (the shipped stores' tag, recomputed here).
 */
class OutboxListCursorAnyListingStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      list: (query) => {
        let parts: unknown[]
        try {
          parts = JSON.parse(Buffer.from(String(query.cursor), 'base64url').toString('utf8'))
        } catch {
          return inner.list(query)
        }
        if (!Array.isArray(parts)) return inner.list(query)
        parts[5] = createHash('sha256')
          .update([query.status, query.tenantId ?? '', query.aggregateId ?? ''].join('\u0000'))
          .digest('hex')
          .slice(0, 12)
        return inner.list({ ...query, cursor: Buffer.from(JSON.stringify(parts)).toString('base64url') })
      },
    })
  }
}

/** Skips a write its checks refuse (as a store that logs and drops what it cannot store) and commits the rest. */
class SkipsRefusedWritesStore extends DelegatingStore {
  override transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    return super.transaction(tenantId, (tx) => {
      for (const method of ['putUser', 'putIdentifier', 'appendAudit', 'enqueue'] as const) {
        const write = (tx[method] as (...args: unknown[]) => void).bind(tx)
        ;(tx as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          try {
            write(...args)
          } catch (error) {
            if (!isUserEngineError(error, ErrorCode.VALIDATION)) throw error
          }
        }
      }
      return fn(tx)
    })
  }
}

/** `purgeExpired` deletes `expires_at <= before`: a session expiring at the cut itself goes too. */
class InclusivePurgeStore extends DelegatingStore {
  override purgeExpired(tenantId: string, query: PurgeExpiredQuery): Promise<PurgeExpiredResult> {
    const cut = typeof query?.before === 'string' ? Date.parse(query.before) : Number.NaN
    if (Number.isNaN(cut)) return this.inner.purgeExpired(tenantId, query)
    return this.inner.purgeExpired(tenantId, { ...query, before: new Date(cut + 1).toISOString() })
  }
}

/** `settle` finds each event by id alone (`WHERE id = $1`): an item's tenantId is never compared. */
class SettleByIdStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      settle: async (options) => {
        const items = await Promise.all(
          options.items.map(async (item) => ({
            ...item,
            tenantId: (await inner.get(item.eventId))?.tenantId ?? item.tenantId,
          })),
        )
        return inner.settle({ ...options, items })
      },
    })
  }
}

/** `purgePublished` cuts by `occurred_at` instead of `published_at`: an event published just now can go. */
class PurgeByOccurredStore extends DelegatingStore {
  readonly #published = new Set<string>()
  readonly #purged = new Set<string>()
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    const visible = (e: OutboxEntry | null) => (e && !this.#purged.has(e.id) ? e : null)
    return outboxWith(inner, {
      acknowledge: async (owner, ids) => {
        const done = await inner.acknowledge(owner, ids)
        for (const id of done) this.#published.add(id)
        return done
      },
      settle: async (options) => {
        const result = await inner.settle(options)
        for (const [id, status] of result) if (status === 'published') this.#published.add(id)
        return result
      },
      // Purged rows are hidden rather than deleted: the reference store has no purge by occurrence.
      purgePublished: async (olderThanMs, limit) => {
        // Validation and the closed check as the reference store does them: only the cut is wrong here.
        validatePurgePublished(olderThanMs, limit)
        await inner.lag()
        const cut = Date.now() - olderThanMs
        let purged = 0
        for (const id of this.#published) {
          const e = visible(await inner.get(id))
          if (purged < limit && e && Date.parse(e.occurredAt) < cut) {
            this.#purged.add(id)
            purged++
          }
        }
        return purged
      },
      get: async (id) => visible(await inner.get(id)),
      listForAggregate: async (tenantId, aggregateId) =>
        (await inner.listForAggregate(tenantId, aggregateId)).filter((e) => visible(e)),
    })
  }
}

/**
 * Writes a commit's events before its checks and takes them back when a check fails: while the commit runs,
 * a relay can claim them (here: each event shows to claims for a few ms before the checked commit runs).
 */
class EventsBeforeChecksStore extends DelegatingStore {
  readonly #showing = new Map<string, OutboxEntry>()
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      claim: async (options) => {
        const claimed = await inner.claim(options)
        const early = [...this.#showing.values()].filter((e) => e.leaseOwner === null)
        for (const e of early) this.#showing.set(e.id, { ...e, leaseOwner: options.owner })
        return [...claimed, ...early]
      },
      release: async (owner, ids) => {
        const own = ids.filter((id) => this.#showing.get(id)?.leaseOwner === owner)
        for (const id of own) this.#showing.set(id, { ...this.#showing.get(id)!, leaseOwner: null })
        return (await inner.release(owner, ids)) + own.length
      },
    })
  }
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const early: string[] = []
    const drafts: OutboxEntry[] = []
    try {
      return await this.inner.transaction(tenantId, async (tx) => {
        const enqueue = tx.enqueue.bind(tx)
        let position = 0
        tx.enqueue = (event) => {
          enqueue(event)
          const id = newId('evt')
          early.push(id)
          const now = new Date().toISOString()
          drafts.push({
            id,
            tenantId,
            aggregateType: event.userId === undefined ? 'tenant' : 'user',
            aggregateId: event.userId ?? tenantId,
            sequence: 0,
            position: position++,
            type: event.type,
            payload: event.payload ?? {},
            occurredAt: now,
            status: 'pending',
            attempts: 0,
            availableAt: now,
            leaseOwner: null,
            leaseUntil: null,
            publishedAt: null,
            lastError: null,
          })
        }
        const result = await fn(tx)
        // The commit: "insert the events, then check and write the records".
        for (const e of drafts) this.#showing.set(e.id, e)
        if (drafts.length > 0) await new Promise((resolve) => setTimeout(resolve, 5))
        return result
      })
    } finally {
      for (const id of early) this.#showing.delete(id)
    }
  }
}

/** Names the stored and the new factor in a version conflict's message: the secrets with them. */
class FactorConflictLeakStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const factors: unknown[] = []
    try {
      return await this.inner.transaction(tenantId, (tx) => {
        const putFactor = tx.putFactor.bind(tx)
        tx.putFactor = (factor, precondition) => {
          factors.push(factor)
          putFactor(factor, precondition)
        }
        return fn(tx)
      })
    } catch (error) {
      if (isUserEngineError(error) && error.code === ErrorCode.VERSION_CONFLICT && factors.length > 0) {
        const shown = factors.map((f) => {
          const { secret, ...rest } = f as { secret: { reveal(): unknown } }
          return JSON.stringify({ ...rest, secret: secret.reveal() })
        })
        throw new ConflictError(ErrorCode.VERSION_CONFLICT, `${error.message} (new: ${shown.join(', ')})`, {
          details: error.details,
        })
      }
      throw error
    }
  }
}

/** Reports the code's latest version as the schema version in diagnostics, whatever the database holds. */
class DiagnosticsVersionStore extends DelegatingStore {
  override async diagnostics(): Promise<Diagnostics> {
    const d = await super.diagnostics()
    return { ...d, schemaVersion: d.latestVersion }
  }
}

/**
 * Writes a session update whatever is stored (a DynamoDB PutItem): a refresh of a session revoked meanwhile
 * conflicts, and is then written back as a new row, so the revoked session is live again.
 */
class SessionUpsertStore extends DelegatingStore {
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const updates: Parameters<UnitOfWork['putSession']>[0][] = []
    try {
      return await this.inner.transaction(tenantId, (tx) => {
        const put = tx.putSession.bind(tx)
        tx.putSession = (session, precondition) => {
          if ('expectedVersion' in precondition) updates.push(session)
          put(session, precondition)
        }
        return fn(tx)
      })
    } catch (error) {
      if (!isUserEngineError(error, ErrorCode.VERSION_CONFLICT) || updates.length === 0) throw error
      let upserted = false
      for (const session of updates) {
        if (await this.inner.findSession(tenantId, session.id)) continue
        await this.inner.transaction(tenantId, async (tx) => {
          const user = await tx.getUser(session.userId)
          if (user) tx.putUser({ id: user.id, status: user.status }, { expectedVersion: user.version })
          tx.putSession(session, { mustNotExist: true })
        })
        upserted = true
      }
      if (!upserted) throw error
      return undefined as T
    }
  }
}

// ---- the broken stores added with the second provider probe ------------------------------------------------

/** Records one session or token row name: `tenant`, NUL, `id`. */
const rowName = (tenantId: string, id: string) => `${tenantId}\u0000${id}`

/**
 * `purgeExpired` selects the expired rows, then deletes them by id a round trip later without re-checking
 * expiry (`SELECT id ... WHERE expires_at < $2`, then `DELETE ... WHERE id = ANY($1)`): a refresh that commits
 * in between is deleted with them. Deleted-though-live rows are hidden here (the reference store deletes only
 * expired rows), from every read the harness makes of sessions and tokens.
 */
class SelectThenDeletePurgeStore extends DelegatingStore {
  readonly #written = new Map<string, Map<string, 'session' | 'token'>>()
  readonly #gone = new Set<string>()
  override transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    return super.transaction(tenantId, (tx) => {
      const rows = this.#written.get(tenantId) ?? new Map<string, 'session' | 'token'>()
      this.#written.set(tenantId, rows)
      const gone = (id: string) => this.#gone.has(rowName(tenantId, id))
      const [putSession, putToken] = [tx.putSession.bind(tx), tx.putToken.bind(tx)]
      tx.putSession = (session, precondition) => {
        rows.set(session.id, 'session')
        putSession(session, precondition)
      }
      tx.putToken = (token, precondition) => {
        rows.set(token.id, 'token')
        putToken(token, precondition)
      }
      const [getSession, getToken] = [tx.getSession.bind(tx), tx.getToken.bind(tx)]
      const [listSessions, listTokens] = [tx.listSessions.bind(tx), tx.listTokens.bind(tx)]
      tx.getSession = async (id) => (gone(id) ? null : getSession(id))
      tx.getToken = async (id) => (gone(id) ? null : getToken(id))
      tx.listSessions = async (userId) => (await listSessions(userId)).filter((r) => !gone(r.id))
      tx.listTokens = async (userId) => (await listTokens(userId)).filter((r) => !gone(r.id))
      return fn(tx)
    })
  }
  override async findSession(tenantId: string, sessionId: string) {
    const found = await super.findSession(tenantId, sessionId)
    return found && !this.#gone.has(rowName(tenantId, sessionId)) ? found : null
  }
  override async purgeExpired(tenantId: string, query: PurgeExpiredQuery): Promise<PurgeExpiredResult> {
    // Validation and the closed check as the correct store does them: a purge of nothing.
    await this.inner.purgeExpired(tenantId, { ...query, before: '1970-01-01T00:00:00.000Z' })
    const { before, limit } = query
    // The SELECT.
    const expired: { id: string; type: 'session' | 'token'; expiresAt: string }[] = []
    await this.inner.transaction(tenantId, async (tx) => {
      for (const [id, type] of this.#written.get(tenantId) ?? []) {
        if (this.#gone.has(rowName(tenantId, id))) continue
        const row = type === 'session' ? await tx.getSession(id) : await tx.getToken(id)
        if (row && row.expiresAt < before) expired.push({ id, type, expiresAt: row.expiresAt })
      }
    })
    const key = (r: (typeof expired)[number]) => `${r.expiresAt}\u0000${r.type}\u0000${r.id}`
    const picked = expired.sort((a, b) => (key(a) < key(b) ? -1 : 1)).slice(0, limit)
    // The round trip, then the DELETE by id: what is still expired goes as the correct store deletes it, what a
    // refresh moved past `before` meanwhile goes all the same.
    await new Promise((resolve) => setTimeout(resolve, 5))
    await this.inner.purgeExpired(tenantId, { before, limit })
    await this.inner.transaction(tenantId, async (tx) => {
      for (const r of picked) {
        const row = r.type === 'session' ? await tx.getSession(r.id) : await tx.getToken(r.id)
        if (row) this.#gone.add(rowName(tenantId, r.id))
      }
    })
    const sessions = picked.filter((r) => r.type === 'session').length
    return { sessions, tokens: picked.length - sessions }
  }
}

/**
 * Keeps a deleted profile's row as a tombstone and upserts an insert onto it (`ON CONFLICT DO UPDATE SET
 * version = version + 1`): a profile inserted where a deleted one was continues the old version instead of
 * starting at 1. Here the reference store holds the real rows; this store shows and takes versions shifted by
 * the tombstone's.
 */
class TombstoneVersionStore extends DelegatingStore {
  readonly #tombstones = new Map<string, number>()
  readonly #shift = new Map<string, number>()
  override async transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    const after: Array<() => void> = []
    const result = await super.transaction(tenantId, (tx) => {
      const key = (userId: string) => rowName(tenantId, userId)
      const shift = (userId: string) => this.#shift.get(key(userId)) ?? 0
      const [getProfile, putProfile, deleteProfile] = [
        tx.getProfile.bind(tx),
        tx.putProfile.bind(tx),
        tx.deleteProfile.bind(tx),
      ]
      tx.getProfile = async (userId) => {
        const profile = await getProfile(userId)
        return profile && { ...profile, version: profile.version + shift(profile.userId) }
      }
      tx.putProfile = (profile, precondition) => {
        if ('expectedVersion' in precondition) {
          putProfile(profile, { expectedVersion: precondition.expectedVersion - shift(profile.userId) })
          return
        }
        putProfile(profile, precondition)
        const tombstone = this.#tombstones.get(key(profile.userId))
        if (tombstone !== undefined) after.push(() => this.#shift.set(key(profile.userId), tombstone))
      }
      tx.deleteProfile = (userId, precondition) => {
        deleteProfile(userId, { expectedVersion: precondition.expectedVersion - shift(userId) })
        after.push(() => {
          this.#tombstones.set(key(userId), precondition.expectedVersion)
          this.#shift.delete(key(userId))
        })
      }
      return fn(tx)
    })
    for (const step of after) step()
    return result
  }
}

/** `release` checks the owner but not the lease's expiry (`WHERE lease_owner = $1`): a late release counts. */
class LateReleaseStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      release: async (owner, ids) => {
        const released = await inner.release(owner, ids)
        let late = 0
        for (const id of new Set(ids)) {
          const e = await inner.get(id)
          if (e?.status === 'pending' && e.leaseOwner === owner) late++
        }
        return released + late
      },
    })
  }
}

/** `settle` applies its items one by one (one UPDATE each): an event named twice is settled twice. */
class SettleEachItemStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      settle: async (options) => {
        if (!Array.isArray(options?.items) || options.items.length === 0) return inner.settle(options)
        const result = new Map<string, 'published' | 'pending' | 'dead' | 'released' | 'lost'>()
        for (const item of options.items) {
          for (const [id, outcome] of await inner.settle({ ...options, items: [item] }))
            result.set(id, outcome)
        }
        return result
      },
    })
  }
}

/** `settle` keys its input by event id as it reads it (`Map.set` per item): the last item for an id wins. */
class SettleLastItemWinsStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      settle: (options) => {
        if (!Array.isArray(options?.items)) return inner.settle(options)
        const last = new Map(options.items.map((i) => [i?.eventId, i]))
        return inner.settle({ ...options, items: [...last.values()] })
      },
    })
  }
}

/** `lag()` takes `min(occurred_at)` over pending and dead events (the status filter left out of the age). */
class LagCountsDeadStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      lag: async () => {
        const lag = await inner.lag()
        const waiting = [
          ...(await inner.list({ status: 'pending', limit: 1000 })).items,
          ...(await inner.list({ status: 'dead', limit: 1000 })).items,
        ]
        if (waiting.length === 0) return lag
        const oldest = Math.min(...waiting.map((e) => Date.parse(e.occurredAt)))
        return { ...lag, oldestPendingAgeMs: Math.max(0, Date.now() - oldest) }
      },
    })
  }
}

/** Keeps a failure's error as given (capped): NUL and unpaired surrogates reach `lastError`. */
class RawLastErrorStore extends DelegatingStore {
  #outbox: OutboxAccess | undefined
  override get outbox(): OutboxAccess {
    this.#outbox ??= outboxKeepingErrors(this.inner.outbox, (error) => error.slice(0, 500))
    return this.#outbox
  }
}

/** `outbox.subscribe` after `close()` still subscribes (a listener registry that never checks the store). */
class SubscribeAfterCloseStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      subscribe: async (onCommit) => {
        try {
          return await inner.subscribe!(onCommit)
        } catch (error) {
          if (!isUserEngineError(error, ErrorCode.STORE_CLOSED)) throw error
          return { close: async () => undefined }
        }
      },
    })
  }
}

/** `diagnostics()` never counts dead events (`outbox_dead` always 0: the count query filters them out). */
class DeadUncountedStore extends DelegatingStore {
  override async diagnostics(): Promise<Diagnostics> {
    const d = await super.diagnostics()
    return { ...d, counts: { ...d.counts, outbox_dead: 0 } }
  }
}

/** The reference store's outbox rows, for broken stores that change what its methods did. */
function rowsOf(outbox: OutboxAccess): OutboxRow[] {
  return (outbox as unknown as { rows: OutboxRow[] }).rows
}

/** A continuation sets the head's lease to now + leaseMs (`lease_until = $now + $lease`), shortening a longer one. */
class ShortenedRenewalStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      claim: async (options) => {
        // The heads the owner holds now: those a continuation renews.
        const now = Date.now()
        const heads = (options?.continueAfter ?? []).flatMap((cursor) => {
          const after = rowsOf(inner).find((r) => r.id === cursor.eventId)
          const head = rowsOf(inner).find(
            (r) =>
              after &&
              r.tenantId === after.tenantId &&
              r.aggregateId === after.aggregateId &&
              r.status === 'pending',
          )
          const held = head?.leaseOwner === options.owner && (head.leaseUntilMs ?? 0) > now
          return held ? [head] : []
        })
        const claimed = await inner.claim(options)
        for (const head of heads) {
          head.leaseUntilMs = Date.now() + options.leaseMs
          head.leaseUntil = new Date(head.leaseUntilMs).toISOString()
        }
        return claimed
      },
    })
  }
}

/** `settle` checks the owner but not the lease's expiry: a late settle applies its items. */
class LateSettleBatchStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      settle: async (options) => {
        const far = Date.now() + 60_000
        for (const item of Array.isArray(options?.items) ? options.items : []) {
          const row = rowsOf(inner).find((r) => r.id === item?.eventId)
          if (row?.status === 'pending' && row.leaseOwner === options.owner) {
            row.leaseUntilMs = far
            row.leaseUntil = new Date(far).toISOString()
          }
        }
        return inner.settle(options)
      },
    })
  }
}

/** `retryDead` clears `lastError` with the status (`SET status = 'pending', attempts = 0, last_error = NULL`). */
class RetryClearsErrorStore extends DelegatingStore {
  override get outbox(): OutboxAccess {
    const inner = this.inner.outbox
    return outboxWith(inner, {
      retryDead: async (eventId) => {
        const retried = await inner.retryDead(eventId)
        const row = rowsOf(inner).find((r) => r.id === eventId)
        if (retried && row) row.lastError = null
        return retried
      },
    })
  }
}

/** A provider bug, the store that has it, and exactly the harness cases it fails. */
export interface BrokenStore {
  /** The bug, as the provider guide's table states it. */
  readonly bug: string
  readonly create: () => UserEngineStore
  /** Harness hooks beyond `createStore` and `refuseRows`. */
  readonly options?: Partial<ConformanceOptions>
  /** Every case of the whole harness that fails on it, and no other. */
  readonly caughtBy: readonly string[]
  /**
   * Cases that catch it only when the clock lines up (records of separate commits in one millisecond): they
   * may fail or pass, so they are neither required nor unexpected.
   */
  readonly sometimesCaughtBy?: readonly string[]
}

const DIFFERENTIAL =
  'differential: random operation sequences over three tenants match InMemoryUserEngineStore'
const COMMIT_TIME =
  'records: records, audit records and events carry the unit’s time (CommitPlan.now), not the store’s clock'

export const BROKEN_STORES: readonly BrokenStore[] = [
  {
    bug: 'commits the buffered writes although the callback threw',
    create: () => new NoRollbackStore(),
    caughtBy: [
      'rollback: a throwing callback writes nothing and its error is rethrown unchanged',
      'rollback: a thrown non-Error value is rethrown unchanged and writes nothing',
      "tenants: a tenant's committed change shows in the listing; a rolled-back one does not",
      'outbox: an event from a rolled-back commit is never claimed',
      'records: a write the engine never makes (an unknown status or kind, a value not normalized, nested audit data, no JSON form) is VALIDATION and writes nothing',
      DIFFERENTIAL,
    ],
  },
  {
    bug: 'commits the records and events, then the audit records in a second transaction',
    create: () => new SplitAuditStore(),
    caughtBy: [
      "rollback: a commit whose audit record or event the database refuses writes none of the unit's records, audit or events",
      // The second transaction stamps its part with its own unit's time.
      COMMIT_TIME,
    ],
  },
  {
    bug: 'commits the records and audit, then the events in a second transaction',
    create: () => new SplitOutboxStore(),
    caughtBy: [
      'records: a write the engine never makes (an unknown status or kind, a value not normalized, nested audit data, no JSON form) is VALIDATION and writes nothing',
      "versions: writing a user's records without writing the user fails with INVALID_UNIT_OF_WORK",
      "rollback: a commit whose audit record or event the database refuses writes none of the unit's records, audit or events",
      // The second transaction stamps its part with its own unit's time.
      COMMIT_TIME,
    ],
  },
  {
    bug: 'updates without the version check (`UPDATE ... WHERE id = $1`): the last writer wins',
    create: () => new LastWriterWinsStore(),
    caughtBy: [
      'versions: an expectedVersion that does not match fails with VERSION_CONFLICT and writes nothing',
      'versions: a conflict raised by the commit is marked as such (markCommitPhase); one the callback throws is not',
      'rollback: a failed precondition on the last write discards the earlier writes, audit and events',
      'outbox: an event from a rolled-back commit is never claimed',
      "sessions: rule 5: a session or token insert or delete needs the user's write; a session update (a refresh) does not",
      'concurrency: 16 racers consuming one single-use factor state: exactly one commit wins',
      'concurrency: racing profile updates with re-read and retry: no update is lost',
      'redaction: errors name ids and codes, never the values involved',
      'outbox: an event of a commit that fails is never claimable, not even while that commit runs',
      DIFFERENTIAL,
    ],
  },
  {
    bug: 'creates a missing tenant on the fly instead of refusing the commit with NOT_FOUND',
    create: () => new AutoTenantStore(),
    caughtBy: [
      'versions: a commit into a tenant without a tenant record fails with NOT_FOUND and writes nothing',
      DIFFERENTIAL,
    ],
  },
  {
    bug: 'maps every unique violation to ALREADY_EXISTS, a taken identifier included',
    create: () => new UniqueViolationCodeStore(),
    caughtBy: [
      'identifiers: a taken normalized value is refused with DUPLICATE_IDENTIFIER and nothing is written',
      'identifiers: changing an identifier to a taken value is refused with DUPLICATE_IDENTIFIER',
      'identifiers: two racing transactions inserting one identifier: exactly one wins, the other gets DUPLICATE_IDENTIFIER',
      'rollback: a failed precondition on the last write discards the earlier writes, audit and events',
      'redaction: errors name ids and codes, never the values involved',
      DIFFERENTIAL,
    ],
  },
  {
    bug: 're-wraps commit errors in its own errors, losing the commit-phase mark',
    create: () => new UnmarkedCommitErrorStore(),
    caughtBy: [
      'versions: a conflict raised by the commit is marked as such (markCommitPhase); one the callback throws is not',
    ],
  },
  {
    bug: "reads fall back to another tenant's record",
    create: () => new TenantLeakStore(),
    caughtBy: [
      "tenant-isolation: store reads of another tenant's records return null",
      "tenant-isolation: writes are scoped: the same ids in another tenant are new records and leave the first tenant's alone",
      DIFFERENTIAL,
    ],
  },
  {
    bug: "keys identifier uniqueness without the tenant: one tenant's email blocks another's",
    create: () => new GlobalIdentifierStore(),
    caughtBy: [
      'identifiers: the same value in another tenant, or as another kind of the same user, is accepted',
      DIFFERENTIAL,
    ],
  },
  {
    bug: 'keys identifier uniqueness without the kind',
    create: () => new KindlessIdentifierStore(),
    caughtBy: [
      'identifiers: uniqueness is per kind: an email and a username with the same value belong to two users',
    ],
  },
  {
    bug: 'compares identifiers under an accent- and case-insensitive collation (`utf8mb4_general_ci`, citext)',
    create: () => new CollatingStore(),
    caughtBy: [
      'identifiers: values normalization keeps apart stay apart: no accent-, width- or case-insensitive collation',
      'user-search: the order is code-point order, and LIKE wildcards and backslashes in a prefix match literally',
    ],
  },
  {
    bug: 'pages `listUsers` by offset',
    create: () => new OffsetPaginationStore(),
    caughtBy: [
      'pagination: users inserted between pages never make a user present at the start skipped or repeated',
    ],
  },
  {
    bug: "resumes `listUsers` at the cursor's user instead of after it (`>=` for `>`)",
    create: () => new OffByOneCursorStore(),
    caughtBy: [
      'pagination: pages hold at most `limit` users, in ascending id order, and end with a null cursor',
      'pagination: a status filter lists only users with that status, across pages',
      'pagination: users inserted between pages never make a user present at the start skipped or repeated',
      'user-search: includeIdentifiers gives every listed user all of its identifiers, in id order; without it, none',
      'user-search: countUsers counts what listUsers lists: all, by status, by prefix, in an empty or unknown tenant',
      DIFFERENTIAL,
    ],
  },
  {
    bug: '`countUsers` ignores the status filter',
    create: () => new CountIgnoresStatusStore(),
    caughtBy: [
      'user-search: countUsers counts what listUsers lists: all, by status, by prefix, in an empty or unknown tenant',
      DIFFERENTIAL,
    ],
  },
  {
    bug: "resumes `listAudit` after the cursor record's time: the rest of its commit is skipped",
    create: () => new TimeCursorAuditStore(),
    caughtBy: ['audit: pages follow the cursor without gaps or repeats, filtered or not'],
    // These show it only when two of their commits' audit records share a millisecond (the tenant case's
    // a.0 and a.1; the random sequences' commits), which a loaded machine may not give.
    sometimesCaughtBy: [
      "audit: a cursor resumes only in its own tenant: another tenant's cursor, or an unknown id, is VALIDATION",
      DIFFERENTIAL,
    ],
  },
  {
    bug: 'answers an unknown or foreign audit cursor with the first page instead of VALIDATION',
    create: () => new LenientAuditCursorStore(),
    caughtBy: [
      'pagination: a malformed cursor or limit fails with VALIDATION',
      "audit: a cursor resumes only in its own tenant: another tenant's cursor, or an unknown id, is VALIDATION",
    ],
  },
  {
    bug: 'diagnostics carry an identifier value',
    create: () => new DiagnosticsLeakStore(),
    caughtBy: ['redaction: diagnostics hold counts only'],
  },
  {
    bug: 'returned user objects carry the email',
    create: () => new RecordLeakStore(),
    caughtBy: [
      'redaction: returned objects print only the values asked for, and factor secrets print redacted',
      DIFFERENTIAL,
    ],
  },
  {
    bug: 'a conflict message names the duplicate value',
    create: () => new ErrorLeakStore(),
    caughtBy: ['redaction: errors name ids and codes, never the values involved'],
  },
  {
    bug: 'a raw driver `TypeError` after `close()`',
    create: () => new ClosedTypeErrorStore(),
    caughtBy: [
      'closed-store: after close(), every method rejects with STORE_CLOSED, and close() again is a no-op',
    ],
  },
  {
    bug: 'a second `close()` throws instead of doing nothing',
    create: () => new CloseTwiceStore(),
    caughtBy: [
      'closed-store: after close(), every method rejects with STORE_CLOSED, and close() again is a no-op',
    ],
  },
  {
    bug: 'reports ready before `migrate()`',
    create: () => new AlwaysReadyStore(),
    caughtBy: ['readiness: an unmigrated store reports not ready with SCHEMA_NOT_READY'],
  },
  {
    bug: '`migrate()` reports every version as applied each time it runs',
    create: () => new RepeatingMigrateStore(),
    caughtBy: [
      'migration: a second migrate() applies nothing',
      'migration: migrate() on an already migrated (shared) database applies nothing and keeps the data',
    ],
  },
  {
    bug: 'opens over a database migrated by a newer release, or over a drifted history',
    create: () => new DelegatingStore(),
    options: {
      // The planted row is ignored on reopen: the store reports ready as if the history were its own.
      plantSchemaVersion: async () => undefined,
      reopenStore: async () => new DelegatingStore(new InMemoryUserEngineStore({ migrated: true })),
    },
    caughtBy: [
      'schema-history: a database migrated by a newer release is refused with SCHEMA_NEWER_THAN_CODE',
      'schema-history: a history whose recorded version differs from the code (drift) is refused with SCHEMA_DRIFT',
      "schema-history: a history row with the code's version and name but another checksum (a file edited after it was applied) is refused with SCHEMA_DRIFT",
    ],
  },
  {
    bug: 'the relay claims by a cursor on the event id',
    create: () => new CursorRelayStore(),
    caughtBy: [
      'outbox: claim returns only the head of each aggregate, and the next event once the head is published',
      'outbox: a held lease blocks a second claim; release gives it back without counting an attempt',
      'outbox: an expired lease can be claimed by another relay',
      'outbox: a late acknowledge, fail, release or settle, after the lease expired and another relay claimed, changes nothing',
      'outbox: an acknowledge, fail, release or settle after the lease expired changes nothing, even when nobody took the event over',
      'outbox: fail backs off: the event is not claimable until its backoff has passed',
      "outbox: after maxAttempts an event is dead and blocks its user's later events until retryDead",
      'outbox: fail and settle keep the first 500 characters of an error as lastError, NUL and unpaired surrogates replaced by U+FFFD',
      'outbox: a commit that began earlier but lands later is claimed, not skipped',
      'outbox: per-user order holds across two claimers draining to completion',
      "outbox: claim takes each aggregate's ready prefix in order, at most perAggregate, and nothing more of it meanwhile",
      'outbox: a prefix stops before the first event that is not claimable: leased, not due or dead',
      'outbox: the limit cuts the last prefix short, never skipping an event; newAggregates bounds how many start',
      "outbox: a continuation claims what follows the owner's last event, renews its lease, and is refused to others",
      "outbox: a continuation claims nothing once the owner's lease on the aggregate lapsed, and the head is free",
    ],
  },
  {
    bug: "returns an aggregate's claimed events newest first",
    create: () => new ReversedClaimStore(),
    caughtBy: [
      'outbox: a continuation counts against the claim limit like any event',
      "outbox: claim takes each aggregate's ready prefix in order, at most perAggregate, and nothing more of it meanwhile",
      'outbox: a prefix stops before the first event that is not claimable: leased, not due or dead',
      'outbox: the limit cuts the last prefix short, never skipping an event; newAggregates bounds how many start',
      "outbox: a continuation claims what follows the owner's last event, renews its lease, and is refused to others",
      "outbox: a continuation claims nothing once the owner's lease on the aggregate lapsed, and the head is free",
    ],
  },
  {
    bug: 'reads `leaseMs` as seconds',
    create: () => new LeaseSecondsStore(),
    caughtBy: [
      'outbox: an expired lease can be claimed by another relay',
      'outbox: a late acknowledge, fail, release or settle, after the lease expired and another relay claimed, changes nothing',
      'outbox: an acknowledge, fail, release or settle after the lease expired changes nothing, even when nobody took the event over',
      'outbox: fail backs off: the event is not claimable until its backoff has passed',
      "outbox: a continuation claims what follows the owner's last event, renews its lease, and is refused to others",
      "outbox: a continuation claims nothing once the owner's lease on the aggregate lapsed, and the head is free",
    ],
  },
  {
    bug: 'a late `acknowledge`/`fail` reported as done',
    create: () => new LateSettleStore(),
    caughtBy: [
      'outbox: acknowledge publishes only for the lease holder',
      'outbox: a late acknowledge, fail, release or settle, after the lease expired and another relay claimed, changes nothing',
      'outbox: an acknowledge, fail, release or settle after the lease expired changes nothing, even when nobody took the event over',
      "outbox: a continuation claims what follows the owner's last event, renews its lease, and is refused to others",
    ],
  },
  {
    bug: '`purgePublished` also deletes pending events',
    create: () => new PurgeEverythingStore(),
    caughtBy: ['outbox: purgePublished deletes only published events older than the cut, never pending ones'],
  },
  {
    bug: 'dead-letters one attempt after `maxAttempts` (`>` for `>=`)',
    create: () => new DeadLetterLateStore(),
    caughtBy: [
      "outbox: after maxAttempts an event is dead and blocks its user's later events until retryDead",
      "outbox: discardDead unblocks the dead event's user",
      'outbox: settle publishes, fails and releases a batch at once, only where the owner holds the lease',
      'outbox: list finds pending and dead events by tenant and aggregate, page by page in aggregate order',
      'records: diagnostics counts what the store holds: records by type, audit records, events by outbox status',
      'outbox: lag: oldestPendingAgeMs is the age of the oldest pending event since it occurred, backed off or not',
    ],
  },
  {
    bug: 'a failed event is due again at once, `backoffMs` ignored',
    create: () => new NoBackoffStore(),
    caughtBy: [
      'outbox: settle: a published event gets publishedAt (purgePublished takes at most limit a call), a failed one waits its backoffMs',
      'outbox: fail backs off: the event is not claimable until its backoff has passed',
      'outbox: a prefix stops before the first event that is not claimable: leased, not due or dead',
    ],
  },
  {
    bug: 'keeps the whole error as `lastError`, uncapped',
    create: () => new UncappedLastErrorStore(),
    caughtBy: [
      'outbox: fail and settle keep the first 500 characters of an error as lastError, NUL and unpaired surrogates replaced by U+FFFD',
    ],
  },
  {
    bug: 'counts a sign-in failure as read, then write: concurrent failures are lost',
    create: () => new ReadThenWriteThrottleStore(),
    caughtBy: ['throttle: 16 concurrent failures on one key count exactly 16'],
  },
  {
    bug: 'keys throttle rows without the tenant',
    create: () => new TenantlessThrottleStore(),
    caughtBy: ['throttle: clear forgets keys; keys are scoped to their tenant'],
  },
  {
    bug: "`findSession` reads the tenant's status from a cache: a suspension never shows",
    create: () => new StaleTenantStatusStore(),
    caughtBy: [
      "sessions: findSession: the session and its tenant's status in one read; a deleted session or another tenant's is not found",
    ],
  },
  {
    bug: '`purgeExpired` ignores `limit`',
    create: () => new UnboundedPurgeStore(),
    caughtBy: [
      'sessions: purgeExpired deletes only expired sessions and tokens of the tenant, oldest first, at most limit',
    ],
  },
  {
    bug: '`listSealedFactors` ignores `excludeKeyId`',
    create: () => new SealedFactorsExcludeIgnoredStore(),
    caughtBy: [
      'sessions: listSealedFactors pages factors under other keys in id order; diagnostics count them per key id',
    ],
  },
  {
    bug: "claims an aggregate's next event while its head is leased to another relay",
    create: () => new ClaimPastLeasedHeadStore(),
    caughtBy: [
      'outbox: claim returns only the head of each aggregate, and the next event once the head is published',
      'outbox: concurrent claimers never hold the same event',
      'outbox: per-user order holds across two claimers draining to completion',
      'outbox: settle publishes, fails and releases a batch at once, only where the owner holds the lease',
    ],
  },
  {
    bug: 'implements `fail` as a release: no attempt counted, no backoff, never dead',
    create: () => new FailAsReleaseStore(),
    caughtBy: [
      'outbox: fail backs off: the event is not claimable until its backoff has passed',
      "outbox: after maxAttempts an event is dead and blocks its user's later events until retryDead",
      'outbox: fail and settle keep the first 500 characters of an error as lastError, NUL and unpaired surrogates replaced by U+FFFD',
      "outbox: discardDead unblocks the dead event's user",
      'outbox: a prefix stops before the first event that is not claimable: leased, not due or dead',
      'outbox: list finds pending and dead events by tenant and aggregate, page by page in aggregate order',
      'records: diagnostics counts what the store holds: records by type, audit records, events by outbox status',
      'outbox: lag: oldestPendingAgeMs is the age of the oldest pending event since it occurred, backed off or not',
    ],
  },
  {
    bug: 'deletes identifiers softly under a unique index that still covers them: a deleted value is never free again',
    create: () => new SoftDeletedIdentifierStore(),
    caughtBy: [
      'identifiers: a value deleted and inserted again in one unit commits, and a changed value frees the old one',
      'records: delete: identifier, profile and factor are gone and the identifier value is free again',
      'versions: a record deleted and inserted again (mustNotExist) starts over at version 1',
    ],
  },
  {
    bug: '`findSession` still finds a revoked (deleted) session',
    create: () => new SoftDeletedSessionStore(),
    caughtBy: [
      "sessions: findSession: the session and its tenant's status in one read; a deleted session or another tenant's is not found",
    ],
  },
  {
    bug: 'sorts prefix-search matches by UTF-16 units (JavaScript `<`), not code points',
    create: () => new Utf16PrefixOrderStore(),
    caughtBy: [
      'user-search: the order is code-point order, and LIKE wildcards and backslashes in a prefix match literally',
    ],
  },
  {
    bug: 'prefix search by `LIKE prefix%` without escaping: `_` and `%` in a prefix are wildcards',
    create: () => new UnescapedLikePrefixStore(),
    caughtBy: [
      'user-search: the order is code-point order, and LIKE wildcards and backslashes in a prefix match literally',
    ],
  },
  {
    bug: 'a delete that finds no row at the expected version succeeds (its row count never checked)',
    create: () => new UncheckedDeleteStore(),
    caughtBy: ['versions: an update or delete of a missing record fails with VERSION_CONFLICT'],
  },
  {
    bug: 'measures `oldestPendingAgeMs` from when an event became due, not when it occurred',
    create: () => new LagFromDueTimeStore(),
    caughtBy: [
      'outbox: lag: oldestPendingAgeMs is the age of the oldest pending event since it occurred, backed off or not',
    ],
  },
  {
    bug: 'hands out its own cached objects: a caller changing a returned record changes what the store returns',
    create: () => new SharedObjectsStore(),
    caughtBy: [
      'records: returned records are the caller’s: mutating them, deeply, changes nothing the store holds',
    ],
  },
  {
    bug: "stamps audit records with the database's clock at insert (`DEFAULT now()`), not the unit's time",
    create: () => new AuditDatabaseClockStore(),
    caughtBy: [COMMIT_TIME],
  },
  {
    bug: '`outbox.list` ignores the tenant filter',
    create: () => new OutboxListAnyTenantStore(),
    caughtBy: [
      "outbox: list by tenant, or by tenant and aggregate, never shows another tenant's events",
      'outbox: a list cursor resumes only its own listing: another tenant, aggregate or status is VALIDATION',
    ],
  },
  {
    bug: "the outbox list cursor names the last event only: another tenant's or status's listing resumes from it",
    create: () => new OutboxListCursorAnyListingStore(),
    caughtBy: [
      'outbox: a list cursor resumes only its own listing: another tenant, aggregate or status is VALIDATION',
    ],
  },
  {
    bug: 'skips a unit-of-work write its checks refuse and commits the rest of the unit',
    create: () => new SkipsRefusedWritesStore(),
    caughtBy: [
      'audit: the request context round-trips: request id, client IP and user agent',
      'records: a write the engine never makes (an unknown status or kind, a value not normalized, nested audit data, no JSON form) is VALIDATION and writes nothing',
      DIFFERENTIAL,
    ],
  },
  {
    bug: '`purgeExpired` deletes what expires at `before` too (`<=` for `<`)',
    create: () => new InclusivePurgeStore(),
    caughtBy: [
      'sessions: purgeExpired keeps a session or token whose expiresAt equals before: only expiresAt < before is expired',
      DIFFERENTIAL,
    ],
  },
  {
    bug: "`settle` finds events by id alone, ignoring the item's tenantId",
    create: () => new SettleByIdStore(),
    caughtBy: [
      "outbox: settle changes nothing for an item whose tenantId is not its event's, and reports it lost",
    ],
  },
  {
    bug: '`purgePublished` cuts by `occurredAt`, not `publishedAt`',
    create: () => new PurgeByOccurredStore(),
    caughtBy: ['outbox: purgePublished cuts by when an event was published, not when it occurred'],
  },
  {
    bug: "writes a commit's events before its version checks and deletes them when a check fails",
    create: () => new EventsBeforeChecksStore(),
    caughtBy: ['outbox: an event of a commit that fails is never claimable, not even while that commit runs'],
  },
  {
    bug: 'prints the stored and the new factor, secrets included, in a version conflict',
    create: () => new FactorConflictLeakStore(),
    caughtBy: ['redaction: errors name ids and codes, never the values involved'],
  },
  {
    bug: 'writes a session update whatever is stored (an upsert): a refresh racing a revoke brings the session back',
    create: () => new SessionUpsertStore(),
    caughtBy: [
      'sessions: a refresh that read a session before a revoke committed fails, and the session stays revoked',
    ],
  },
  {
    bug: "`diagnostics()` reports the code's latest schema version, not the database's",
    create: () => new DiagnosticsVersionStore(),
    caughtBy: ['readiness: an unmigrated store reports not ready with SCHEMA_NOT_READY'],
  },
  {
    bug: '`purgeExpired` selects the expired rows, then deletes them by id without re-checking expiry: a refresh committed in between is lost',
    create: () => new SelectThenDeletePurgeStore(),
    caughtBy: ['sessions: a purge racing refreshes never deletes a session a refresh kept alive'],
  },
  {
    bug: 'an insert where a deleted record was continues its version (a tombstone row upserted: old + 1), not 1',
    create: () => new TombstoneVersionStore(),
    caughtBy: ['versions: a record deleted and inserted again (mustNotExist) starts over at version 1'],
  },
  {
    bug: '`release` checks the owner but not the lease expiry: a late release counts',
    create: () => new LateReleaseStore(),
    caughtBy: [
      'outbox: an acknowledge, fail, release or settle after the lease expired changes nothing, even when nobody took the event over',
    ],
  },
  {
    bug: '`settle` applies its items one by one: an event named twice is settled twice (and reported lost)',
    create: () => new SettleEachItemStore(),
    caughtBy: ['outbox: settle: an event named twice in one call keeps its first item and is settled once'],
  },
  {
    bug: '`settle` lets the last item for an event id win, not the first',
    create: () => new SettleLastItemWinsStore(),
    caughtBy: ['outbox: settle: an event named twice in one call keeps its first item and is settled once'],
  },
  {
    bug: '`lag()` counts dead events in `oldestPendingAgeMs`',
    create: () => new LagCountsDeadStore(),
    caughtBy: [
      'outbox: lag: oldestPendingAgeMs is the age of the oldest pending event since it occurred, backed off or not',
    ],
  },
  {
    bug: 'keeps NUL and unpaired surrogates of an error in `lastError`',
    create: () => new RawLastErrorStore(),
    caughtBy: [
      'outbox: fail and settle keep the first 500 characters of an error as lastError, NUL and unpaired surrogates replaced by U+FFFD',
    ],
  },
  {
    bug: '`outbox.subscribe` still subscribes after `close()`',
    create: () => new SubscribeAfterCloseStore(),
    caughtBy: [
      'closed-store: after close(), every method rejects with STORE_CLOSED, and close() again is a no-op',
    ],
  },
  {
    bug: "a continuation sets the head's lease to now + leaseMs, shortening a longer one",
    create: () => new ShortenedRenewalStore(),
    caughtBy: [
      "outbox: a continuation never shortens the head's lease: a shorter leaseMs keeps the later leaseUntil",
    ],
  },
  {
    bug: '`settle` checks the owner but not the lease expiry: a late settle applies its items',
    create: () => new LateSettleBatchStore(),
    caughtBy: [
      'outbox: an acknowledge, fail, release or settle after the lease expired changes nothing, even when nobody took the event over',
    ],
  },
  {
    bug: '`retryDead` clears `lastError`',
    create: () => new RetryClearsErrorStore(),
    caughtBy: [
      "outbox: after maxAttempts an event is dead and blocks its user's later events until retryDead",
    ],
  },
  {
    bug: '`diagnostics()` reports no dead events (`outbox_dead` always 0)',
    create: () => new DeadUncountedStore(),
    caughtBy: [
      'records: diagnostics counts what the store holds: records by type, audit records, events by outbox status',
    ],
  },
]

/** The reference store's row refusal, for the broken stores that wrap it. */
export async function refuseRows(store: UserEngineStore, refusal: RowRefusal): Promise<void> {
  const inner = (store as DelegatingStore).inner
  assert.ok(inner instanceof InMemoryUserEngineStore, 'a broken store wraps the reference store')
  inner.refuseRows(refusal)
  // A store whose outbox is a database of its own: the refusal holds there too.
  if (store instanceof SplitOutboxStore) store.eventStore.refuseRows(refusal)
}
