import { type Algorithm, hash, verify } from '@node-rs/argon2'
import { ValidationError } from '../domain/errors.js'
import { assertPositiveInt } from '../domain/validation.js'

/** Argon2id cost parameters. `memoryCost` is in KiB. */
export interface PasswordHashingOptions {
  readonly memoryCost: number
  readonly timeCost: number
  readonly parallelism: number
}

/** OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane). */
export const DEFAULT_PASSWORD_HASHING: PasswordHashingOptions = Object.freeze({
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
})

// The package's `Algorithm` is an ambient const enum, which isolatedModules cannot read: 2 is Argon2id.
const ARGON2ID = 2 as Algorithm

/** Hashes and verifies passwords with Argon2id; the PHC string it produces carries its own salt and costs. */
export class PasswordHasher {
  readonly #options: PasswordHashingOptions
  #dummy: Promise<string> | undefined

  constructor(options: PasswordHashingOptions = DEFAULT_PASSWORD_HASHING) {
    assertPositiveInt(options.memoryCost, 'passwordHashing.memoryCost', 4 * 1024 * 1024)
    assertPositiveInt(options.timeCost, 'passwordHashing.timeCost', 100)
    assertPositiveInt(options.parallelism, 'passwordHashing.parallelism', 255)
    // Argon2 needs at least 8 KiB per lane.
    if (options.memoryCost < 8 * options.parallelism) {
      throw new ValidationError('passwordHashing.memoryCost must be at least 8 KiB per lane', {
        details: {
          field: 'passwordHashing.memoryCost',
        },
      })
    }
    this.#options = Object.freeze({ ...options })
  }

  hash(password: string): Promise<string> {
    return hash(password, { ...this.#options, algorithm: ARGON2ID })
  }

  async verify(phc: string, password: string): Promise<boolean> {
    try {
      return await verify(phc, password)
    } catch {
      // A malformed stored hash is a failed verification, not an oracle.
      return false
    }
  }

  /** True when `phc` was not made with Argon2id at this hasher's costs (so a successful check rehashes). */
  needsRehash(phc: string): boolean {
    const { memoryCost: m, timeCost: t, parallelism: p } = this.#options
    const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(phc)
    return !match || Number(match[1]) !== m || Number(match[2]) !== t || Number(match[3]) !== p
  }

  /**
   * Spends the same time as a real verification and returns false: run for unknown users, so response time
   * does not tell an attacker which emails are registered.
   */
  async verifyDummy(password: string): Promise<false> {
    this.#dummy ??= this.hash('user-engine dummy password')
    await this.verify(await this.#dummy, password)
    return false
  }

  toJSON(): PasswordHashingOptions {
    return this.#options
  }
}
