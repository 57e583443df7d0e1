import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { CONFORMANCE_SUITES, RULE_CASES } from '../../src/testing/index.js'

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
    for (const name of names) assert.ok(cases.has(name), `${rule}: no case named "${name}"`)
  }
})
