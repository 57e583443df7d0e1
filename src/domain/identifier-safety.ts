/**
 * Look-alike defences for login identifiers (issue: two visually identical accounts). Two checks, each from a
 * published profile:
 *
 * - Invisible characters: format characters (Unicode general category Cf: zero-width space/joiners, word
 *   joiner, soft hyphen, LRM/RLM, bidi embeddings, overrides and isolates, BOM), every Default_Ignorable code
 *   point (variation selectors, combining grapheme joiner, Hangul fillers) and control characters are refused.
 *   RFC 8265 (PRECIS IdentifierClass, used for usernames) disallows all of these; for emails they have no
 *   use in an address and only serve to make `an\u200Bn@…` look like `ann@…`.
 * - Mixed scripts: each part (an email's local part, each domain label; a whole username) must satisfy the
 *   UTS #39 "Highly Restrictive" level: one script, or Latin with Han/Hiragana/Katakana, Han/Bopomofo or
 *   Han/Hangul. Common and Inherited characters (digits, `.`, `-`, `_`, combining marks) go with any script.
 *   So `раypal` (Cyrillic р, а in Latin text) is refused. A whole-script confusable (every letter Cyrillic)
 *   needs UTS #39's confusables table and is not detected; see docs/store-contract.md.
 */

// Checked on the raw and on the NFKC form: NFKC maps some of these to others (U+3164 -> U+1160).
const INVISIBLE = /[\p{Cf}\p{Cc}\p{Default_Ignorable_Code_Point}]/u

/** True when `value` holds a character that renders as nothing or reorders text. */
export function hasInvisibleCharacter(value: string): boolean {
  return INVISIBLE.test(value)
}

// Scripts by name; a letter in none of them counts as one further script, 'Other'.
const SCRIPTS = [
  'Latin',
  'Greek',
  'Cyrillic',
  'Armenian',
  'Hebrew',
  'Arabic',
  'Syriac',
  'Thaana',
  'Devanagari',
  'Bengali',
  'Gurmukhi',
  'Gujarati',
  'Oriya',
  'Tamil',
  'Telugu',
  'Kannada',
  'Malayalam',
  'Sinhala',
  'Thai',
  'Lao',
  'Tibetan',
  'Myanmar',
  'Georgian',
  'Hangul',
  'Ethiopic',
  'Cherokee',
  'Khmer',
  'Mongolian',
  'Hiragana',
  'Katakana',
  'Bopomofo',
  'Han',
  'Canadian_Aboriginal',
  'Tifinagh',
  'Nko',
  'Vai',
  'Javanese',
  'Balinese',
] as const
type Script = (typeof SCRIPTS)[number] | 'Other'
const SCRIPT_PATTERNS = SCRIPTS.map((name) => [name, new RegExp(`\\p{Script=${name}}`, 'u')] as const)
const SCRIPT_NEUTRAL = /[\p{Script=Common}\p{Script=Inherited}]/u

function scriptOf(char: string): Script | null {
  if (SCRIPT_NEUTRAL.test(char)) return null
  for (const [name, pattern] of SCRIPT_PATTERNS) if (pattern.test(char)) return name
  return 'Other'
}

// UTS #39 section 5.2, Highly Restrictive: the script sets allowed together.
const ALLOWED_MIXES: readonly (readonly Script[])[] = [
  ['Latin', 'Han', 'Hiragana', 'Katakana'],
  ['Latin', 'Han', 'Bopomofo'],
  ['Latin', 'Han', 'Hangul'],
]

/** True when `part` uses one script, or one of the mixes UTS #39 calls Highly Restrictive. */
export function isHighlyRestrictive(part: string): boolean {
  const scripts = new Set<Script>()
  for (const char of part) {
    const script = scriptOf(char)
    if (script !== null) scripts.add(script)
  }
  if (scripts.size <= 1) return true
  return ALLOWED_MIXES.some((mix) => [...scripts].every((s) => mix.includes(s)))
}
