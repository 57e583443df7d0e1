import { randomBytes } from 'node:crypto'
import { Secret as OtpSecret, TOTP } from 'otpauth'
import { ValidationError } from '../domain/errors.js'
import { assertPositiveInt, assertString } from '../domain/validation.js'

export interface TotpOptions {
  /** Shown by authenticator apps next to the account. */
  readonly issuer: string
  /** Seconds per step. */
  readonly period: number
  readonly digits: number
  /** Steps accepted either side of now, for clock skew. */
  readonly window: number
}

export const DEFAULT_TOTP: TotpOptions = Object.freeze({
  issuer: 'user-engine',
  period: 30,
  digits: 6,
  window: 1,
})

/** RFC 4226 recommends 160-bit seeds for SHA-1. */
const SEED_BYTES = 20

/**
 * The TOTP algorithm (RFC 6238, SHA-1: what every authenticator app supports) with the configured issuer,
 * period, digits and window, over raw seed bytes: new seeds, otpauth URIs, codes, and the step a code matches.
 */
export class TotpAlgorithm {
  readonly options: TotpOptions

  constructor(options: Partial<TotpOptions> = {}) {
    const o = { ...DEFAULT_TOTP, ...options }
    assertString(o.issuer, 'totp.issuer', 100)
    assertPositiveInt(o.period, 'totp.period', 300)
    if (!Number.isInteger(o.digits) || o.digits < 6 || o.digits > 10) {
      throw new ValidationError('totp.digits must be an integer from 6 to 10', {
        details: { field: 'totp.digits' },
      })
    }
    if (!Number.isInteger(o.window) || o.window < 0 || o.window > 10) {
      throw new ValidationError('totp.window must be an integer from 0 to 10', {
        details: { field: 'totp.window' },
      })
    }
    this.options = Object.freeze(o)
  }

  newSeed(): Buffer {
    return randomBytes(SEED_BYTES)
  }

  /** The otpauth:// URI an authenticator app scans. It holds the seed: return it once, never log it. */
  uri(seed: Uint8Array, label: string): string {
    return this.#totp(seed, label).toString()
  }

  /** The code for a time (ms); used by tests and the walkthrough. */
  generate(seed: Uint8Array, timestampMs: number): string {
    return this.#totp(seed).generate({ timestamp: timestampMs })
  }

  /** The step (counter) the code belongs to within the window, or null when it matches none. */
  matchStep(seed: Uint8Array, code: string, timestampMs: number): number | null {
    const token = code.replace(/\s+/g, '')
    if (!new RegExp(`^\\d{${this.options.digits}}$`).test(token)) return null
    const totp = this.#totp(seed)
    const delta = totp.validate({ token, timestamp: timestampMs, window: this.options.window })
    return delta === null ? null : totp.counter({ timestamp: timestampMs }) + delta
  }

  #totp(seed: Uint8Array, label = 'account'): TOTP {
    return new TOTP({
      issuer: this.options.issuer,
      label,
      algorithm: 'SHA1',
      digits: this.options.digits,
      period: this.options.period,
      secret: new OtpSecret({ buffer: Uint8Array.from(seed).buffer }),
    })
  }
}
