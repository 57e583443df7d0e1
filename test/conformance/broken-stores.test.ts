import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeIdCursor, encodeCursor } from '../../src/domain/cursor.js'
import { ConflictError, ErrorCode, isUserEngineError } from '../../src/domain/errors.js'
import type { IdentifierKind, OutboxEntry, UserRecord } from '../../src/domain/records.js'
import { validatePageSize } from '../../src/domain/validation.js'
import type {
  Diagnostics,
  ListUsersQuery,
  OutboxAccess,
  Page,
  UnitOfWork,
  UserEngineStore,
} from '../../src/store/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { type ConformanceReport, runConformance } from '../../src/testing/index.js'
import { DelegatingStore } from './delegating-store.js'

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
    const limit = validatePageSize(query.limit)
    const offset = query.cursor === undefined ? 0 : Number(decodeIdCursor(query.cursor).slice(1))
    const all = (await this.inner.listUsers(tenantId, { limit: 500, status: query.status })).items
    const items = all.slice(offset, offset + limit)
    return { items, nextCursor: offset + limit < all.length ? encodeCursor(`o${offset + limit}`) : null }
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
  #closed = false
  constructor() {
    super()
    // biome-ignore lint/correctness/noConstructorReturn: a proxy that fails every call once closed
    return new Proxy(this, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver)
        if (prop === 'close' || typeof value !== 'function' || !target.#closed) return value
        return () => Promise.reject(new TypeError("Cannot read properties of null (reading 'query')"))
      },
    })
  }
  override async close(): Promise<void> {
    this.#closed = true
    await super.close()
  }
}

async function run(createStore: () => UserEngineStore, suites: string[]): Promise<ConformanceReport> {
  return runConformance({
    createStore: async () => createStore(),
    suites,
    // A broken store shows after 2 to 15 runs (measured); 60 makes missing it about a 1 in 3000 chance.
    differential: { numRuns: 60 },
  })
}

function failedCases(report: ConformanceReport): string[] {
  return report.results.filter((r) => r.status === 'failed').map((r) => r.name)
}

function assertFails(report: ConformanceReport, expected: readonly string[]): void {
  const failed = failedCases(report)
  for (const name of expected)
    assert.ok(failed.includes(name), `expected "${name}" to fail; failed: ${failed.join('; ')}`)
  assert.equal(report.passed + report.failed + report.skipped, report.results.length)
}

test('the correct store passes every suite the broken stores are checked against', async () => {
  const report = await run(
    () => new DelegatingStore(),
    [
      'rollback',
      'tenant-isolation',
      'identifiers',
      'redaction',
      'pagination',
      'outbox',
      'closed-store',
      'differential',
    ],
  )
  assert.deepEqual(failedCases(report), [])
  for (const r of report.results.filter((x) => x.status === 'skipped')) {
    assert.match(r.reason ?? '', /lacks the (multiProcess|rowLocking) capability/, r.name)
  }
  assert.ok(report.passed > 0)
})

test('a store that commits when the callback throws fails the rollback and differential suites', async () => {
  const report = await run(() => new NoRollbackStore(), ['rollback', 'differential'])
  assertFails(report, [
    'rollback: a throwing callback writes nothing and its error is rethrown unchanged',
    'rollback: a thrown non-Error value is rethrown unchanged and writes nothing',
    'differential: random operation sequences over three tenants match InMemoryUserEngineStore',
  ])
  const differential = report.results.find((r) => r.suite === 'differential')
  assert.match(
    String((differential?.error as Error | undefined)?.message),
    /seed: -?\d+, path: '[\d:]+'/,
    'the failure names the seed',
  )
  assert.match(String((differential?.error as Error | undefined)?.message), /Counterexample/)
  // The first diverging step and both stores' results, not only the seed.
  assert.match(
    String((differential?.error as Error | undefined)?.message),
    /differs from the reference store\s+this store returned: .+\s+the reference store: .+/,
  )
})

test('a store whose reads ignore the tenant fails the tenant-isolation and differential suites', async () => {
  const report = await run(() => new TenantLeakStore(), ['tenant-isolation', 'differential'])
  assertFails(report, [
    "tenant-isolation: store reads of another tenant's records return null",
    'differential: random operation sequences over three tenants match InMemoryUserEngineStore',
  ])
})

test('a store whose diagnostics hold an identifier value fails the redaction suite', async () => {
  assertFails(await run(() => new DiagnosticsLeakStore(), ['redaction']), [
    'redaction: diagnostics hold counts only',
  ])
})

test('a store that returns personal data it was not asked for fails the redaction suite', async () => {
  assertFails(await run(() => new RecordLeakStore(), ['redaction']), [
    'redaction: returned objects print only the values asked for, and factor secrets print redacted',
  ])
})

test('a store whose conflict message names the identifier value fails the redaction suite', async () => {
  assertFails(await run(() => new ErrorLeakStore(), ['redaction']), [
    'redaction: errors name ids and codes, never the values involved',
  ])
})

test('a store paging users by offset fails the pagination suite', async () => {
  assertFails(await run(() => new OffsetPaginationStore(), ['pagination']), [
    'pagination: users inserted between pages never make a user present at the start skipped or repeated',
  ])
})

test('a relay claiming by cursor fails the outbox suite on the late commit', async () => {
  assertFails(await run(() => new CursorRelayStore(), ['outbox']), [
    'outbox: a commit that began earlier but lands later is claimed, not skipped',
  ])
})

test('a store keying identifier uniqueness without the kind fails the identifiers suite', async () => {
  assertFails(await run(() => new KindlessIdentifierStore(), ['identifiers']), [
    'identifiers: uniqueness is per kind: an email and a username with the same value belong to two users',
  ])
})

test('a store comparing identifiers under an accent- and case-insensitive collation fails the identifiers suite', async () => {
  assertFails(await run(() => new CollatingStore(), ['identifiers']), [
    'identifiers: values normalization keeps apart stay apart: no accent-, width- or case-insensitive collation',
  ])
})

test('a store that throws a raw TypeError after close() fails the closed-store suite', async () => {
  assertFails(await run(() => new ClosedTypeErrorStore(), ['closed-store']), [
    'closed-store: after close(), every method rejects with STORE_CLOSED, and close() again is a no-op',
  ])
})

test('a store that opens over a database newer than the code, or a drifted one, fails the schema-history suite', async () => {
  const report = await runConformance({
    createStore: async () => new DelegatingStore(),
    suites: ['schema-history'],
    // The planted row is ignored on reopen: the store reports ready as if the history were its own.
    plantSchemaVersion: async () => undefined,
    reopenStore: async () => new DelegatingStore(new InMemoryUserEngineStore({ migrated: true })),
  })
  assertFails(report, [
    'schema-history: a database migrated by a newer release is refused with SCHEMA_NEWER_THAN_CODE',
    'schema-history: a history whose recorded version differs from the code (drift) is refused with SCHEMA_DRIFT',
  ])
})

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

test('a store reporting a late acknowledge or fail as done fails the outbox suite', async () => {
  assertFails(await run(() => new LateSettleStore(), ['outbox']), [
    'outbox: an acknowledge or fail after the lease expired changes nothing, even when nobody took the event over',
  ])
})

test('a store whose purge deletes pending events fails the outbox suite', async () => {
  assertFails(await run(() => new PurgeEverythingStore(), ['outbox']), [
    'outbox: purgePublished deletes only published events older than the cut, never pending ones',
  ])
})
