import { inspect } from 'node:util'
import { Secret } from '../domain/secret.js'

/**
 * The base of a result that hands the caller a secret it asked for (the TOTP enrollment URI, the recovery
 * codes), shown once. Reading the property (`result.uri`, `const { codes } = result`) is asking for the value
 * and gives it plain. The object as a whole never prints it:
 *
 * - `JSON.stringify(result)` and `util.inspect(result)` (so `console.log`, `res.json`, a logger's fields) give
 *   the public fields and `[redacted]` for each secret one, as a `Secret` prints;
 * - the secrets are no own properties (a private field, read through a getter on the prototype), so
 *   `Object.keys`, `Object.entries`, `{ ...result }`, `Object.assign` and `structuredClone` see the public
 *   fields only: a result spread into a log object loses its secrets instead of leaking them.
 *
 * A subclass declares its public fields as own properties, passes its secrets to `super` and reads each one
 * with `revealed` in a getter.
 */
export abstract class ShownOnce<S extends Record<string, unknown>> {
  readonly #secrets: { readonly [K in keyof S]: Secret<S[K]> }

  protected constructor(secrets: S) {
    this.#secrets = Object.fromEntries(
      Object.entries(secrets).map(([key, value]) => [key, new Secret(value)]),
    ) as { [K in keyof S]: Secret<S[K]> }
  }

  protected revealed<K extends keyof S>(key: K): S[K] {
    return this.#secrets[key].reveal()
  }

  /** The public fields, then each secret as a `Secret` (printed `[redacted]`). */
  toJSON(): Record<string, unknown> {
    return { ...this, ...this.#secrets }
  }

  [inspect.custom](): Record<string, unknown> {
    return this.toJSON()
  }
}
