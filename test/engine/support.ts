import assert from 'node:assert/strict'
import { after, afterEach, before, describe, test } from 'node:test'
import { TOTP, URI } from 'otpauth'
import {
  createKeyring,
  generateKey,
  type Keyring,
  UserEngine,
  type UserEngineOptions,
} from '../../src/engine/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { barrier } from '../../src/testing/shared/barrier.js'
import { ADAPTERS, type Adapter, type SqlAdapter } from '../support/adapters.js'

/** Argon2 at its cheapest: these tests check behaviour, not hashing cost. */
export const FAST_HASHING = { memoryCost: 64, timeCost: 1, parallelism: 1 } as const

export const T0 = Date.UTC(2024, 0, 1, 12, 0, 10)

/** Counts commits refused with VERSION_CONFLICT, to prove a race test really raced. */
export function conflictCounting(store: UserEngineStore): {
  store: UserEngineStore
  conflicts: () => number
  /** The next `parties` units wait, their work done, until all have done it: then they commit, and race. */
  holdCommits: (parties: number) => void
} {
  let conflicts = 0
  let hold: (() => Promise<void>) | undefined
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'transaction') {
        return async (tenantId: string, fn: Parameters<UserEngineStore['transaction']>[1]) => {
          const gate = hold
          const work: typeof fn = gate
            ? async (tx) => {
                const result = await fn(tx)
                await gate()
                return result
              }
            : fn
          try {
            return await target.transaction(tenantId, work)
          } catch (error) {
            if ((error as { code?: string }).code === 'VERSION_CONFLICT') conflicts++
            throw error
          }
        }
      }
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return {
    store: proxy,
    conflicts: () => conflicts,
    holdCommits: (parties) => {
      hold = barrier(parties)
    },
  }
}

export interface Harness {
  readonly store: UserEngineStore
  readonly engine: UserEngine
  readonly keyring: Keyring
  /** The engine's clock, in ms; tests move it to change TOTP steps. */
  now: number
}

export function setup(overrides: Partial<UserEngineOptions> = {}): Harness {
  const store = overrides.store ?? new InMemoryUserEngineStore({ migrated: true })
  const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } })
  const h = { store, keyring, now: T0 } as Harness & { engine: UserEngine }
  h.engine = new UserEngine({
    store,
    keyring,
    passwordHashing: FAST_HASHING,
    clock: () => h.now,
    ...overrides,
  })
  return h
}

/** The code an authenticator app holding this URI shows at `at`. */
export function codeFor(uri: string, at: number): string {
  const otp = URI.parse(uri)
  assert.ok(otp instanceof TOTP)
  return otp.generate({ timestamp: at })
}

/** A snapshot of everything a failed call must leave untouched. */
export async function snapshot(store: UserEngineStore, tenantId?: string): Promise<unknown> {
  const d = await store.diagnostics()
  const audit = tenantId ? (await store.listAudit(tenantId, { limit: 500 })).items.length : 0
  return { counts: d.counts, audit }
}

/**
 * Each commit about a user emits its events at the user's new version: so the user's outbox sequence is
 * 1, 2, 3 ... without gaps, one event per commit, and ends at the user's current version.
 */
export async function assertGapFreeOutbox(h: Harness, tenantId: string, userId: string): Promise<string[]> {
  const events = await h.store.outbox.listForAggregate(tenantId, userId)
  assert.deepEqual(
    events.map((e) => [e.sequence, e.position]),
    events.map((_, i) => [i + 1, 0]),
  )
  const user = await h.store.getUser(tenantId, userId)
  assert.equal(user?.version, events.length)
  for (const e of events) {
    assert.equal(e.aggregateType, 'user')
    assert.equal(e.payload.userId, userId)
  }
  return events.map((e) => e.type)
}

export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<Error> {
  let caught: unknown
  await assert.rejects(promise, (error: unknown) => {
    caught = error
    return true
  })
  assert.equal((caught as { code?: string }).code, code, `expected ${code}, got ${String(caught)}`)
  return caught as Error
}

/**
 * Registers `body` once per shipped store (ADAPTERS: memory, PGlite, the server), each with a migrated store
 * of its own that the describe block closes. `open` gives a further store over the same database (the
 * server: a second pool, as a second process would hold; elsewhere the same store).
 */
export async function forEachStore(
  title: string,
  body: (stores: { store: () => UserEngineStore; open: () => Promise<UserEngineStore> }) => void,
): Promise<void> {
  await describeEachAdapter(title, (adapter) => {
    let store: UserEngineStore | undefined
    let another: (() => Promise<UserEngineStore>) | undefined
    let release: (() => Promise<void>) | undefined
    before(async () => {
      // A migrated database from the adapter's image (PGlite) or template (the server): no initdb and no
      // migrations per block.
      if (!('database' in adapter)) {
        const opened = await adapter.migratedStore()
        store = opened.store
        release = opened.release
        return
      }
      const db = await (adapter as SqlAdapter).database(LATEST_SCHEMA_VERSION)
      release = () => db.drop()
      const first = await db.store()
      store = first
      another = adapter.name === 'postgres' ? () => db.store() : async () => first
    })
    after(async () => {
      await release?.()
    })
    body({
      store: () => {
        assert.ok(store, 'store opened')
        return store
      },
      open: async () => {
        assert.ok(store, 'store opened')
        return another ? another() : store
      },
    })
  })
}

/** One describe block per adapter in ADAPTERS; an adapter that cannot run here is one skipped test. */
async function describeEachAdapter(title: string, body: (adapter: Adapter) => void): Promise<void> {
  // The engine's use cases on the server once, with group commit on (the default); the harness runs the
  // store both ways.
  for (const adapter of ADAPTERS.filter((a) => a.groupCommit !== false)) {
    const skip = await adapter.skip()
    if (skip) test(`${title} on ${adapter.name}`, { skip }, () => {})
    else describe(`${title} on ${adapter.name}`, () => body(adapter))
  }
}

/**
 * Registers `body` once per shipped store; `fresh()` gives a migrated store over a database of its own
 * (PGlite from an image, the server from a template), released when its test ends. For tests that count
 * what is stored (diagnostics), where a shared database would hold other tests' records.
 */
export async function forEachFreshStore(
  title: string,
  body: (fresh: () => Promise<UserEngineStore>) => void,
): Promise<void> {
  await describeEachAdapter(title, (adapter) => {
    const releases: (() => Promise<void>)[] = []
    afterEach(async () => {
      await Promise.all(releases.splice(0).map((release) => release()))
    })
    body(async () => {
      const { store, release } = await adapter.migratedStore()
      releases.push(release)
      return store
    })
  })
}

export { generateKey }

/**
 * Records every store call a use case makes, reads inside units of work included (`tx.getToken`, ...), and
 * each commit that wrote something (`commit`): the cost of a call, as a list, to compare two calls' costs.
 */
export function tracing(store: UserEngineStore): { store: UserEngineStore; calls: string[] } {
  const calls: string[] = []
  let writes = false
  const wrapTx = (tx: object) =>
    new Proxy(tx, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target)
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          const name = String(prop)
          // Buffered writes are not store calls; the commit is (recorded below).
          if (/^(get|list|find)/.test(name)) calls.push(`tx.${name}`)
          else writes = true
          return value.apply(target, args)
        }
      },
    })
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (prop === 'transaction') {
        return async (tenantId: string, fn: (tx: never) => Promise<unknown>) => {
          calls.push('transaction')
          writes = false
          const result = await target.transaction(tenantId, (tx) => fn(wrapTx(tx) as never))
          if (writes) calls.push('commit')
          return result
        }
      }
      if (prop === 'throttle') {
        return new Proxy(value as object, {
          get(t, p) {
            const v = Reflect.get(t, p, t)
            return typeof v === 'function'
              ? (...args: unknown[]) => {
                  calls.push(`throttle.${String(p)}`)
                  return v.apply(t, args)
                }
              : v
          },
        })
      }
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls.push(String(prop))
        return value.apply(target, args)
      }
    },
  })
  return { store: proxy, calls }
}
