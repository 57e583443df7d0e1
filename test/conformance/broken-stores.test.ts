import assert from 'node:assert/strict'
import { before, test } from 'node:test'
import {
  CONFORMANCE_SUITES,
  type ConformanceReport,
  type ConformanceResult,
  runConformance,
} from '../../src/testing/index.js'
import { BROKEN_STORES, type BrokenStore, refuseRows } from './broken-stores.js'
import { DelegatingStore } from './delegating-store.js'
import { checkDocBlock } from './doc-blocks.js'

// The whole harness on every broken store, and on the correct store they wrap. A fixed seed makes the
// differential suite's verdict on each store the same on every run (60 runs: a no-rollback store showed after
// 2 to 15 random runs).
const DIFFERENTIAL = { numRuns: 60, seed: 42 }
// The cases mostly wait (leases, backoffs), so several harness runs share the process well.
const PARALLEL_RUNS = 6

const ALL_CASES = new Set(CONFORMANCE_SUITES.flatMap((s) => s.cases.map((c) => `${s.name}: ${c}`)))

function harness(store: BrokenStore | undefined): Promise<ConformanceReport> {
  return runConformance({
    createStore: async () => (store ? store.create() : new DelegatingStore()),
    refuseRows,
    differential: DIFFERENTIAL,
    ...store?.options,
  })
}

const reports = new Map<BrokenStore | undefined, ConformanceReport>()

before(async () => {
  const queue: Array<BrokenStore | undefined> = [undefined, ...BROKEN_STORES]
  let next = 0
  await Promise.all(
    Array.from({ length: PARALLEL_RUNS }, async () => {
      while (next < queue.length) {
        const store = queue[next++]
        reports.set(store, await harness(store))
      }
    }),
  )
})

const failed = (report: ConformanceReport) =>
  report.results.filter((r) => r.status === 'failed').map((r) => r.name)

function described(r: ConformanceResult): string {
  const error = r.error as Error | undefined
  return `${r.name}: ${String(error?.message ?? error).split('\n')[0]}`
}

test('the correct store under the broken ones passes every case; only capability and hook skips', () => {
  const report = reports.get(undefined)
  assert.ok(report)
  assert.deepEqual(
    report.results.filter((r) => r.status === 'failed').map(described),
    [],
    'the reference store fails',
  )
  for (const r of report.results.filter((x) => x.status === 'skipped')) {
    assert.match(
      r.reason ?? '',
      /lacks the \w+ capability|createSharedStores|plantSchemaVersion/,
      `${r.name} skipped`,
    )
  }
  assert.equal(report.results.length, ALL_CASES.size)
})

test('the broken stores are distinct bugs, each caught by named cases that exist', () => {
  assert.ok(BROKEN_STORES.length >= 25, `${BROKEN_STORES.length} broken stores`)
  assert.equal(new Set(BROKEN_STORES.map((b) => b.bug)).size, BROKEN_STORES.length, 'a bug listed twice')
  for (const b of BROKEN_STORES) {
    assert.ok(b.caughtBy.length > 0, `${b.bug}: no case catches it`)
    for (const name of [...b.caughtBy, ...(b.sometimesCaughtBy ?? [])])
      assert.ok(ALL_CASES.has(name), `${b.bug}: no case named "${name}"`)
  }
})

for (const broken of BROKEN_STORES) {
  test(`broken store: ${broken.bug}`, () => {
    const report = reports.get(broken)
    assert.ok(report)
    const unexpected = report.results.filter(
      (r) =>
        r.status === 'failed' &&
        !broken.caughtBy.includes(r.name) &&
        !broken.sometimesCaughtBy?.includes(r.name),
    )
    assert.deepEqual(unexpected.map(described), [], 'fails cases the table does not name')
    assert.deepEqual(
      broken.caughtBy.filter((name) => !failed(report).includes(name)),
      [],
      'passes cases the table says catch it',
    )
    assert.equal(report.passed + report.failed + report.skipped, ALL_CASES.size)
  })
}

test('a differential failure names the seed, the shrunk counterexample and the diverging results', () => {
  const noRollback = BROKEN_STORES.find((b) => b.bug.startsWith('commits the buffered writes'))
  const result = reports.get(noRollback)?.results.find((r) => r.suite === 'differential')
  const message = String((result?.error as Error | undefined)?.message)
  assert.match(message, /seed: 42, path: '[\d:]+'/, 'the failure names the seed')
  assert.match(message, /Counterexample/)
  assert.match(
    message,
    /differs from the reference store\s+this store returned: .+\s+the reference store: .+/,
  )
})

test("the provider guide's table lists exactly these broken stores and the cases that catch them", () => {
  const cell = (text: string) => text.replace(/\|/g, '\\|')
  const rows = BROKEN_STORES.map((b) => {
    const sometimes = (b.sometimesCaughtBy ?? []).map(
      (name) => `${cell(name)} (when two commits share a millisecond)`,
    )
    return `| ${cell(b.bug)} | ${[...b.caughtBy.map((name) => cell(name)), ...sometimes].join('<br>')} |`
  })
  checkDocBlock(
    'docs/provider-guide.md',
    'broken-stores',
    [
      `${BROKEN_STORES.length} provider bugs, each a broken store in this repository's conformance tests that fails exactly the cases named (the whole harness runs on each; the correct store passes them all). ${new Set(BROKEN_STORES.flatMap((b) => b.caughtBy)).size} of the ${ALL_CASES.size} cases fail on at least one of them.`,
      '',
      '| provider bug | the cases that fail on it, and no others |',
      '|---|---|',
      ...rows,
    ].join('\n'),
  )
})
