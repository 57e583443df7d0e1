import type { ProfileRecord, ProfileValue, TenantRecord, UserRecord } from '../domain/records.js'
import type { ListUsersQuery, Page, UserEngineStore } from '../store/store.js'
import type { ThrottlePolicy } from '../store/throttle.js'
import { createEngineContext, type EngineContext } from './context.js'
import { validateEngineOptions } from './engine-options.js'
import type { FactorSummary } from './factors.js'
import * as factors from './factors.js'
import * as identifiers from './identifiers.js'
import type { Keyring } from './keyring.js'
import type { PasswordSubject } from './password.js'
import * as passwords from './password.js'
import type { PasswordHashingOptions } from './password-hasher.js'
import type { UpdateProfileOptions } from './profile.js'
import * as profile from './profile.js'
import type { RecoveryCodeSet } from './recovery-codes.js'
import * as recoveryCodes from './recovery-codes.js'
import type { SignInCredentials, SignInResult } from './sign-in.js'
import * as signIn from './sign-in.js'
import * as tenants from './tenants.js'
import type { TotpEnrollment } from './totp.js'
import * as totp from './totp.js'
import type { TotpOptions } from './totp-algorithm.js'
import type { RegisterUserInput } from './users.js'
import * as users from './users.js'

export type { FactorSummary } from './factors.js'
export type { PasswordSubject } from './password.js'
export type { UpdateProfileOptions } from './profile.js'
export type { RecoveryCodeSet } from './recovery-codes.js'
export type { SecondFactorKind, SignInCredentials, SignInResult } from './sign-in.js'
export type { TotpEnrollment } from './totp.js'
export type { RegisterUserInput } from './users.js'

export interface UserEngineOptions {
  /** Any implementation of the store contract; the engine never depends on a concrete store. */
  readonly store: UserEngineStore
  /** Keys for TOTP seed encryption; see `createKeyring` and `keyringFromEnv`. */
  readonly keyring: Keyring
  /** Argon2id costs. Default: OWASP's baseline (19456 KiB, 2 passes, 1 lane). */
  readonly passwordHashing?: PasswordHashingOptions
  readonly totp?: Partial<TotpOptions>
  /** How many recovery codes `generateRecoveryCodes` issues. Default 10. */
  readonly recoveryCodeCount?: number
  /** Current time in ms; TOTP steps derive from it. Tests inject a fixed clock. */
  readonly clock?: () => number
  /** Attempts of one use case when its commit meets a VERSION_CONFLICT (it re-reads each time). Default 8. */
  readonly maxAttempts?: number
  /** Sign-in lockout per identifier and per user. Default DEFAULT_SIGN_IN_THROTTLE (5 failures, 30 s doubling to 15 min). */
  readonly throttle?: Partial<ThrottlePolicy>
  /** Sign-in lockout per `throttleKey` (IP, device). Default DEFAULT_CALLER_THROTTLE (50 failures, then as above). */
  readonly callerThrottle?: Partial<ThrottlePolicy>
}

/**
 * The use cases. Each one validates its input, then runs exactly one unit of work: read what it needs, write
 * with preconditions, append one audit record and enqueue its events in the same commit. Secrets live in
 * factor records as `Secret`; nothing returned holds a secret or personal data the caller did not ask for.
 *
 * This class is the facade: each method delegates to its feature module (tenants, users, profile, password,
 * totp, recovery-codes, factors), which all share one EngineContext.
 */
export class UserEngine {
  readonly #ctx: EngineContext

  /** Every option is checked here (VALIDATION, KEY_NOT_FOUND): see validateEngineOptions. */
  constructor(options: UserEngineOptions) {
    this.#ctx = createEngineContext(validateEngineOptions(options))
  }

  // ---- tenants ------------------------------------------------------------------------------------------

  async createTenant(name: string): Promise<TenantRecord> {
    return tenants.createTenant(this.#ctx, name)
  }

  // ---- users --------------------------------------------------------------------------------------------

  /** Creates an active user with one email identifier, a profile and (optionally) a password. */
  async registerUser(tenantId: string, input: RegisterUserInput): Promise<UserRecord> {
    return users.registerUser(this.#ctx, tenantId, input)
  }

  /** The user record (ids, status, version); a deleted user is returned as its tombstone. */
  async getUser(tenantId: string, userId: string): Promise<UserRecord> {
    return users.getUser(this.#ctx, tenantId, userId)
  }

  /** The user holding this email (any letter case), or null. */
  async findUserByEmail(tenantId: string, email: string): Promise<UserRecord | null> {
    return users.findUserByEmail(this.#ctx, tenantId, email)
  }

  /** Keyset page of users in id order, optionally filtered by status. */
  async listUsers(tenantId: string, query: ListUsersQuery = {}): Promise<Page<UserRecord>> {
    return users.listUsers(this.#ctx, tenantId, query)
  }

  async disableUser(tenantId: string, userId: string): Promise<UserRecord> {
    return users.setStatus(this.#ctx, tenantId, userId, 'disabled')
  }

  async enableUser(tenantId: string, userId: string): Promise<UserRecord> {
    return users.setStatus(this.#ctx, tenantId, userId, 'active')
  }

  /**
   * Erases the user's profile, identifiers and factors. The user record stays as a `deleted` tombstone holding
   * ids only, so audit records and events that name it still resolve. Deleting twice is a no-op.
   */
  async deleteUser(tenantId: string, userId: string): Promise<UserRecord> {
    return users.deleteUser(this.#ctx, tenantId, userId)
  }

  // ---- profile and email --------------------------------------------------------------------------------

  async getProfile(tenantId: string, userId: string): Promise<ProfileRecord> {
    return profile.getProfile(this.#ctx, tenantId, userId)
  }

  async updateProfile(
    tenantId: string,
    userId: string,
    attributes: Readonly<Record<string, ProfileValue>>,
    options: UpdateProfileOptions = {},
  ): Promise<ProfileRecord> {
    return profile.updateProfile(this.#ctx, tenantId, userId, attributes, options)
  }

  /** Replaces the user's email; the new one starts unverified. The same email again is a no-op. */
  async changeEmail(tenantId: string, userId: string, email: string): Promise<UserRecord> {
    return identifiers.setIdentifier(this.#ctx, tenantId, userId, 'email', email)
  }

  /**
   * Sets or changes the user's username (unique per tenant, normalized like an email: NFKC, lower case; see
   * docs for the characters refused). The same username again is a no-op. Users sign in with it through
   * `authenticate(tenantId, { username, password })`.
   */
  async setUsername(tenantId: string, userId: string, username: string): Promise<UserRecord> {
    return identifiers.setIdentifier(this.#ctx, tenantId, userId, 'username', username)
  }

  /** Removes the user's username (a no-op when there is none). The email stays. */
  async removeUsername(tenantId: string, userId: string): Promise<UserRecord> {
    return identifiers.removeUsername(this.#ctx, tenantId, userId)
  }

  // ---- password -----------------------------------------------------------------------------------------

  /** Sets (or replaces) the password. Checking the old one first is the caller's policy: see verifyPassword. */
  async setPassword(tenantId: string, userId: string, password: string): Promise<UserRecord> {
    return passwords.setPassword(this.#ctx, tenantId, userId, password)
  }

  /**
   * Signs a user in: an email or username and a password, and optionally a `throttleKey` (an IP, a device).
   * Returns the user and what happens next: `signed_in`, or `second_factor_required` with the second factors
   * the user has (finish with verifyTotp or consumeRecoveryCode). Every refusal (unknown identifier, wrong
   * password, no password, disabled or deleted user, suspended tenant) is INVALID_CREDENTIALS after the same
   * Argon2 work; the reason is in the audit trail only. Failures are counted per identifier, per user and per
   * throttle key; a locked one is THROTTLED (`details.retryAfterMs`) before any hashing. A success rehashes a
   * password hashed with other Argon2 costs, in the same unit of work as its audit record.
   */
  async authenticate(tenantId: string, credentials: SignInCredentials): Promise<SignInResult> {
    return signIn.authenticate(this.#ctx, tenantId, credentials)
  }

  /**
   * Re-authentication of a known user (before a sensitive change): the same check as `authenticate`,
   * throttled the same way, answered as a boolean. True only for an active user of an active tenant whose
   * password matches; every refusal is false after the same Argon2 work, with the reason in the audit trail.
   * Sign-in forms use `authenticate`.
   */
  async verifyPassword(tenantId: string, subject: PasswordSubject, password: string): Promise<boolean> {
    return passwords.verifyPassword(this.#ctx, tenantId, subject, password)
  }

  // ---- TOTP ---------------------------------------------------------------------------------------------

  /**
   * Starts TOTP for the user: a fresh seed, sealed under the keyring's current key. Returns the otpauth URI
   * once. An unconfirmed enrollment is replaced; a confirmed one must be removed first (ALREADY_EXISTS).
   * The URI's label defaults to the user's email, as authenticator apps show it.
   */
  async enrollTotp(
    tenantId: string,
    userId: string,
    options: { label?: string } = {},
  ): Promise<TotpEnrollment> {
    return totp.enrollTotp(this.#ctx, tenantId, userId, options)
  }

  /**
   * True when the code matches the user's TOTP seed within the window and its time step is later than the
   * last accepted one. The step is written with a version precondition, so one code is accepted once even
   * when verifications race. A successful check also re-seals the seed under the current key.
   */
  async verifyTotp(tenantId: string, userId: string, code: string): Promise<boolean> {
    return totp.verifyTotp(this.#ctx, tenantId, userId, code)
  }

  // ---- recovery codes -----------------------------------------------------------------------------------

  /** Issues a new set of recovery codes, replacing any previous set (its unused codes stop working). */
  async generateRecoveryCodes(tenantId: string, userId: string): Promise<RecoveryCodeSet> {
    return recoveryCodes.generateRecoveryCodes(this.#ctx, tenantId, userId)
  }

  /**
   * True the first time a valid code is used, false ever after. Marking it used is a versioned write: of any
   * number of racing calls with one code, exactly one commits; the others re-read, see it used, and get false.
   */
  async consumeRecoveryCode(tenantId: string, userId: string, code: string): Promise<boolean> {
    return recoveryCodes.consumeRecoveryCode(this.#ctx, tenantId, userId, code)
  }

  // ---- factors ------------------------------------------------------------------------------------------

  /** The user's factors without their secrets. */
  async listFactors(tenantId: string, userId: string): Promise<FactorSummary[]> {
    return factors.listFactors(this.#ctx, tenantId, userId)
  }

  async removeFactor(tenantId: string, userId: string, factorId: string): Promise<UserRecord> {
    return factors.removeFactor(this.#ctx, tenantId, userId, factorId)
  }

  toJSON(): { engine: string; store: string } {
    return { engine: 'UserEngine', store: this.#ctx.store.kind }
  }
}
