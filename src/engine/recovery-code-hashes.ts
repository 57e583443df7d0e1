import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'
import type { JsonValue } from '../domain/records.js'

// Crockford base32, lowercase: no i, l, o, u, so codes read aloud and typed by hand survive.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const CODE_CHARS = 10 // 50 bits each: far beyond guessing, so a fast keyed hash is enough.
export const DEFAULT_RECOVERY_CODE_COUNT = 10

/** What a recovery-codes factor's `secret` holds: a per-factor salt and one HMAC per code. */
export interface RecoveryCodeHashes {
  readonly [key: string]: JsonValue
  readonly v: 1
  readonly alg: 'HMAC-SHA256'
  readonly salt: string
  readonly hashes: string[]
}

function digest(salt: Buffer, normalized: string): Buffer {
  return createHmac('sha256', salt).update(normalized, 'utf8').digest()
}

/** Lowercase, drop separators, map look-alikes the way Crockford base32 does; null when not a code's shape. */
export function normalizeRecoveryCode(input: string): string | null {
  const s = input
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s-]+/g, '')
    .replace(/[il]/g, '1')
    .replace(/o/g, '0')
  if (s.length !== CODE_CHARS) return null
  for (const c of s) if (!ALPHABET.includes(c)) return null
  return s
}

/** Fresh codes (shown to the user once, as `xxxxx-xxxxx`) and their hashes (stored). */
export function newRecoveryCodes(count: number): { codes: string[]; hashes: RecoveryCodeHashes } {
  const salt = randomBytes(16)
  const codes: string[] = []
  const hashes: string[] = []
  for (let i = 0; i < count; i++) {
    let raw = ''
    for (let j = 0; j < CODE_CHARS; j++) raw += ALPHABET[randomInt(ALPHABET.length)]
    codes.push(`${raw.slice(0, 5)}-${raw.slice(5)}`)
    hashes.push(digest(salt, raw).toString('base64'))
  }
  return { codes, hashes: { v: 1, alg: 'HMAC-SHA256', salt: salt.toString('base64'), hashes } }
}

/**
 * The index of the code among the stored hashes, or -1. Compares against every hash in constant time without
 * stopping early, so timing does not tell which slot matched.
 */
export function matchRecoveryCode(stored: { readonly [key: string]: JsonValue }, input: string): number {
  const normalized = normalizeRecoveryCode(input)
  const salt = typeof stored.salt === 'string' ? Buffer.from(stored.salt, 'base64') : null
  if (!salt || !Array.isArray(stored.hashes)) return -1
  // Hash even a malformed input, so it costs the same as a well-formed one.
  const candidate = digest(salt, normalized ?? '')
  let found = -1
  stored.hashes.forEach((h, i) => {
    if (typeof h !== 'string') return
    const expected = Buffer.from(h, 'base64')
    if (expected.length === candidate.length && timingSafeEqual(expected, candidate) && normalized !== null) {
      found = i
    }
  })
  return found
}
