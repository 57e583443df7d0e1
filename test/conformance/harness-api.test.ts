import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { StoreCapabilities, UserEngineStore } from '../../src/store/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import {
  CONFORMANCE_SUITES,
  ConformanceSkip,
  conformanceCases,
  registerConformanceTests,
  runConformance,
} from '../../src/testing/index.js'
import { DelegatingStore } from './delegating-store.js'

const memory = async () => new InMemoryUserEngineStore()
const MULTI_INSTANCE_CASES = 4
const NO_CONCURRENT_INSTANCES = 'the store lacks the concurrentInstances capability'
const OPTION_LACKS_CONCURRENT_INSTANCES =
  'the capabilities option lacks the concurrentInstances capability (skipped up front, before any store was opened)'

/** Several stores over one in-memory "database", claiming the capabilities a server database has. */
class SharedMemoryStore extends DelegatingStore {
  override get capabilities(): StoreCapabilities {
    return { concurrentInstances: true, isolatedClaims: true }
  }
  override async close(): Promise<void> {
    // The shared database outlives each handle, as a server database outlives a pool.
  }
}

/** A store over a shared in-memory "database" declaring what it is told to. */
class DeclaringStore extends DelegatingStore {
  constructor(
    inner: InMemoryUserEngineStore,
    readonly declares: StoreCapabilities,
  ) {
    super(inner)
  }
  override get capabilities(): StoreCapabilities {
    return this.declares
  }
  override async close(): Promise<void> {}
}

test('cases are named "suite: case", unique, and cover every suite in order', () => {
  const cases = conformanceCases({ createStore: memory })
  const names = cases.map((c) => c.name)
  assert.equal(new Set(names).size, names.length, 'case names are unique')
  assert.equal(
    cases.length,
    CONFORMANCE_SUITES.reduce((n, s) => n + s.cases.length, 0),
  )
  for (const c of cases) assert.ok(c.name.startsWith(`${c.suite}: `), c.name)
  assert.deepEqual(
    [...new Set(cases.map((c) => c.suite))],
    CONFORMANCE_SUITES.map((s) => s.name),
  )
  for (const suite of CONFORMANCE_SUITES) assert.ok(suite.cases.length > 0, `suite ${suite.name} has cases`)
})

test('an unknown suite name is refused rather than running nothing', () => {
  assert.throws(
    () => conformanceCases({ createStore: memory, suites: ['outbx'] }),
    /unknown conformance suite/,
  )
  assert.equal(conformanceCases({ createStore: memory, suites: ['readiness'] }).length, 3)
  // Selecting nothing is refused the same way: never "0 passed, 0 failed" in silence.
  assert.throws(
    () => conformanceCases({ createStore: memory, suites: [] }),
    (e: Error & { code?: string }) =>
      e.code === 'VALIDATION' && /no conformance suite selected/.test(e.message),
  )
})

test('bad harness options are VALIDATION before any case is built, naming the option', async () => {
  const bad: Array<[string, unknown, string]> = [
    ['no options', undefined, 'options'],
    ['no createStore', {}, 'createStore'],
    ['createStore not a function', { createStore: 'memory' }, 'createStore'],
    ['a misspelt hook', { createStore: memory, reopenStores: memory }, 'reopenStores'],
    ['a hook not a function', { createStore: memory, refuseRows: true }, 'refuseRows'],
    ['a negative case timeout', { createStore: memory, caseTimeoutMs: -1 }, 'caseTimeoutMs'],
    ['leaseMs a string', { createStore: memory, leaseMs: '60' }, 'leaseMs'],
    ['suites a string', { createStore: memory, suites: 'outbox' }, 'suites'],
  ]
  for (const [what, options, field] of bad) {
    const refused = (e: Error & { code?: string; details?: { field?: string } }) =>
      e.code === 'VALIDATION' && e.details?.field === field
    assert.throws(() => conformanceCases(options as never), refused, what)
    await assert.rejects(runConformance(options as never), refused, what)
    if (options !== undefined) {
      assert.throws(() => registerConformanceTests({ ...(options as object), test } as never), refused, what)
    }
  }
  assert.throws(() => registerConformanceTests({ createStore: memory, test: 5 } as never), {
    code: 'VALIDATION',
  })
  // A factory object whose methods live on its prototype is fine.
  class Factory {
    createStore() {
      return memory()
    }
  }
  assert.ok(conformanceCases(new Factory()).length > 0)
})

test('declared capabilities decide skips up front, with the reason', async () => {
  const cases = conformanceCases({
    createStore: memory,
    capabilities: { concurrentInstances: false, isolatedClaims: false },
  })
  const hooks = /plantSchemaVersion, reopenStore|refuseRows/
  const skipped = cases.filter((c) => c.skip !== undefined && !hooks.test(c.skip))
  assert.equal(skipped.length, MULTI_INSTANCE_CASES)
  for (const c of skipped)
    assert.match(
      c.skip!,
      /^the capabilities option lacks the (concurrentInstances|isolatedClaims) capability/,
    )
  // A factory without plantSchemaVersion and reopenStore: the schema-history cases, skipped up front too.
  const planting = cases.filter((c) => c.suite === 'schema-history')
  assert.ok(
    planting.length > 0 && planting.every((c) => /plantSchemaVersion, reopenStore/.test(c.skip ?? '')),
  )
  // Without refuseRows: the atomicity case whose audit record or event the database refuses.
  assert.deepEqual(
    cases.filter((c) => /refuseRows/.test(c.skip ?? '')).map((c) => [c.suite, c.skip]),
    [
      [
        'rollback',
        'the store factory cannot make its database refuse an audit record or an outbox event (refuseRows)',
      ],
    ],
  )
  await assert.rejects(skipped[0]!.run(), (e) => e instanceof ConformanceSkip)
})

test('registerConformanceTests registers skips as skipped (skipTest, test.skip, or the running test context)', async () => {
  const options = { createStore: memory, suites: ['migrator-race', 'readiness'] }

  const viaSkipTest: string[] = []
  const registered: Array<[string, (context?: unknown) => Promise<void>]> = []
  registerConformanceTests({
    ...options,
    capabilities: { concurrentInstances: false, isolatedClaims: false },
    test: (name, fn) => registered.push([name, fn]),
    skipTest: (name, reason) => viaSkipTest.push(`${name} | ${reason}`),
  })
  assert.equal(viaSkipTest.length, 1)
  assert.match(
    viaSkipTest[0]!,
    /^migrator-race: .* \| the capabilities option lacks the concurrentInstances capability/,
  )
  assert.equal(registered.length, 3)

  const viaTestSkip: string[] = []
  const testFn = Object.assign((_name: string, _fn: unknown) => {}, {
    skip: (name: string) => viaTestSkip.push(name),
  })
  registerConformanceTests({
    ...options,
    capabilities: { concurrentInstances: false, isolatedClaims: false },
    test: testFn,
  })
  assert.match(
    viaTestSkip[0] ?? '',
    /\[skipped: the capabilities option lacks the concurrentInstances capability .*\]$/,
  )

  // Capabilities unknown up front: the case finds out while running and skips through the context.
  const dynamic: Array<[string, (context?: unknown) => Promise<void>]> = []
  registerConformanceTests({
    ...options,
    suites: ['migrator-race'],
    test: (name, fn) => dynamic.push([name, fn]),
  })
  const [, fn] = dynamic[0]!
  const reasons: string[] = []
  await fn({ skip: (reason: string) => reasons.push(reason) })
  assert.deepEqual(reasons, [NO_CONCURRENT_INSTANCES])
  // A runner without a skip in its context must see a failure, never a pass.
  await assert.rejects(
    fn(undefined),
    /conformance case skipped: the store lacks the concurrentInstances capability/,
  )
})

test('runConformance reports each case with status, reason, error and duration, and calls onProgress', async () => {
  const progress: string[] = []
  const report = await runConformance({
    createStore: memory,
    suites: ['readiness', 'migrator-race'],
    onProgress: (r) => progress.push(`${r.status}:${r.name}`),
  })
  assert.deepEqual([report.passed, report.failed, report.skipped], [3, 0, 1])
  assert.equal(progress.length, 4)
  const skipped = report.results.find((r) => r.status === 'skipped')
  assert.equal(skipped?.reason, NO_CONCURRENT_INSTANCES)
  assert.ok(report.results.every((r) => typeof r.durationMs === 'number' && r.durationMs >= 0))

  // A store that is ready before migrate() breaks readiness rule 1.
  const failing = await runConformance({
    createStore: async () => new InMemoryUserEngineStore({ migrated: true }),
    suites: ['readiness'],
  })
  // Exactly the readiness cases about an unmigrated store fail; the one after migrate() passes.
  const readiness = CONFORMANCE_SUITES.find((s) => s.name === 'readiness')!
  assert.equal(failing.results.length, readiness.cases.length)
  const failed = failing.results.filter((r) => r.status === 'failed')
  assert.deepEqual(
    failed.map((r) => r.name),
    readiness.cases.filter((c) => /unmigrated/.test(c)).map((c) => `readiness: ${c}`),
  )
  assert.equal(failed.length, 2, 'an always-ready store fails the readiness suite')
  assert.ok(failed.every((r) => r.error instanceof Error))
})

test('every store the harness creates is closed, whether its case passed or failed', async () => {
  const created: UserEngineStore[] = []
  const closed = new Set<UserEngineStore>()
  class Tracked extends DelegatingStore {
    override async close() {
      closed.add(this)
      await super.close()
    }
  }
  const report = await runConformance({
    createStore: async ({ empty }) => {
      const store = new Tracked(new InMemoryUserEngineStore({ migrated: !empty }))
      created.push(store)
      return store
    },
    suites: ['readiness', 'migration', 'records', 'outbox'],
  })
  assert.ok(report.failed === 0, 'the tracked store passes')
  assert.ok(created.length > 10)
  assert.equal(closed.size, created.length, 'stores left open')

  const destroyed: UserEngineStore[] = []
  await runConformance({
    createStore: async () => new InMemoryUserEngineStore({ migrated: true }),
    destroyStore: async (store) => {
      destroyed.push(store)
    },
    suites: ['readiness'],
  })
  assert.equal(destroyed.length, 3, 'destroyStore replaces close() for every store, failing cases included')
})

test('the concurrentInstances cases pass against stores sharing one database', async () => {
  const report = await runConformance({
    // The factory's stores declare what the option claims: the store's own declaration decides.
    createStore: async () => new SharedMemoryStore(new InMemoryUserEngineStore()),
    createSharedStores: async (count) => {
      const database = new InMemoryUserEngineStore()
      return Array.from({ length: count }, () => new SharedMemoryStore(database))
    },
    capabilities: { concurrentInstances: true, isolatedClaims: true },
    suites: ['migrator-race', 'concurrency', 'outbox', 'throttle'],
  })
  const notPassed = report.results.filter((r) => r.status !== 'passed')
  assert.deepEqual(
    notPassed.map(
      (r) => `${r.name}: ${r.status} ${r.reason ?? (r.error as Error | undefined)?.message ?? ''}`,
    ),
    [],
  )
  const multi = report.results.filter((r) =>
    /separate store instances|four stores|4 store instances/.test(r.name),
  )
  assert.equal(multi.length, MULTI_INSTANCE_CASES)
})

test('a store declaring the 0.1 capability names (multiProcess, rowLocking) is read as having the guarantees', () => {
  const with01Names = conformanceCases({
    createStore: memory,
    capabilities: { multiProcess: true, rowLocking: true },
    createSharedStores: async () => [],
  })
  assert.deepEqual(
    with01Names.filter((c) => /capability/.test(c.skip ?? '')).map((c) => c.name),
    [],
    'a guarantee declared by its deprecated name was not seen',
  )
  // The new name wins over the alias when both are set.
  const overridden = conformanceCases({
    createStore: memory,
    capabilities: { multiProcess: true, concurrentInstances: false, isolatedClaims: true },
    createSharedStores: async () => [],
    suites: ['migrator-race'],
  })
  assert.equal(overridden[0]?.skip, OPTION_LACKS_CONCURRENT_INSTANCES)
})

test('the store decides: an option claiming more than the store declares fails the case, never passes it', async () => {
  const suites = ['migrator-race', 'throttle', 'concurrency', 'outbox']
  const multi = (r: { name: string }) => /separate store instances|four stores|4 store instances/.test(r.name)
  const sharing = (declares: StoreCapabilities) => async (count: number) => {
    const database = new InMemoryUserEngineStore()
    return Array.from({ length: count }, () => new DeclaringStore(database, declares))
  }
  // The option claims both guarantees; the stores the factories open declare none.
  const overclaimed = await runConformance({
    createStore: memory,
    createSharedStores: sharing({}),
    capabilities: { concurrentInstances: true, isolatedClaims: true },
    suites,
  })
  const claimed = overclaimed.results.filter(multi)
  assert.equal(claimed.length, MULTI_INSTANCE_CASES)
  for (const r of claimed) {
    assert.equal(r.status, 'failed', `${r.name} was ${r.status}`)
    assert.match(
      String((r.error as Error).message),
      /capabilities option claims (concurrentInstances|isolatedClaims) but the store does not declare it/,
    )
  }
  // The option claims none; the stores declare both: skipped up front, and the reason says it was the option.
  const underclaimed = await runConformance({
    createStore: async () => new SharedMemoryStore(new InMemoryUserEngineStore()),
    createSharedStores: sharing({ concurrentInstances: true, isolatedClaims: true }),
    capabilities: {},
    suites,
  })
  for (const r of underclaimed.results.filter(multi)) {
    assert.equal(r.status, 'skipped')
    assert.match(r.reason ?? '', /^the capabilities option lacks the \w+ capability/)
    assert.doesNotMatch(r.reason ?? '', /the store lacks/)
  }
  // Without the option the store's own declaration decides, both ways.
  const declared = await runConformance({
    createStore: async () => new SharedMemoryStore(new InMemoryUserEngineStore()),
    createSharedStores: sharing({ concurrentInstances: true, isolatedClaims: true }),
    suites,
  })
  assert.deepEqual(
    declared.results.filter(multi).map((r) => r.status),
    Array(MULTI_INSTANCE_CASES).fill('passed'),
  )
})
