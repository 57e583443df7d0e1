import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isUserEngineError } from '../../src/domain/errors.js'
import { normalizeIdentifier } from '../../src/domain/validation.js'

const INVISIBLES = {
  'zero-width space': '\u200B',
  'zero-width non-joiner': '\u200C',
  'zero-width joiner': '\u200D',
  'word joiner': '\u2060',
  'soft hyphen': '\u00AD',
  'left-to-right mark': '\u200E',
  'right-to-left mark': '\u200F',
  'right-to-left override': '\u202E',
  'left-to-right embedding': '\u202A',
  'first strong isolate': '\u2068',
  'pop directional isolate': '\u2069',
  'byte order mark': '\uFEFF',
  'combining grapheme joiner': '\u034F',
  'variation selector 16': '\uFE0F',
  'Hangul filler': '\u3164',
}

const refused = (kind: 'email' | 'username', value: string) =>
  assert.throws(
    () => normalizeIdentifier(kind, value),
    (e) =>
      isUserEngineError(e, 'VALIDATION') && !e.message.includes(value) && !JSON.stringify(e).includes(value),
    `${kind} ${JSON.stringify(value)} was accepted`,
  )

test('an invisible or format character anywhere in an email or username is refused, value not echoed', () => {
  for (const [name, char] of Object.entries(INVISIBLES)) {
    for (const at of [0, 1, 3]) {
      const email = `ann@example.com`
      refused('email', `${email.slice(0, at)}${char}${email.slice(at)}`)
      refused('username', `${'annie'.slice(0, at)}${char}${'annie'.slice(at)}`)
    }
    refused('email', `ann@exa${char}mple.com`)
    assert.ok(name)
  }
})

test('compatibility and case variants map to the one identifier; ß stays distinct from ss', () => {
  assert.equal(normalizeIdentifier('email', 'ＡＮＮ@Example.COM'), 'ann@example.com')
  assert.equal(normalizeIdentifier('email', '  Ann@example.com '), 'ann@example.com')
  assert.equal(normalizeIdentifier('username', 'Ａnnie'), 'annie')
  assert.notEqual(
    normalizeIdentifier('email', 'straße@example.de'),
    normalizeIdentifier('email', 'strasse@example.de'),
  )
})

test('mixed scripts in one part are refused (UTS #39 Highly Restrictive); one script or allowed mixes pass', () => {
  refused('email', 'p\u0430ypal@example.com') // Cyrillic а among Latin letters
  refused('email', 'ann@ex\u0430mple.com') // in a domain label
  refused('username', 'p\u0430ypal')
  refused('username', 'admin\u03BF') // Greek omicron
  assert.equal(normalizeIdentifier('email', 'иван@пример.рф'), 'иван@пример.рф')
  assert.equal(normalizeIdentifier('email', 'ivan@пример.рф'), 'ivan@пример.рф') // one script per part
  assert.equal(normalizeIdentifier('username', 'tanaka太郎'), 'tanaka太郎') // Latin + Han
  assert.equal(normalizeIdentifier('username', 'user_42'), 'user_42')
  assert.equal(normalizeIdentifier('username', 'ελένη'), 'ελένη')
})
