import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { CONFORMANCE_SUITES, conformanceCases, RULE_CASES } from '../../src/testing/index.js'
import { SUBSCRIBE_SKIP } from '../../src/testing/shared/context.js'
import { SUITES } from '../../src/testing/suites/index.js'
import { checkDocBlock } from './doc-blocks.js'

/** The numbered MUST rules of each contract interface, read from its JSDoc block. */
function numberedRules(file: string, marker: string): number[] {
  const text = readFileSync(file, 'utf8')
  const start = text.indexOf(marker)
  assert.ok(start >= 0, `${marker} in ${file}`)
  const block = text.slice(start, text.indexOf('*/', start))
  return [...block.matchAll(/^\s*\* (\d+)\. /gm)].map((m) => Number(m[1]))
}

test('every numbered MUST rule has at least one named conformance case, and every named case exists', () => {
  const rules = {
    uow: numberedRules('src/store/unit-of-work.ts', 'MUST rules'),
    store: numberedRules('src/store/store.ts', 'The store boundary'),
    outbox: numberedRules('src/store/store.ts', "The relay's view of the outbox"),
    throttle: numberedRules('src/store/throttle.ts', 'MUST rules'),
  }
  const cases = new Set(CONFORMANCE_SUITES.flatMap((s) => s.cases.map((c) => `${s.name}: ${c}`)))
  const expected = Object.entries(rules).flatMap(([kind, numbers]) => numbers.map((n) => `${kind}.${n}`))
  assert.ok(expected.length >= 20, `found ${expected.length} rules`)
  assert.deepEqual(Object.keys(RULE_CASES).sort(), expected.sort(), 'RULE_CASES covers exactly the rules')
  for (const [rule, names] of Object.entries(RULE_CASES)) {
    assert.ok(names.length > 0, `${rule} has no case`)
    assert.equal(new Set(names).size, names.length, `${rule} names a case twice`)
    for (const name of names) assert.ok(cases.has(name), `${rule}: no case named "${name}"`)
  }
})

const INTERFACES: Record<string, string> = {
  uow: 'unit of work (`UnitOfWork`)',
  store: 'store (`UserEngineStore`)',
  outbox: 'outbox (`OutboxAccess`)',
  throttle: 'throttle (`ThrottleAccess`)',
}

test("the provider guide's coverage figures and rule table are the code's", () => {
  const total = CONFORMANCE_SUITES.reduce((n, s) => n + s.cases.length, 0)
  const rules = Object.keys(RULE_CASES)
  const perInterface = Object.entries(INTERFACES).map(
    ([kind, name]) => `${name} ${rules.filter((r) => r.startsWith(`${kind}.`)).length}`,
  )
  const named = new Set(Object.values(RULE_CASES).flat())
  // What a store declaring nothing, with a factory giving no optional hook, has skipped up front, and the
  // cases that skip themselves on a store without the optional outbox.subscribe.
  const bare = conformanceCases({ createStore: async () => new InMemoryUserEngineStore(), capabilities: {} })
  const withoutSubscribe = SUITES.flatMap((s) =>
    s.cases.filter((c) => c.needsSubscribe).map((c) => `${s.name}: ${c.name}`),
  )
  const skipped = [
    ...bare.filter((c) => c.skip !== undefined),
    ...withoutSubscribe.map((name) => ({ name, skip: SUBSCRIBE_SKIP })),
  ]
  const reasons = [...new Set(skipped.map((c) => c.skip!))].map(
    (reason) =>
      `${skipped.filter((c) => c.skip === reason).length} without ${
        /lacks the (\w+) capability/.exec(reason)?.[1] ??
        /\(([^)]+)\)$/.exec(reason)?.[1] ??
        /has no ([\w.]+)/.exec(reason)?.[1] ??
        reason
      }`,
  )
  const ruleNumber = (r: string) => Number(r.split('.')[1])
  const ordered = Object.keys(INTERFACES).flatMap((kind) =>
    rules.filter((r) => r.startsWith(`${kind}.`)).sort((a, b) => ruleNumber(a) - ruleNumber(b)),
  )
  checkDocBlock(
    'docs/provider-guide.md',
    'coverage',
    [
      `${total} cases in ${CONFORMANCE_SUITES.length} suites. The contract has ${rules.length} numbered MUST rules (${perInterface.join(', ')}); every one has at least one case, ${named.size} cases in all, listed below. The other ${total - named.size} cases check what the rules imply (round trips, validation, listings, redaction details, the differential comparison).`,
      '',
      `Skipped, with the reason, for a store that declares no capability and a factory without the optional hooks: ${skipped.length} cases (${reasons.join('; ')}).`,
      '',
      '| rule | the cases that check it |',
      '|---|---|',
      ...ordered.map((r) => `| ${r} | ${RULE_CASES[r]!.map((c) => c.replace(/\|/g, '\\|')).join('<br>')} |`),
    ].join('\n'),
  )
})
