import { randomInt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ConflictError,
  ErrorCode,
  isUserEngineError,
  NotFoundError,
  UserEngineError,
  ValidationError,
} from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import { LIMITS } from '../domain/limits.js'
import type {
  FactorKind,
  FactorRecord,
  JsonValue,
  ProfileRecord,
  ProfileValue,
  TenantRecord,
  UserRecord,
  UserStatus,
} from '../domain/records.js'
import { Secret } from '../domain/secret.js'
import {
  assertId,
  assertPositiveInt,
  assertString,
  normalizeIdentifier,
  validatePageSize,
  validateProfile,
} from '../domain/validation.js'
import type { ListUsersQuery, Page, UserEngineStore } from '../store/store.js'
import type { UnitOfWork } from '../store/unit-of-work.js'
import { validateEngineOptions } from './engine-options.js'
import { AUDIT_ACTIONS, EVENT_TYPES, type RejectReason } from './events.js'
import type { Keyring } from './keyring.js'
import type { PasswordHasher, PasswordHashingOptions } from './password-hasher.js'
import { matchRecoveryCode, newRecoveryCodes } from './recovery-codes.js'
import { openSeed, sealSeed } from './seed-cipher.js'
import type { TotpCodec, TotpOptions } from './totp.js'

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
}

export interface RegisterUserInput {
  readonly email: string
  readonly password?: string
  readonly profile?: Readonly<Record<string, ProfileValue>>
}

/** Whom a password check is for: a login form has an email, a re-authentication has the user id. */
export type PasswordSubject = { readonly email: string } | { readonly userId: string }

export interface UpdateProfileOptions {
  /** The profile version the caller read; a different stored version fails with VERSION_CONFLICT. */
  readonly expectedVersion?: number
  /** `merge` (default) overlays the given attributes; `replace` makes them the whole profile. */
  readonly mode?: 'merge' | 'replace'
}

export interface TotpEnrollment {
  readonly factorId: string
  /** otpauth:// URI with the seed: show it (as a QR code) once, never store or log it. */
  readonly uri: string
}

export interface RecoveryCodeSet {
  readonly factorId: string
  /** Shown to the user once; only their hashes are stored. */
  readonly codes: readonly string[]
}

/** A factor without its secret. */
export interface FactorSummary {
  readonly id: string
  readonly kind: FactorKind
  readonly version: number
  readonly createdAt: string
  readonly updatedAt: string
  /** TOTP: whether a code has been verified since enrollment. */
  readonly confirmed?: boolean
  /** Recovery codes: how many are unused. */
  readonly remaining?: number
}

const USER_STATUSES: readonly UserStatus[] = ['active', 'disabled', 'deleted']

/** Bound the AES-GCM associated data to the record the seed belongs to. */
const seedContext = (tenantId: string, userId: string, factorId: string) =>
  `user-engine/totp/v1/${tenantId}/${userId}/${factorId}`

function checkNewPassword(password: unknown): string {
  assertString(password, 'password', LIMITS.passwordMaxLength, LIMITS.passwordMinLength)
  return password
}

function asObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`${field} must be an object`, { details: { field } })
  }
  return value as Record<string, unknown>
}

function usedSlots(state: FactorRecord['state']): number[] {
  return Array.isArray(state.used) ? state.used.filter((n): n is number => typeof n === 'number') : []
}

/**
 * The use cases. Each one validates its input, then runs exactly one unit of work: read what it needs, write
 * with preconditions, append one audit record and enqueue its events in the same commit. Secrets live in
 * factor records as `Secret`; nothing returned holds a secret or personal data the caller did not ask for.
 */
export class UserEngine {
  readonly #store: UserEngineStore
  readonly #keyring: Keyring
  readonly #hasher: PasswordHasher
  readonly #totp: TotpCodec
  readonly #recoveryCodeCount: number
  readonly #clock: () => number
  readonly #maxAttempts: number

  /** Every option is checked here (VALIDATION, KEY_NOT_FOUND): see validateEngineOptions. */
  constructor(options: UserEngineOptions) {
    const o = validateEngineOptions(options)
    this.#store = o.store
    this.#keyring = o.keyring
    this.#hasher = o.hasher
    this.#totp = o.totp
    this.#recoveryCodeCount = o.recoveryCodeCount
    this.#clock = o.clock
    this.#maxAttempts = o.maxAttempts
  }

  // ---- tenants ------------------------------------------------------------------------------------------

  async createTenant(name: string): Promise<TenantRecord> {
    assertString(name, 'name', LIMITS.tenantNameLength)
    const tenantId = newId('ten')
    return this.#unit(tenantId, async (tx) => {
      tx.putTenant({ id: tenantId, name, status: 'active' }, { mustNotExist: true })
      tx.appendAudit({ action: AUDIT_ACTIONS.tenantCreated, data: { tenantId } })
      tx.enqueue({ type: EVENT_TYPES.tenantCreated, payload: { tenantId } })
      return (await tx.getTenant())!
    })
  }

  // ---- users --------------------------------------------------------------------------------------------

  /** Creates an active user with one email identifier, a profile and (optionally) a password. */
  async registerUser(tenantId: string, input: RegisterUserInput): Promise<UserRecord> {
    assertId(tenantId, 'tenantId')
    const fields = asObject(input, 'input')
    const email = normalizeIdentifier('email', fields.email)
    const password = fields.password === undefined ? undefined : checkNewPassword(fields.password)
    const attributes = validateProfile(fields.profile ?? {})
    // Hash before the unit of work: a retry must not pay for Argon2 twice, and no store work waits on it.
    const phc = password === undefined ? undefined : await this.#hasher.hash(password)
    // No reads: the commit refuses an unknown tenant (NOT_FOUND) and a taken email (DUPLICATE_IDENTIFIER),
    // so registration is one round trip on the Postgres store.
    return this.#unit(tenantId, async (tx) => {
      const userId = newId('usr')
      tx.putUser({ id: userId, status: 'active' }, { mustNotExist: true })
      tx.putIdentifier(
        { id: newId('idn'), userId, kind: 'email', value: email, verified: false },
        { mustNotExist: true },
      )
      tx.putProfile({ userId, attributes }, { mustNotExist: true })
      if (phc !== undefined) {
        tx.putFactor(
          { id: newId('fac'), userId, kind: 'password', secret: passwordSecret(phc), state: {} },
          { mustNotExist: true },
        )
      }
      tx.appendAudit({
        action: AUDIT_ACTIONS.userRegistered,
        userId,
        data: { hasPassword: phc !== undefined },
      })
      tx.enqueue({ type: EVENT_TYPES.userRegistered, userId, payload: { userId } })
      return (await tx.getUser(userId))!
    })
  }

  /** The user record (ids, status, version); a deleted user is returned as its tombstone. */
  async getUser(tenantId: string, userId: string): Promise<UserRecord> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    // The hit path is one read: a user exists only inside an existing tenant. Only a miss asks which is missing.
    const user = await this.#store.getUser(tenantId, userId)
    if (user) return user
    if (!(await this.#store.getTenant(tenantId))) throw tenantNotFound(tenantId)
    throw userNotFound(userId)
  }

  /** The user holding this email (any letter case), or null. */
  async findUserByEmail(tenantId: string, email: string): Promise<UserRecord | null> {
    assertId(tenantId, 'tenantId')
    const value = normalizeIdentifier('email', email)
    const user = await this.#store.findUserByIdentifier(tenantId, 'email', value)
    if (user) return user
    if (!(await this.#store.getTenant(tenantId))) throw tenantNotFound(tenantId)
    return null
  }

  /** Keyset page of users in id order, optionally filtered by status. */
  async listUsers(tenantId: string, query: ListUsersQuery = {}): Promise<Page<UserRecord>> {
    assertId(tenantId, 'tenantId')
    const q = asObject(query, 'query')
    validatePageSize(q.limit)
    if (q.status !== undefined && !USER_STATUSES.includes(q.status as UserStatus)) {
      throw new ValidationError('status must be active, disabled or deleted', {
        details: { field: 'status' },
      })
    }
    if (q.cursor !== undefined && typeof q.cursor !== 'string') {
      throw new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
    }
    if (!(await this.#store.getTenant(tenantId))) throw tenantNotFound(tenantId)
    return this.#store.listUsers(tenantId, query)
  }

  async disableUser(tenantId: string, userId: string): Promise<UserRecord> {
    return this.#setStatus(tenantId, userId, 'disabled')
  }

  async enableUser(tenantId: string, userId: string): Promise<UserRecord> {
    return this.#setStatus(tenantId, userId, 'active')
  }

  /**
   * Erases the user's profile, identifiers and factors. The user record stays as a `deleted` tombstone holding
   * ids only, so audit records and events that name it still resolve. Deleting twice is a no-op.
   */
  async deleteUser(tenantId: string, userId: string): Promise<UserRecord> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    return this.#unit(tenantId, async (tx) => {
      const [, user] = await Promise.all([this.#requireTenant(tx), tx.getUser(userId)])
      if (!user) throw userNotFound(userId)
      if (user.status === 'deleted') return user
      const [identifiers, factors, profile] = await Promise.all([
        tx.listIdentifiers(userId),
        tx.listFactors(userId),
        tx.getProfile(userId),
      ])
      for (const i of identifiers) tx.deleteIdentifier({ id: i.id, userId }, { expectedVersion: i.version })
      for (const f of factors) tx.deleteFactor({ id: f.id, userId }, { expectedVersion: f.version })
      if (profile) tx.deleteProfile(userId, { expectedVersion: profile.version })
      const next = await this.#bumpUser(tx, user, 'deleted')
      tx.appendAudit({
        action: AUDIT_ACTIONS.userDeleted,
        userId,
        data: { identifiers: identifiers.length, factors: factors.length, profile: profile !== null },
      })
      tx.enqueue({ type: EVENT_TYPES.userDeleted, userId, payload: { userId } })
      return next
    })
  }

  // ---- profile and email --------------------------------------------------------------------------------

  async getProfile(tenantId: string, userId: string): Promise<ProfileRecord> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    return this.#unit(tenantId, async (tx) => {
      const user = await this.#requireUser(tx, userId)
      const profile = await tx.getProfile(user.id)
      if (!profile) throw new NotFoundError(`profile of user ${userId} not found`, { details: { userId } })
      return profile
    })
  }

  async updateProfile(
    tenantId: string,
    userId: string,
    attributes: Readonly<Record<string, ProfileValue>>,
    options: UpdateProfileOptions = {},
  ): Promise<ProfileRecord> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    const patch = validateProfile(attributes)
    const opts = asObject(options, 'options')
    const expectedVersion = opts.expectedVersion
    if (expectedVersion !== undefined) assertPositiveInt(expectedVersion, 'expectedVersion')
    const mode = opts.mode ?? 'merge'
    if (mode !== 'merge' && mode !== 'replace') {
      throw new ValidationError('mode must be merge or replace', { details: { field: 'mode' } })
    }
    return this.#unit(tenantId, async (tx) => {
      const user = await this.#requireUser(tx, userId)
      const profile = await tx.getProfile(userId)
      if (expectedVersion !== undefined && profile?.version !== expectedVersion) {
        throw new ConflictError(
          ErrorCode.VERSION_CONFLICT,
          `profile ${userId} is not at the expected version`,
          {
            details: {
              recordType: 'profile',
              recordId: userId,
              expectedVersion,
            },
          },
        )
      }
      // The merged profile must still respect the size limits.
      const next = validateProfile(mode === 'replace' ? patch : { ...profile?.attributes, ...patch })
      tx.putProfile(
        { userId, attributes: next },
        profile ? { expectedVersion: profile.version } : { mustNotExist: true },
      )
      await this.#bumpUser(tx, user)
      tx.appendAudit({
        action: AUDIT_ACTIONS.profileUpdated,
        userId,
        data: { attributes: Object.keys(patch).length, mode },
      })
      tx.enqueue({ type: EVENT_TYPES.profileUpdated, userId, payload: { userId } })
      const written = (await tx.getProfile(userId))!
      return profile ? { ...written, createdAt: profile.createdAt } : written
    })
  }

  /** Replaces the user's email; the new one starts unverified. The same email again is a no-op. */
  async changeEmail(tenantId: string, userId: string, email: string): Promise<UserRecord> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    const value = normalizeIdentifier('email', email)
    return this.#unit(tenantId, async (tx) => {
      const user = await this.#requireUser(tx, userId)
      const [identifiers, holder] = await Promise.all([
        tx.listIdentifiers(userId),
        tx.findIdentifier('email', value),
      ])
      const current = identifiers.find((i) => i.kind === 'email')
      if (current?.value === value) return user
      if (holder) throw duplicateEmail(tenantId)
      const identifierId = current?.id ?? newId('idn')
      tx.putIdentifier(
        { id: identifierId, userId, kind: 'email', value, verified: false },
        current ? { expectedVersion: current.version } : { mustNotExist: true },
      )
      const next = await this.#bumpUser(tx, user)
      tx.appendAudit({ action: AUDIT_ACTIONS.emailChanged, userId, data: { identifierId } })
      tx.enqueue({ type: EVENT_TYPES.emailChanged, userId, payload: { userId, identifierId } })
      return next
    })
  }

  // ---- password -----------------------------------------------------------------------------------------

  /** Sets (or replaces) the password. Checking the old one first is the caller's policy: see verifyPassword. */
  async setPassword(tenantId: string, userId: string, password: string): Promise<UserRecord> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    const phc = await this.#hasher.hash(checkNewPassword(password))
    return this.#unit(tenantId, async (tx) => {
      const user = await this.#requireUser(tx, userId)
      const existing = (await tx.listFactors(userId)).find((f) => f.kind === 'password')
      const factorId = existing?.id ?? newId('fac')
      tx.putFactor(
        { id: factorId, userId, kind: 'password', secret: passwordSecret(phc), state: {} },
        existing ? { expectedVersion: existing.version } : { mustNotExist: true },
      )
      const next = await this.#bumpUser(tx, user)
      tx.appendAudit({ action: AUDIT_ACTIONS.passwordSet, userId, data: { factorId } })
      tx.enqueue({ type: EVENT_TYPES.passwordSet, userId, payload: { userId, factorId } })
      return next
    })
  }

  /**
   * True only for an active user of an active tenant whose password matches. An unknown email, a user without
   * a password, a disabled user and a wrong password all return false after the same Argon2 work, so the
   * answer and its timing do not reveal which emails exist. The reason is written to the audit trail.
   */
  async verifyPassword(tenantId: string, subject: PasswordSubject, password: string): Promise<boolean> {
    assertId(tenantId, 'tenantId')
    const s = asObject(subject, 'subject')
    const email = 'email' in s ? normalizeIdentifier('email', s.email) : undefined
    const userId = email === undefined ? s.userId : undefined
    if (email === undefined) assertId(userId, 'userId')
    assertString(password, 'password', LIMITS.passwordMaxLength, 0)
    return this.#unit(tenantId, async (tx) => {
      const tenant = await this.#requireTenant(tx)
      const user = email
        ? await tx.findIdentifier('email', email).then((i) => (i ? tx.getUser(i.userId) : null))
        : await tx.getUser(userId as string)
      const factor = user ? (await tx.listFactors(user.id)).find((f) => f.kind === 'password') : undefined
      let reason: RejectReason | null = null
      if (!user || user.status === 'deleted') reason = 'unknown_user'
      else if (tenant.status !== 'active') reason = 'tenant_inactive'
      else if (user.status !== 'active') reason = 'user_inactive'
      else if (!factor) reason = 'no_factor'
      const phc = factor?.secret.reveal().phc
      const ok =
        reason === null && typeof phc === 'string'
          ? await this.#hasher.verify(phc, password)
          : await this.#hasher.verifyDummy(password)
      if (!ok) reason ??= 'wrong_secret'
      tx.appendAudit({
        action: ok ? AUDIT_ACTIONS.passwordVerified : AUDIT_ACTIONS.passwordRejected,
        userId: user?.id ?? null,
        data: ok ? {} : { reason },
      })
      return ok
    })
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
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    const label = asObject(options, 'options').label
    if (label !== undefined) assertString(label, 'label', 200)
    return this.#unit(tenantId, async (tx) => {
      const user = await this.#requireUser(tx, userId, { active: true })
      const [factors, identifiers] = await Promise.all([tx.listFactors(userId), tx.listIdentifiers(userId)])
      const existing = factors.find((f) => f.kind === 'totp')
      if (existing?.state.confirmed === true) {
        throw new ConflictError(
          ErrorCode.ALREADY_EXISTS,
          `user ${userId} already has a confirmed TOTP factor`,
          {
            details: {
              userId,
              factorId: existing.id,
            },
          },
        )
      }
      const factorId = existing?.id ?? newId('fac')
      const seed = this.#totp.newSeed()
      try {
        const sealed = sealSeed(this.#keyring, seed, seedContext(tenantId, userId, factorId))
        tx.putFactor(
          {
            id: factorId,
            userId,
            kind: 'totp',
            secret: new Secret(sealed),
            state: { confirmed: false, lastUsedStep: null },
          },
          existing ? { expectedVersion: existing.version } : { mustNotExist: true },
        )
        await this.#bumpUser(tx, user)
        tx.appendAudit({
          action: AUDIT_ACTIONS.totpEnrolled,
          userId,
          data: { factorId, keyId: sealed.keyId },
        })
        tx.enqueue({ type: EVENT_TYPES.totpEnrolled, userId, payload: { userId, factorId } })
        const accountName = label ?? identifiers.find((i) => i.kind === 'email')?.value ?? userId
        return { factorId, uri: this.#totp.uri(seed, accountName) }
      } finally {
        seed.fill(0)
      }
    })
  }

  /**
   * True when the code matches the user's TOTP seed within the window and its time step is later than the
   * last accepted one. The step is written with a version precondition, so one code is accepted once even
   * when verifications race. A successful check also re-seals the seed under the current key.
   */
  async verifyTotp(tenantId: string, userId: string, code: string): Promise<boolean> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    assertString(code, 'code', 32)
    return this.#unit(tenantId, async (tx) => {
      const found = await this.#factorForCheck(tx, userId, 'totp')
      if (typeof found === 'string') return this.#reject(tx, AUDIT_ACTIONS.totpRejected, userId, found)
      const { user, factor } = found
      const context = seedContext(tenantId, userId, factor.id)
      const sealed = factor.secret.reveal()
      const seed = openSeed(this.#keyring, sealed, context)
      try {
        const step = this.#totp.matchStep(seed, code, this.#clock())
        const last = typeof factor.state.lastUsedStep === 'number' ? factor.state.lastUsedStep : -1
        if (step === null || step <= last) {
          return this.#reject(
            tx,
            AUDIT_ACTIONS.totpRejected,
            userId,
            step === null ? 'wrong_secret' : 'replayed',
            factor.id,
          )
        }
        const secret =
          sealed.keyId === this.#keyring.currentKeyId
            ? factor.secret
            : new Secret(sealSeed(this.#keyring, seed, context))
        tx.putFactor(
          {
            id: factor.id,
            userId,
            kind: 'totp',
            secret,
            state: { ...factor.state, confirmed: true, lastUsedStep: step },
          },
          { expectedVersion: factor.version },
        )
        await this.#bumpUser(tx, user)
        tx.appendAudit({ action: AUDIT_ACTIONS.totpVerified, userId, data: { factorId: factor.id } })
        tx.enqueue({ type: EVENT_TYPES.totpVerified, userId, payload: { userId, factorId: factor.id } })
        return true
      } finally {
        seed.fill(0)
      }
    })
  }

  // ---- recovery codes -----------------------------------------------------------------------------------

  /** Issues a new set of recovery codes, replacing any previous set (its unused codes stop working). */
  async generateRecoveryCodes(tenantId: string, userId: string): Promise<RecoveryCodeSet> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    return this.#unit(tenantId, async (tx) => {
      const user = await this.#requireUser(tx, userId, { active: true })
      const existing = (await tx.listFactors(userId)).find((f) => f.kind === 'recovery_codes')
      const factorId = existing?.id ?? newId('fac')
      const { codes, hashes } = newRecoveryCodes(this.#recoveryCodeCount)
      tx.putFactor(
        { id: factorId, userId, kind: 'recovery_codes', secret: new Secret(hashes), state: { used: [] } },
        existing ? { expectedVersion: existing.version } : { mustNotExist: true },
      )
      await this.#bumpUser(tx, user)
      tx.appendAudit({
        action: AUDIT_ACTIONS.recoveryCodesGenerated,
        userId,
        data: { factorId, count: codes.length },
      })
      tx.enqueue({ type: EVENT_TYPES.recoveryCodesGenerated, userId, payload: { userId, factorId } })
      return { factorId, codes }
    })
  }

  /**
   * True the first time a valid code is used, false ever after. Marking it used is a versioned write: of any
   * number of racing calls with one code, exactly one commits; the others re-read, see it used, and get false.
   */
  async consumeRecoveryCode(tenantId: string, userId: string, code: string): Promise<boolean> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    assertString(code, 'code', 64)
    return this.#unit(tenantId, async (tx) => {
      const found = await this.#factorForCheck(tx, userId, 'recovery_codes')
      if (typeof found === 'string')
        return this.#reject(tx, AUDIT_ACTIONS.recoveryCodeRejected, userId, found)
      const { user, factor } = found
      const slot = matchRecoveryCode(factor.secret.reveal(), code)
      const used = usedSlots(factor.state)
      if (slot < 0 || used.includes(slot)) {
        return this.#reject(
          tx,
          AUDIT_ACTIONS.recoveryCodeRejected,
          userId,
          slot < 0 ? 'wrong_secret' : 'already_used',
          factor.id,
        )
      }
      const nowUsed = [...used, slot].sort((a, b) => a - b)
      const total = Array.isArray(factor.secret.reveal().hashes)
        ? (factor.secret.reveal().hashes as JsonValue[]).length
        : 0
      const remaining = Math.max(0, total - nowUsed.length)
      tx.putFactor(
        {
          id: factor.id,
          userId,
          kind: 'recovery_codes',
          secret: factor.secret,
          state: { ...factor.state, used: nowUsed },
        },
        { expectedVersion: factor.version },
      )
      await this.#bumpUser(tx, user)
      tx.appendAudit({
        action: AUDIT_ACTIONS.recoveryCodeUsed,
        userId,
        data: { factorId: factor.id, remaining },
      })
      tx.enqueue({
        type: EVENT_TYPES.recoveryCodeUsed,
        userId,
        payload: { userId, factorId: factor.id, remaining },
      })
      return true
    })
  }

  // ---- factors ------------------------------------------------------------------------------------------

  /** The user's factors without their secrets. */
  async listFactors(tenantId: string, userId: string): Promise<FactorSummary[]> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    return this.#unit(tenantId, async (tx) => {
      const [, user] = await Promise.all([this.#requireTenant(tx), tx.getUser(userId)])
      if (!user) throw userNotFound(userId)
      return (await tx.listFactors(userId)).map(summarize)
    })
  }

  async removeFactor(tenantId: string, userId: string, factorId: string): Promise<UserRecord> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    assertId(factorId, 'factorId')
    return this.#unit(tenantId, async (tx) => {
      const user = await this.#requireUser(tx, userId)
      const factor = (await tx.listFactors(userId)).find((f) => f.id === factorId)
      if (!factor) throw new NotFoundError(`factor ${factorId} not found`, { details: { userId, factorId } })
      tx.deleteFactor({ id: factorId, userId }, { expectedVersion: factor.version })
      const next = await this.#bumpUser(tx, user)
      tx.appendAudit({ action: AUDIT_ACTIONS.factorRemoved, userId, data: { factorId, kind: factor.kind } })
      tx.enqueue({
        type: EVENT_TYPES.factorRemoved,
        userId,
        payload: { userId, factorId, kind: factor.kind },
      })
      return next
    })
  }

  // ---- internals ----------------------------------------------------------------------------------------

  /**
   * Runs one unit of work. A VERSION_CONFLICT raised by the commit (another writer moved a record this unit
   * read) re-runs the whole unit on fresh reads, a bounded number of times. A conflict the callback itself
   * raises (the caller's expectedVersion) is the caller's to handle and is not retried.
   */
  async #unit<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let ranToEnd = false
      try {
        return await this.#store.transaction(tenantId, async (tx) => {
          const result = await fn(tx)
          ranToEnd = true
          return result
        })
      } catch (error) {
        if (
          !ranToEnd ||
          attempt >= this.#maxAttempts ||
          !isUserEngineError(error, ErrorCode.VERSION_CONFLICT)
        ) {
          throw error
        }
        // Jitter spreads racing retries so they do not collide again in lockstep.
        await sleep(randomInt(0, 2 * attempt + 1))
      }
    }
  }

  async #requireTenant(tx: UnitOfWork): Promise<TenantRecord> {
    const tenant = await tx.getTenant()
    if (!tenant) throw tenantNotFound(tx.tenantId)
    return tenant
  }

  /** The user, for a change: unknown and deleted users are NOT_FOUND; `active` also refuses disabled ones. */
  async #requireUser(
    tx: UnitOfWork,
    userId: string,
    options: { active?: boolean } = {},
  ): Promise<UserRecord> {
    const [, user] = await Promise.all([this.#requireTenant(tx), tx.getUser(userId)])
    if (!user || user.status === 'deleted') throw userNotFound(userId)
    if (options.active && user.status !== 'active') {
      throw new UserEngineError(ErrorCode.USER_DISABLED, `user ${userId} is disabled`, {
        details: { userId },
      })
    }
    return user
  }

  /** The factor to verify against, or why there is none. Unknown tenant still throws NOT_FOUND. */
  async #factorForCheck(
    tx: UnitOfWork,
    userId: string,
    kind: FactorKind,
  ): Promise<{ user: UserRecord; factor: FactorRecord } | RejectReason> {
    const [tenant, user] = await Promise.all([this.#requireTenant(tx), tx.getUser(userId)])
    if (!user || user.status === 'deleted') return 'unknown_user'
    if (tenant.status !== 'active') return 'tenant_inactive'
    if (user.status !== 'active') return 'user_inactive'
    const factor = (await tx.listFactors(userId)).find((f) => f.kind === kind)
    return factor ? { user, factor } : 'no_factor'
  }

  #reject(tx: UnitOfWork, action: string, userId: string, reason: RejectReason, factorId?: string): false {
    // An unknown user id is not recorded as the audit's user: it may not name anything.
    tx.appendAudit({
      action,
      userId: reason === 'unknown_user' ? null : userId,
      data: factorId === undefined ? { reason } : { reason, factorId },
    })
    return false
  }

  /**
   * Writes the user record with its version as precondition: every commit about a user does this, and the new
   * version becomes the sequence of the events the commit emits. Returns the record as it will be stored.
   */
  async #bumpUser(tx: UnitOfWork, user: UserRecord, status: UserStatus = user.status): Promise<UserRecord> {
    tx.putUser({ id: user.id, status }, { expectedVersion: user.version })
    const written = (await tx.getUser(user.id))!
    return { ...written, createdAt: user.createdAt }
  }

  async #setStatus(tenantId: string, userId: string, status: 'active' | 'disabled'): Promise<UserRecord> {
    assertId(tenantId, 'tenantId')
    assertId(userId, 'userId')
    return this.#unit(tenantId, async (tx) => {
      const user = await this.#requireUser(tx, userId)
      if (user.status === status) return user
      const next = await this.#bumpUser(tx, user, status)
      const disabled = status === 'disabled'
      tx.appendAudit({ action: disabled ? AUDIT_ACTIONS.userDisabled : AUDIT_ACTIONS.userEnabled, userId })
      tx.enqueue({
        type: disabled ? EVENT_TYPES.userDisabled : EVENT_TYPES.userEnabled,
        userId,
        payload: { userId },
      })
      return next
    })
  }

  toJSON(): { engine: string; store: string } {
    return { engine: 'UserEngine', store: this.#store.kind }
  }
}

function passwordSecret(phc: string): Secret<{ [key: string]: JsonValue }> {
  return new Secret({ v: 1, alg: 'argon2id', phc })
}

function summarize(f: FactorRecord): FactorSummary {
  const base = { id: f.id, kind: f.kind, version: f.version, createdAt: f.createdAt, updatedAt: f.updatedAt }
  if (f.kind === 'totp') return { ...base, confirmed: f.state.confirmed === true }
  if (f.kind === 'recovery_codes') {
    const hashes = f.secret.reveal().hashes
    const total = Array.isArray(hashes) ? hashes.length : 0
    return { ...base, remaining: Math.max(0, total - usedSlots(f.state).length) }
  }
  return base
}

function tenantNotFound(tenantId: string): NotFoundError {
  return new NotFoundError(`tenant ${tenantId} not found`, { details: { tenantId } })
}

function userNotFound(userId: string): NotFoundError {
  return new NotFoundError(`user ${userId} not found`, { details: { userId } })
}

function duplicateEmail(tenantId: string): ConflictError {
  return new ConflictError(
    ErrorCode.DUPLICATE_IDENTIFIER,
    `identifier email is already taken in tenant ${tenantId}`,
    {
      details: {
        kind: 'email',
      },
    },
  )
}
