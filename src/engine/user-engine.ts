// Long on purpose: the facade is one delegating method per use case, each with the JSDoc a service team
// reads in its editor; the work lives in the feature modules it imports.
import type {
  AuditRecord,
  ProfileRecord,
  ProfileValue,
  SignInMethod,
  TenantRecord,
  UserRecord,
} from '../domain/records.js'
import type { ListTenantsQuery, Page, UserEngineStore } from '../store/store.js'
import type { ThrottlePolicy } from '../store/throttle.js'
import type { AccountIdentifier } from './account.js'
import * as account from './account.js'
import type { ListAuditOptions } from './audit-trail.js'
import * as auditTrail from './audit-trail.js'
import type { CompletedSignIn, SecondFactorProof } from './challenge.js'
import * as challenges from './challenge.js'
import { createEngineContext, type EngineContext } from './context.js'
import { type SessionPolicy, type TokenPolicy, validateEngineOptions } from './engine-options.js'
import type { FactorSummary } from './factors.js'
import * as factors from './factors.js'
import * as identifiers from './identifiers.js'
import type { Keyring } from './keyring.js'
import type { KeyUsage, ResealOptions, ResealResult } from './keys.js'
import * as keys from './keys.js'
import type { PurgeOptions, PurgeResult } from './maintenance.js'
import * as maintenance from './maintenance.js'
import type { PasswordSubject } from './password.js'
import * as passwords from './password.js'
import type { PasswordHashingOptions } from './password-hasher.js'
import type { UpdateProfileOptions } from './profile.js'
import * as profile from './profile.js'
import type { RecoveryCodeSet } from './recovery-codes.js'
import * as recoveryCodes from './recovery-codes.js'
import { type RequestContext, withRequestContext } from './request-context.js'
import type { NewSession, SessionSummary } from './sessions.js'
import * as sessions from './sessions.js'
import type { SignInCredentials, SignInResult } from './sign-in.js'
import * as signIn from './sign-in.js'
import * as tenants from './tenants.js'
import type { IssuedToken } from './tokens.js'
import type { TotpEnrollment } from './totp.js'
import * as totp from './totp.js'
import type { TotpOptions } from './totp-algorithm.js'
import { type TracerLike, traceUseCases } from './tracing.js'
import type { CountUsersOptions, ListUsersOptions, UserDetails, UserListItem } from './user-reads.js'
import * as userReads from './user-reads.js'
import type { RegisterUserInput } from './users.js'
import * as users from './users.js'

export type { AccountIdentifier } from './account.js'
export type { ListAuditOptions } from './audit-trail.js'
export type { CompletedSignIn, SecondFactorProof } from './challenge.js'
export type { SessionPolicy, TokenPolicy } from './engine-options.js'
export type { FactorSummary } from './factors.js'
export type { KeyUsage, KeyUse, ResealFailure, ResealOptions, ResealProgress, ResealResult } from './keys.js'
export type { PurgeOptions, PurgeResult } from './maintenance.js'
export type { PasswordSubject } from './password.js'
export type { UpdateProfileOptions } from './profile.js'
export type { RecoveryCodeSet } from './recovery-codes.js'
export type { RequestContext } from './request-context.js'
export type { NewSession, RevokeReason, SessionSummary } from './sessions.js'
export type { SecondFactorKind, SignInCredentials, SignInResult } from './sign-in.js'
export type { IssuedToken } from './tokens.js'
export type { TotpEnrollment } from './totp.js'
export type {
  CountUsersOptions,
  IdentifierSummary,
  ListUsersOptions,
  UserDetails,
  UserListItem,
} from './user-reads.js'
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
  /** Session lifetimes and refresh. Default DEFAULT_SESSION_POLICY (30 days absolute, 7 days idle, refresh hourly). */
  readonly sessions?: Partial<SessionPolicy>
  /** Single-use token lifetimes and the cap per user. Default DEFAULT_TOKEN_POLICY. */
  readonly tokens?: Partial<TokenPolicy>
  /**
   * Record the `ip` and `userAgent` of a use case's request context in its audit records. They are personal
   * data, so this is opt-in: by default they are checked and dropped. Actor and request ids are always kept.
   */
  readonly recordClientInfo?: boolean
  /**
   * An OpenTelemetry tracer (`trace.getTracer('my-service')`): a span per use case and per unit of work,
   * with ids and error codes as attributes, never values. Default: none.
   */
  readonly tracer?: TracerLike
}

/**
 * The use cases. Each one validates its input, then runs exactly one unit of work: read what it needs, write
 * with preconditions, append one audit record and enqueue its events in the same commit. Secrets live in
 * factor records as `Secret`; nothing returned holds a secret or personal data the caller did not ask for.
 *
 * This class is the facade: each method delegates to its feature module (tenants, users, user-reads,
 * identifiers, profile, password, sign-in, totp, recovery-codes, factors), which all share one EngineContext.
 *
 * Every use case that changes something (or audits a check) takes an optional last argument, the request
 * context (`actorId`, `requestId`, and, with `recordClientInfo`, `ip` and `userAgent`): it is validated first
 * and recorded in each audit record the use case appends.
 */
export class UserEngine {
  readonly #ctx: EngineContext

  /** Every option is checked here (VALIDATION, KEY_NOT_FOUND): see validateEngineOptions. */
  constructor(options: UserEngineOptions) {
    this.#ctx = createEngineContext(validateEngineOptions(options))
    if (this.#ctx.tracer) traceUseCases(this, this.#ctx.tracer)
  }

  /** The engine context for one call, recording `context` in its audit records (validated: VALIDATION). */
  #with(context: RequestContext | undefined): EngineContext {
    return withRequestContext(this.#ctx, context)
  }

  // ---- tenants ------------------------------------------------------------------------------------------

  async createTenant(name: string, context?: RequestContext): Promise<TenantRecord> {
    return tenants.createTenant(this.#with(context), name)
  }

  /** The tenant record; NOT_FOUND when there is none. */
  async getTenant(tenantId: string): Promise<TenantRecord> {
    return tenants.getTenant(this.#ctx, tenantId)
  }

  /** Every tenant in id order, by keyset pages (`limit` 1..500, default 50; pass `nextCursor` back). */
  async listTenants(query: ListTenantsQuery = {}): Promise<Page<TenantRecord>> {
    return tenants.listTenants(this.#ctx, query)
  }

  /** Renames the tenant (the same name again is a no-op). Allowed while suspended. */
  async renameTenant(tenantId: string, name: string, context?: RequestContext): Promise<TenantRecord> {
    return tenants.renameTenant(this.#with(context), tenantId, name)
  }

  /**
   * Suspends the tenant: reads go on, every change to its users is TENANT_SUSPENDED and sign-ins fail, until
   * `reactivateTenant` (docs/status-rules.md). Suspending a suspended tenant is a no-op.
   */
  async suspendTenant(tenantId: string, context?: RequestContext): Promise<TenantRecord> {
    return tenants.setTenantStatus(this.#with(context), tenantId, 'suspended')
  }

  /** Makes a suspended tenant active again (a no-op on an active one). */
  async reactivateTenant(tenantId: string, context?: RequestContext): Promise<TenantRecord> {
    return tenants.setTenantStatus(this.#with(context), tenantId, 'active')
  }

  // ---- users --------------------------------------------------------------------------------------------

  /** Creates an active user with one email identifier, a profile and (optionally) a password. */
  async registerUser(
    tenantId: string,
    input: RegisterUserInput,
    context?: RequestContext,
  ): Promise<UserRecord> {
    return users.registerUser(this.#with(context), tenantId, input)
  }

  /** The user record (ids, status, version); a deleted user is returned as its tombstone. */
  async getUser(tenantId: string, userId: string): Promise<UserRecord> {
    return users.getUser(this.#ctx, tenantId, userId)
  }

  /** The user holding this email (any letter case), or null. */
  async findUserByEmail(tenantId: string, email: string): Promise<UserRecord | null> {
    return users.findUserByEmail(this.#ctx, tenantId, email)
  }

  /**
   * The user with its identifiers (kinds and values), profile and factor summaries (no secrets), in one call:
   * the account page of an admin console. A deleted user comes back as its tombstone with nothing else.
   */
  async getUserDetails(tenantId: string, userId: string): Promise<UserDetails> {
    return userReads.getUserDetails(this.#ctx, tenantId, userId)
  }

  /**
   * A keyset page of users. By default in id order; with `emailPrefix` or `usernamePrefix` (any letter case),
   * the users whose email or username starts with it, ordered by that value (an index range: as fast in a
   * tenant of millions as in a small one). `status` filters; `include: ['identifiers']` adds each user's
   * identifiers, read in the same query as the page. Pass `nextCursor` back with the same tenant, search and
   * status (anything else is VALIDATION).
   */
  async listUsers(tenantId: string, options: ListUsersOptions = {}): Promise<Page<UserListItem>> {
    return userReads.listUsers(this.#ctx, tenantId, options)
  }

  /** How many users `listUsers` lists with the same `status` and prefix filters. */
  async countUsers(tenantId: string, options: CountUsersOptions = {}): Promise<number> {
    return userReads.countUsers(this.#ctx, tenantId, options)
  }

  /**
   * The tenant's audit trail, oldest first (`userId` narrows it to one user), keyset-paginated: pass
   * `nextCursor` back for the next page. An unknown tenant is NOT_FOUND.
   */
  async listAudit(tenantId: string, options: ListAuditOptions = {}): Promise<Page<AuditRecord>> {
    return auditTrail.listAudit(this.#ctx, tenantId, options)
  }

  async disableUser(tenantId: string, userId: string, context?: RequestContext): Promise<UserRecord> {
    return users.setStatus(this.#with(context), tenantId, userId, 'disabled')
  }

  async enableUser(tenantId: string, userId: string, context?: RequestContext): Promise<UserRecord> {
    return users.setStatus(this.#with(context), tenantId, userId, 'active')
  }

  /**
   * Erases the user's profile, identifiers and factors. The user record stays as a `deleted` tombstone holding
   * ids only, so audit records and events that name it still resolve. Deleting twice is a no-op.
   */
  async deleteUser(tenantId: string, userId: string, context?: RequestContext): Promise<UserRecord> {
    return users.deleteUser(this.#with(context), tenantId, userId)
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
    context?: RequestContext,
  ): Promise<ProfileRecord> {
    return profile.updateProfile(this.#with(context), tenantId, userId, attributes, options)
  }

  /** Replaces the user's email; the new one starts unverified. The same email again is a no-op. */
  async changeEmail(
    tenantId: string,
    userId: string,
    email: string,
    context?: RequestContext,
  ): Promise<UserRecord> {
    return identifiers.setIdentifier(this.#with(context), tenantId, userId, 'email', email)
  }

  /**
   * Sets or changes the user's username (unique per tenant, normalized like an email: NFKC, lower case; see
   * docs for the characters refused). The same username again is a no-op. Users sign in with it through
   * `authenticate(tenantId, { username, password })`.
   */
  async setUsername(
    tenantId: string,
    userId: string,
    username: string,
    context?: RequestContext,
  ): Promise<UserRecord> {
    return identifiers.setIdentifier(this.#with(context), tenantId, userId, 'username', username)
  }

  /** Removes the user's username (a no-op when there is none). The email stays. */
  async removeUsername(tenantId: string, userId: string, context?: RequestContext): Promise<UserRecord> {
    return identifiers.removeUsername(this.#with(context), tenantId, userId)
  }

  // ---- password -----------------------------------------------------------------------------------------

  /** Sets (or replaces) the password. Checking the old one first is the caller's policy: see verifyPassword. */
  async setPassword(
    tenantId: string,
    userId: string,
    password: string,
    context?: RequestContext,
  ): Promise<UserRecord> {
    return passwords.setPassword(this.#with(context), tenantId, userId, password)
  }

  /**
   * Signs a user in: an email or username and a password, and optionally a `throttleKey` (an IP, a device).
   * Returns the user and what happens next: `signed_in` with a new session (its token shown once), or
   * `second_factor_required` with the second factors the user has and a sign-in challenge token (finish with
   * completeSignIn). Every refusal (unknown identifier, wrong password, no password, disabled or deleted
   * user, suspended tenant) is INVALID_CREDENTIALS after the same Argon2 work; the reason is in the audit trail
   * only. Failures are counted per identifier, per user and per throttle key; a locked one is THROTTLED
   * (`details.retryAfterMs`) before any hashing. A success rehashes a password hashed with other Argon2 costs,
   * and creates the session or challenge, in the same unit of work as its audit record.
   */
  async authenticate(
    tenantId: string,
    credentials: SignInCredentials,
    context?: RequestContext,
  ): Promise<SignInResult> {
    return signIn.authenticate(this.#with(context), tenantId, credentials)
  }

  /**
   * Re-authentication of a known user (before a sensitive change): the same check as `authenticate`,
   * throttled the same way, answered as a boolean. True only for an active user of an active tenant whose
   * password matches; every refusal is false after the same Argon2 work, with the reason in the audit trail.
   * Sign-in forms use `authenticate`.
   */
  async verifyPassword(
    tenantId: string,
    subject: PasswordSubject,
    password: string,
    context?: RequestContext,
  ): Promise<boolean> {
    return passwords.verifyPassword(this.#with(context), tenantId, subject, password)
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
    context?: RequestContext,
  ): Promise<TotpEnrollment> {
    return totp.enrollTotp(this.#with(context), tenantId, userId, options)
  }

  /**
   * True when the code matches the user's TOTP seed within the window and its time step is later than the
   * last accepted one. The step is written with a version precondition, so one code is accepted once even
   * when verifications race. A successful check also re-seals the seed under the current key.
   */
  async verifyTotp(
    tenantId: string,
    userId: string,
    code: string,
    context?: RequestContext,
  ): Promise<boolean> {
    return totp.verifyTotp(this.#with(context), tenantId, userId, code)
  }

  // ---- recovery codes -----------------------------------------------------------------------------------

  /** Issues a new set of recovery codes, replacing any previous set (its unused codes stop working). */
  async generateRecoveryCodes(
    tenantId: string,
    userId: string,
    context?: RequestContext,
  ): Promise<RecoveryCodeSet> {
    return recoveryCodes.generateRecoveryCodes(this.#with(context), tenantId, userId)
  }

  /**
   * True the first time a valid code is used, false ever after. Marking it used is a versioned write: of any
   * number of racing calls with one code, exactly one commits; the others re-read, see it used, and get false.
   */
  async consumeRecoveryCode(
    tenantId: string,
    userId: string,
    code: string,
    context?: RequestContext,
  ): Promise<boolean> {
    return recoveryCodes.consumeRecoveryCode(this.#with(context), tenantId, userId, code)
  }

  // ---- factors ------------------------------------------------------------------------------------------

  /** The user's factors without their secrets. */
  async listFactors(tenantId: string, userId: string): Promise<FactorSummary[]> {
    return factors.listFactors(this.#ctx, tenantId, userId)
  }

  async removeFactor(
    tenantId: string,
    userId: string,
    factorId: string,
    context?: RequestContext,
  ): Promise<UserRecord> {
    return factors.removeFactor(this.#with(context), tenantId, userId, factorId)
  }

  // ---- sign-in steps and sessions ----------------------------------------------------------------------

  /**
   * Finishes a sign-in `authenticate` (or `signInWithMagicLink`) answered with `second_factor_required`: the
   * challenge token and a TOTP or recovery code. One unit of work consumes the challenge, uses the code and
   * creates the session. A challenge that is unknown, used, expired or of a user no longer active is
   * INVALID_TOKEN; a wrong code is INVALID_CREDENTIALS (counted on the user's throttle key; the challenge
   * stays usable until it expires).
   */
  async completeSignIn(
    challenge: string,
    proof: SecondFactorProof,
    context?: RequestContext,
  ): Promise<CompletedSignIn> {
    return challenges.completeSignIn(this.#with(context), challenge, proof)
  }

  /**
   * A session for a user the service signed in by its own means (`methods`, default `['external']`): the
   * engine's own sign-ins create theirs. Ends the user's least recently active session beyond
   * `sessions.maxPerUser`.
   */
  async createSession(
    tenantId: string,
    userId: string,
    options: { readonly methods?: readonly SignInMethod[] } = {},
    context?: RequestContext,
  ): Promise<NewSession> {
    return sessions.createSession(this.#with(context), tenantId, userId, options)
  }

  /**
   * The session a token names, if it is valid: the hot path, one read and no write unless the session's
   * activity is due to be recorded (at most once per `sessions.refreshIntervalMs`), which moves its idle
   * expiry. Every refusal is INVALID_TOKEN: unknown, revoked, expired or tampered token, a suspended tenant.
   * The token names its tenant: compare `tenantId` with the tenant the request is for.
   */
  async validateSession(token: string): Promise<SessionSummary> {
    return sessions.validateSession(this.#ctx, token)
  }

  /** The user's live sessions (ids and times only), in creation order. */
  async listSessions(tenantId: string, userId: string): Promise<SessionSummary[]> {
    return sessions.listSessions(this.#ctx, tenantId, userId)
  }

  /** Ends one session of the user; true when it was live, false when there is none (idempotent). */
  async revokeSession(
    tenantId: string,
    userId: string,
    sessionId: string,
    context?: RequestContext,
  ): Promise<boolean> {
    return sessions.revokeSession(this.#with(context), tenantId, userId, sessionId)
  }

  /** Ends every session of the user ("sign out everywhere"), or every other one; returns how many ended. */
  async revokeAllSessions(
    tenantId: string,
    userId: string,
    options: { readonly exceptSessionId?: string } = {},
    context?: RequestContext,
  ): Promise<number> {
    return sessions.revokeAllSessions(this.#with(context), tenantId, userId, options)
  }

  /** Ends the session of this token (sign-out). False, and nothing written, for any token that is not live. */
  async signOut(token: string, context?: RequestContext): Promise<boolean> {
    return sessions.signOut(this.#with(context), token)
  }

  // ---- single-use tokens --------------------------------------------------------------------------------

  /** A token that verifies the user's current email (send it as a link). */
  async issueEmailVerification(
    tenantId: string,
    userId: string,
    context?: RequestContext,
  ): Promise<IssuedToken> {
    return account.issueEmailVerification(this.#with(context), tenantId, userId)
  }

  /** Marks the email the token was issued for as verified, consuming the token. INVALID_TOKEN otherwise. */
  async verifyEmail(token: string, context?: RequestContext): Promise<UserRecord> {
    return account.verifyEmail(this.#with(context), token)
  }

  /**
   * A password reset token for the user this email or username names, replacing any earlier one; null when
   * there is no such active user. Answer the requester the same way either way.
   */
  async requestPasswordReset(
    tenantId: string,
    identifier: AccountIdentifier,
    context?: RequestContext,
  ): Promise<IssuedToken | null> {
    return account.requestPasswordReset(this.#with(context), tenantId, identifier)
  }

  /**
   * Sets the password with a reset token: the token is consumed, the password set and every session of the
   * user ended, in one unit of work. INVALID_TOKEN for a token that is not valid (and no hashing).
   */
  async resetPassword(token: string, password: string, context?: RequestContext): Promise<UserRecord> {
    return account.resetPassword(this.#with(context), token, password)
  }

  /** A token confirming a change to `email` (send it to that address); the change happens on confirmation. */
  async requestEmailChange(
    tenantId: string,
    userId: string,
    email: string,
    context?: RequestContext,
  ): Promise<IssuedToken> {
    return account.requestEmailChange(this.#with(context), tenantId, userId, email)
  }

  /** Makes the token's email the user's (verified), consuming the token; sessions end as on any email change. */
  async confirmEmailChange(token: string, context?: RequestContext): Promise<UserRecord> {
    return account.confirmEmailChange(this.#with(context), token)
  }

  /** A sign-in link token for the user this email names; null when there is no such active user. */
  async requestMagicLink(
    tenantId: string,
    identifier: { readonly email: string },
    context?: RequestContext,
  ): Promise<IssuedToken | null> {
    return account.requestMagicLink(this.#with(context), tenantId, identifier)
  }

  /** Signs in with a magic link token, as `authenticate` would with a password (second factor included). */
  async signInWithMagicLink(token: string, context?: RequestContext): Promise<SignInResult> {
    return account.signInWithMagicLink(this.#with(context), token)
  }

  // ---- keys and maintenance -----------------------------------------------------------------------------

  /** How many seeds each key seals (counts only): a key other than the current one at 0 can be removed. */
  async keyUsage(): Promise<KeyUsage> {
    return keys.keyUsage(this.#ctx)
  }

  /**
   * Re-seals every TOTP seed under the keyring's current key, in bounded batches, resumable (a later run finds
   * only what is left). Returns counts and the key usage after the run.
   */
  async resealSeeds(options: ResealOptions = {}, context?: RequestContext): Promise<ResealResult> {
    return keys.resealSeeds(this.#with(context), options)
  }

  /** Deletes expired sessions and tokens of every tenant in bounded batches (the engine's clock is `now`). */
  async purgeExpired(options: PurgeOptions = {}): Promise<PurgeResult> {
    return maintenance.purgeExpiredByClock(this.#ctx.store, this.#ctx.clock, options)
  }

  toJSON(): { engine: string; store: string } {
    return { engine: 'UserEngine', store: this.#ctx.store.kind }
  }
}
