import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'

/**
 * Distinctive values planted where personal data and secrets live. Each is unique per call, so a hit can only
 * come from this case's data, and long enough that it cannot appear by chance.
 */
export interface Canaries {
  /** A profile attribute value. */
  readonly profile: string
  /** An email address (already normalized: lower case). */
  readonly email: string
  /** A username (already normalized). */
  readonly username: string
  /** A value inside a factor secret. */
  readonly secret: string
}

export function makeCanaries(): Canaries {
  const tag = () => randomBytes(6).toString('hex')
  return {
    profile: `profilecanary${tag()}`,
    email: `emailcanary${tag()}@example.com`,
    username: `usernamecanary${tag()}`,
    secret: `secretcanary${tag()}`,
  }
}

export type CanaryKind = keyof Canaries

/** Every way a value is commonly printed: JSON, util.inspect (what console.log uses) and String(). */
export function renderings(value: unknown): string[] {
  const out: string[] = []
  try {
    out.push(JSON.stringify(value) ?? '')
  } catch (error) {
    out.push(`<JSON.stringify threw: ${error instanceof Error ? error.message : 'unknown'}>`)
  }
  out.push(inspect(value, { depth: 8, showHidden: false, getters: false }))
  if (value instanceof Error) {
    // The cause chain is where a driver error (with the offending key value) would hide.
    let cause: unknown = value
    for (let i = 0; i < 5 && cause instanceof Error; i++, cause = cause.cause) {
      out.push(String(cause.message), String(cause))
    }
  }
  return out
}

/**
 * The canary kinds whose value appears in any rendering of `value`, except those the caller asked for.
 * An empty result means no leak.
 */
export function leakedCanaries(
  value: unknown,
  canaries: Canaries,
  allowed: readonly CanaryKind[] = [],
): CanaryKind[] {
  const texts = renderings(value)
  const kinds = Object.keys(canaries) as CanaryKind[]
  return kinds.filter(
    (kind) => !allowed.includes(kind) && texts.some((text) => text.includes(fragmentOf(canaries[kind]))),
  )
}

// The distinctive part of a canary: an email may be printed split or escaped around its '@'.
function fragmentOf(canary: string): string {
  const at = canary.indexOf('@')
  return at === -1 ? canary : canary.slice(0, at)
}
