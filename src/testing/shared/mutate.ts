/**
 * What a careless caller does to a record it was handed: change every field, at every depth. A store that
 * returns its own objects (a cache, an in-memory row, a payload it parsed once) then finds its stored value
 * changed, audit trail included. Copies and frozen objects are both correct answers.
 */

/** Duck-typed, like `errorCode`: a provider's store may load its own copy of user-engine's `Secret`. */
function isSecret(value: object): value is { reveal(): unknown } {
  return typeof (value as { reveal?: unknown }).reveal === 'function'
}

/** A deep, comparable copy of `value`; a secret's content is copied too, so a change inside it shows. */
export function snapshot(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  if (isSecret(value)) return { secret: snapshot(value.reveal()) }
  if (Array.isArray(value)) return value.map(snapshot)
  if (value instanceof Map) return [...value.entries()].map(([k, v]) => [k, snapshot(v)])
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, snapshot(v)]))
}

function changed(value: unknown): unknown {
  if (typeof value === 'string') return `${value}~mutated`
  if (typeof value === 'number') return value + 1
  if (typeof value === 'boolean') return !value
  return 'mutated'
}

/** Tries one assignment; a frozen or read-only target refuses it (strict mode throws), which is fine. */
function attempt(change: () => void): void {
  try {
    change()
  } catch {
    // Frozen: the store protected its value, which is what the case asks for.
  }
}

/** Changes every field of `value` and of everything it holds (secrets' contents included), in place. */
export function mutateDeeply(value: unknown, seen = new Set<object>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return
  seen.add(value)
  if (isSecret(value)) {
    let inner: unknown
    attempt(() => {
      inner = value.reveal()
    })
    mutateDeeply(inner, seen)
    return
  }
  const target = value as Record<string | number, unknown>
  for (const key of Object.keys(target)) {
    const field = target[key]
    if (field !== null && typeof field === 'object') mutateDeeply(field, seen)
    else
      attempt(() => {
        target[key] = changed(field)
      })
  }
  attempt(() => {
    if (Array.isArray(value)) value.push('mutated')
    else target.conformanceMutated = true
  })
}
