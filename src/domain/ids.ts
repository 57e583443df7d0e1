import { randomFillSync } from 'node:crypto'

/**
 * Time-ordered ids: an RFC 9562 UUIDv7 as 32 lowercase hex digits (no dashes) behind a short type prefix,
 * `usr_0190f3a2b4c17000a1b2c3d4e5f60718`. Ordered ids keep B-tree inserts local and give listings a stable
 * order without a second sort key.
 *
 * Layout (RFC 9562 section 5.7, monotonicity by section 6.2 method 1, a fixed-length dedicated counter):
 * - 48 bits: unix time in milliseconds;
 * - 4 bits: version 7;
 * - 12 bits (`rand_a`): a counter, 0 at each new millisecond, +1 for each further id in the same millisecond;
 *   past 0xfff the timestamp is advanced by 1 ms (the clock is then ahead until real time catches up), and a
 *   clock that goes backwards is treated as the same millisecond, so ids of one process strictly increase;
 * - 2 bits: variant 0b10;
 * - 62 bits (`rand_b`): random.
 *
 * Earlier code drew all 64 bits after the counter at random, so about three quarters of the ids it stored lack
 * the variant bits. They stay valid: stores and `assertId` treat an id as opaque ASCII, never parse it as a UUID,
 * and old and new ids of one type still sort by creation time.
 */
let lastMs = 0
let counter = 0

// One getrandom call per 512 ids: a call per id was 38% of a registration's CPU (profiled 2026-11-29).
// Ids are unique, not secret, so drawing them from a pooled buffer is fine.
const POOL_IDS = 512
const pool = Buffer.alloc(8 * POOL_IDS)
let poolOffset = pool.length

/** `rand_b` with its variant bits: 16 hex digits, the first of them 8, 9, a or b. */
function variantAndRandom(): string {
  if (poolOffset >= pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  pool[poolOffset] = (pool[poolOffset]! & 0x3f) | 0x80
  const hex = pool.toString('hex', poolOffset, poolOffset + 8)
  poolOffset += 8
  return hex
}

export function newId(prefix: string): string {
  let ms = Date.now()
  if (ms <= lastMs) {
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      ms = ++lastMs
      counter = 0
    }
  } else {
    counter = 0
  }
  lastMs = ms
  const time = ms.toString(16).padStart(12, '0')
  const versionAndCounter = (0x7000 | counter).toString(16)
  return `${prefix}_${time}${versionAndCounter}${variantAndRandom()}`
}

// The shape newId issues: a short lower-case prefix and 32 hex digits.
const ISSUED_ID = /^[a-z]{2,8}_[0-9a-f]{32}$/

/**
 * An id as an error message or detail may show it. Ids are opaque ASCII, so a caller can pass any short
 * string as one, including a secret pasted into the wrong field: only a value in the shape user-engine
 * issues is shown; anything else is `(withheld)`, so errors never launder caller text into logs.
 */
export function shownId(id: string): string {
  return ISSUED_ID.test(id) ? id : '(withheld)'
}
