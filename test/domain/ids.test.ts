import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { newId } from '../../src/domain/ids.js'
import { assertId } from '../../src/domain/validation.js'

const COUNTER_LIMIT = 0x1000
const prefixes = fc.constantFrom('ten', 'usr', 'idn', 'fac', 'aud', 'evt')

interface Parsed {
  readonly hex: string
  readonly ms: number
  readonly version: number
  readonly variant: number
  readonly counter: number
}

/** The largest timestamp of any id this file generated: the generator never goes below it again. */
let maxIssuedMs = 0

function parse(id: string, prefix: string): Parsed {
  assert.match(id, new RegExp(`^${prefix}_[0-9a-f]{32}$`))
  const hex = id.slice(prefix.length + 1)
  const parsed = {
    hex,
    ms: Number.parseInt(hex.slice(0, 12), 16),
    version: Number.parseInt(hex[12]!, 16),
    variant: Number.parseInt(hex[16]!, 16) >> 2,
    counter: Number.parseInt(hex.slice(13, 16), 16),
  }
  maxIssuedMs = Math.max(maxIssuedMs, parsed.ms)
  return parsed
}

test('ids are RFC 9562 UUIDv7s that sort in generation order, are unique and carry the time', () => {
  const seen = new Set<string>()
  fc.assert(
    fc.property(prefixes, fc.integer({ min: 1, max: 3000 }), (prefix, count) => {
      const floor = maxIssuedMs
      const before = Date.now()
      const ids = Array.from({ length: count }, () => newId(prefix))
      const after = Date.now()
      // The clock may be ahead of real time: past 4096 ids in one millisecond the timestamp advances by 1 ms.
      const latest = Math.max(after, floor) + Math.ceil(count / COUNTER_LIMIT)
      let previous: string | undefined
      for (const id of ids) {
        const p = parse(id, prefix)
        assert.equal(p.version, 7, id)
        assert.equal(p.variant, 0b10, id)
        assert.ok(p.ms >= before && p.ms <= latest, `${id}: ${p.ms} outside [${before}, ${latest}]`)
        if (previous !== undefined) assert.ok(previous < id, `${previous} then ${id}`)
        previous = id
        assert.ok(!seen.has(id), `${id} generated twice`)
        seen.add(id)
        assertId(id, 'id')
      }
    }),
    { numRuns: 100 },
  )
})

test('a clock that stalls or goes backwards keeps ids increasing (RFC 9562 method 1 counter)', (t) => {
  let clock = Date.now()
  t.mock.method(Date, 'now', () => clock)
  fc.assert(
    fc.property(
      prefixes,
      fc.array(
        fc.record({ step: fc.integer({ min: -100_000, max: 3 }), ids: fc.integer({ min: 1, max: 60 }) }),
        {
          minLength: 1,
          maxLength: 200,
        },
      ),
      (prefix, readings) => {
        let previous: Parsed | undefined
        for (const { step, ids } of readings) {
          clock += step
          for (let i = 0; i < ids; i++) {
            const p = parse(newId(prefix), prefix)
            assert.equal(p.version, 7)
            assert.equal(p.variant, 0b10)
            assert.ok(p.ms >= clock, 'never behind the clock')
            if (previous !== undefined) {
              assert.ok(previous.hex < p.hex, `${previous.hex} then ${p.hex}`)
              assert.ok(
                p.ms <= Math.max(clock, previous.ms + 1),
                'at most 1 ms past the clock or the last id',
              )
              // Same millisecond: the counter counts on; a new millisecond starts it at 0.
              assert.equal(p.counter, p.ms === previous.ms ? previous.counter + 1 : 0)
            }
            previous = p
          }
        }
      },
    ),
    { numRuns: 100 },
  )
})

test('more than 4096 ids in one millisecond advance the timestamp instead of repeating', (t) => {
  const frozen = Math.max(Date.now(), maxIssuedMs) + 1
  t.mock.method(Date, 'now', () => frozen)
  const ids = Array.from({ length: 3 * COUNTER_LIMIT }, () => parse(newId('usr'), 'usr'))
  assert.deepEqual(
    ids.map((p) => [p.ms - frozen, p.counter]),
    Array.from({ length: 3 * COUNTER_LIMIT }, (_, i) => [Math.floor(i / COUNTER_LIMIT), i % COUNTER_LIMIT]),
  )
})

test('ids stored by earlier code, without the variant bits, still validate', () => {
  // Before the variant bits were set, the 64 bits after the counter were all random.
  for (const old of ['usr_0190f3a2b4c170000123456789abcdef', 'evt_0190f3a2b4c17fffc123456789abcdef']) {
    assert.doesNotThrow(() => assertId(old, 'id'))
  }
})
