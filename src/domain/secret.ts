import { inspect } from 'node:util'

const REDACTED = '[redacted]'

/**
 * Holds a secret (a password hash, an encrypted seed, recovery code hashes, a session or single-use token) so
 * that it never reaches a log: `JSON.stringify`, `util.inspect`, `String()` and template literals all print
 * `[redacted]`. Only `reveal()` gives the value: store code and factor crypto call it, and a service calls it on
 * a token the engine issued, to send it (a cookie, a link in an email).
 */
export class Secret<T> {
  readonly #value: T

  constructor(value: T) {
    this.#value = value
  }

  reveal(): T {
    return this.#value
  }

  toJSON(): string {
    return REDACTED
  }

  toString(): string {
    return REDACTED
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`
  }
}
