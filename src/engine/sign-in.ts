import { ErrorCode, UserEngineError } from '../domain/errors.js'
import { LIMITS } from '../domain/limits.js'
import type { FactorKind, FactorRecord, IdentifierKind, SignInMethod, UserRecord } from '../domain/records.js'
import { assertId, assertString, inputObject, normalizeIdentifier } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import type { EventDraft, UnitOfWork } from '../store/unit-of-work.js'
import { claimAttempt, isCallerKey, lockedFor, throttled, throttleKey } from './attempt-throttle.js'
import type { EngineContext } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES, type RejectReason } from './events.js'
import { passwordSecret } from './password.js'
import { bufferNewSession, type NewSession } from './sessions.js'
import { bufferNewToken, type IssuedToken } from './tokens.js'

/** A sign-in form: one identifier (email or username) and the password; optionally a caller key (IP, device). */
export type SignInCredentials = ({ readonly email: string } | { readonly username: string }) & {
  readonly password: string
  /** Throttled like the identifier: failures from one caller lock that caller out across identifiers. */
  readonly throttleKey?: string
}

/** The second factors that can complete a sign-in. */
export type SecondFactorKind = Extract<FactorKind, 'totp' | 'recovery_codes'>

export type SignInResult =
  | {
      readonly status: 'signed_in'
      readonly user: UserRecord
      /** The new session; `session.token.reveal()` is what the client keeps (a cookie). */
      readonly session: NewSession
    }
  | {
      readonly status: 'second_factor_required'
      readonly user: UserRecord
      /** The second factors the user has: finish with `completeSignIn(challenge, { totp } | { recoveryCode })`. */
      readonly factors: readonly SecondFactorKind[]
      /** The sign-in challenge: a single-use token that carries the sign-in from this step to the next. */
      readonly challenge: IssuedToken
    }

/** What a sign-in step leaves in its unit of work: a session, or a challenge for the second factor. */
export type SignInStep =
  | { readonly session: NewSession; readonly challenge?: undefined }
  | { readonly session?: undefined; readonly challenge: IssuedToken }

/**
 * Buffers the end of a successful first sign-in step in `tx`: a session when the user has no second factor,
 * else a sign-in challenge token remembering how far they got. The caller writes the user once (rule 5).
 */
export async function bufferSignInStep(
  ctx: EngineContext,
  tx: UnitOfWork,
  userId: string,
  factors: readonly SecondFactorKind[],
  methods: readonly SignInMethod[],
): Promise<{ value: SignInStep; events: Omit<EventDraft, 'userId'>[] }> {
  if (factors.length === 0) {
    const { session, events } = await bufferNewSession(ctx, tx, userId, methods)
    return { value: { session }, events }
  }
  const { issued, events } = await bufferNewToken(ctx, tx, userId, 'sign_in_challenge', {
    methods: [...methods],
    factors: [...factors],
  })
  return { value: { challenge: issued }, events }
}

/** The result a sign-in step returns for the user it signed in. */
export function signInResult(
  user: UserRecord,
  factors: readonly SecondFactorKind[],
  step: SignInStep,
): SignInResult {
  return step.challenge
    ? { status: 'second_factor_required', user, factors, challenge: step.challenge }
    : { status: 'signed_in', user, session: step.session }
}

/** Whose password is checked: a sign-in form names an identifier, a re-authentication the user id. */
export type CheckSubject =
  | { readonly kind: IdentifierKind; readonly value: string }
  | { readonly userId: string }

type CheckOutcome<T = undefined> =
  | {
      readonly ok: true
      readonly user: UserRecord
      readonly factors: readonly SecondFactorKind[]
      /** Keys with failures to forget (the caller key keeps its count: it spans users). */
      readonly clear: readonly string[]
      /** What `onSuccess` returned. */
      readonly extra: T
    }
  | { readonly ok: false; readonly reason: RejectReason | 'unknown_tenant'; readonly keys: readonly string[] }

/** Writes a successful check adds to its own unit of work (a session, a challenge), with their events. */
export type OnCheckSuccess<T> = (
  tx: UnitOfWork,
  user: UserRecord,
  factors: readonly SecondFactorKind[],
) => Promise<{ readonly value: T; readonly events: readonly Omit<EventDraft, 'userId'>[] }>

const SECOND_FACTORS: readonly SecondFactorKind[] = ['totp', 'recovery_codes']

export function parseCredentials(credentials: unknown): {
  subject: CheckSubject
  password: string
  callerKey: string | undefined
} {
  const c = inputObject(credentials, 'credentials', ['email', 'username', 'password', 'throttleKey'])
  const hasEmail = c.email !== undefined
  if (hasEmail === (c.username !== undefined)) {
    throw new UserEngineError(ErrorCode.VALIDATION, 'credentials need exactly one of email and username', {
      details: { field: 'credentials' },
    })
  }
  const kind: IdentifierKind = hasEmail ? 'email' : 'username'
  const value = normalizeIdentifier(kind, hasEmail ? c.email : c.username)
  assertString(c.password, 'password', LIMITS.passwordMaxLength, 0)
  if (c.throttleKey !== undefined) assertString(c.throttleKey, 'throttleKey', 256)
  return { subject: { kind, value }, password: c.password, callerKey: c.throttleKey as string | undefined }
}

/**
 * The password check behind `authenticate` and `verifyPassword`. Every refusal costs the same: the throttle
 * is read before any hashing (a locked key costs no Argon2 work and answers THROTTLED), and a check that
 * has nothing to verify against runs a dummy verification. Failures are counted on the identifier, the user
 * and the caller key; a success clears the identifier and user counts and rehashes an outdated hash in the
 * same unit of work as its audit record. Attempts at one identifier (or user id) run one at a time
 * (OneAtATime), so parallel guesses each read the count the one before left. Argon2 runs once per call: a
 * retried unit reuses its answer.
 */
export async function checkPassword<T = undefined>(
  ctx: EngineContext,
  tenantId: string,
  subject: CheckSubject,
  password: string,
  callerKey: string | undefined,
  audit: { readonly succeeded: string; readonly failed: string },
  onSuccess?: OnCheckSuccess<T>,
): Promise<CheckOutcome<T>> {
  assertId(tenantId, 'tenantId')
  const key =
    'kind' in subject
      ? throttleKey('identifier', `${subject.kind}\u0000${subject.value}`)
      : throttleKey('user', subject.userId)
  return ctx.attempts.run(`${tenantId}\u0000${key}`, async () => {
    const { store } = ctx
    const verified = new Map<string, Promise<boolean>>()
    const verify = (phc: string) => {
      let answer = verified.get(phc)
      if (answer === undefined) {
        answer = ctx.hasher.verify(phc, password)
        verified.set(phc, answer)
      }
      return answer
    }
    let rehash: Promise<string> | undefined
    // Claimed once, by the first run of the unit: a retried unit must not count the attempt twice.
    let claimed: string[] | undefined
    const outcome = await ctx.unit(tenantId, async (tx): Promise<CheckOutcome<T>> => {
      const [tenant, user] = await Promise.all([tx.getTenant(), findSubject(tx, subject)])
      const byIdentifier = 'kind' in subject
      const userKey = user ? throttleKey('user', user.id) : undefined
      const keys = [
        byIdentifier ? throttleKey('identifier', `${subject.kind}\u0000${subject.value}`) : undefined,
        userKey,
        callerKey === undefined ? undefined : throttleKey('caller', callerKey),
      ].filter((k): k is string => k !== undefined)
      const [factors, states] = await Promise.all([
        user ? tx.listFactors(user.id) : Promise.resolve([]),
        tenant ? store.throttle.read(tenantId, keys) : Promise.resolve([]),
      ])
      // A lock on what the caller named (or on its caller key) answers THROTTLED, as for an unknown
      // identifier. A lock the user got through another identifier answers as a wrong password does, after
      // the same work: THROTTLED would tell that this identifier belongs to that locked user.
      const carried = (st: { key: string }) => byIdentifier && st.key === userKey
      const retryAfterMs = lockedFor(
        states.filter((st) => !carried(st)),
        ctx.clock(),
      )
      if (retryAfterMs > 0) throw throttled(retryAfterMs)
      const userLocked = lockedFor(states.filter(carried), ctx.clock()) > 0
      const password_ = factors.find((f) => f.kind === 'password')
      let reason: RejectReason | 'unknown_tenant' | null = null
      if (!tenant) reason = 'unknown_tenant'
      else if (!user || user.status === 'deleted') reason = 'unknown_user'
      else if (tenant.status !== 'active') reason = 'tenant_inactive'
      else if (user.status !== 'active') reason = 'user_inactive'
      else if (userLocked) reason = 'user_locked'
      else if (!password_) reason = 'no_factor'
      const phc = password_?.secret.reveal().phc
      const real = reason === null && typeof phc === 'string'
      if (real)
        claimed ??= await claimAttempt(store.throttle, tenantId, keys, states, ctx.throttle, ctx.clock())
      const ok = real ? await verify(phc) : await ctx.hasher.verifyDummy(password)
      if (!ok || !user || !password_ || reason !== null) {
        const why = reason ?? 'wrong_secret'
        // An unknown tenant has nowhere to hold an audit record or a count.
        if (why !== 'unknown_tenant') {
          tx.appendAudit({ action: audit.failed, userId: user?.id ?? null, data: { reason: why } })
        }
        // A locked user's count is not pushed further by attempts through another identifier.
        const counted =
          why === 'unknown_tenant' ? [] : why === 'user_locked' ? keys.filter((k) => k !== userKey) : keys
        return { ok: false, reason: why, keys: counted }
      }
      const rehashed = typeof phc === 'string' && ctx.hasher.needsRehash(phc)
      const events: Omit<EventDraft, 'userId'>[] = []
      if (rehashed) {
        rehash ??= ctx.hasher.hash(password)
        const fresh = await rehash
        tx.putFactor({ ...password_, secret: passwordSecret(fresh) }, { expectedVersion: password_.version })
        events.push({
          type: EVENT_TYPES.passwordRehashed,
          payload: { userId: user.id, factorId: password_.id },
        })
      }
      const second = secondFactorsOf(factors)
      tx.appendAudit({
        action: audit.succeeded,
        userId: user.id,
        data: { secondFactorRequired: second.length > 0, rehashed },
      })
      const added = onSuccess ? await onSuccess(tx, user, second) : undefined
      if (added) events.push(...added.events)
      // One user change for all of it: the rehash, and whatever onSuccess wrote (rule 5).
      const signedIn = events.length > 0 ? await recordUserChange(tx, user.id, user, { events }) : user
      const clear = states.map((st) => st.key).filter((k) => !isCallerKey(k))
      return { ok: true, user: signedIn, factors: second, clear, extra: added?.value as T }
    })
    // Throttle writes follow the audit commit, outside the retried unit: a retry cannot count a failure twice.
    if (!outcome.ok && outcome.keys.length > 0) {
      const now = new Date(ctx.clock())
      const caller = outcome.keys.filter(isCallerKey)
      const own = outcome.keys.filter((k) => !isCallerKey(k) && !claimed?.includes(k))
      await Promise.all([
        own.length > 0 ? store.throttle.recordFailure(tenantId, own, ctx.throttle, now) : undefined,
        caller.length > 0
          ? store.throttle.recordFailure(tenantId, caller, ctx.callerThrottle, now)
          : undefined,
      ])
    }
    if (outcome.ok && outcome.clear.length > 0) await store.throttle.clear(tenantId, outcome.clear)
    return outcome
  })
}

/** The second factors a user has. An unconfirmed TOTP enrollment is not one yet: it could lock its user out. */
export function secondFactorsOf(factors: readonly FactorRecord[]): SecondFactorKind[] {
  return SECOND_FACTORS.filter((kind) =>
    factors.some((f) => f.kind === kind && (kind !== 'totp' || f.state.confirmed === true)),
  )
}

async function findSubject(tx: UnitOfWork, subject: CheckSubject): Promise<UserRecord | null> {
  if ('userId' in subject) return tx.getUser(subject.userId)
  const identifier = await tx.findIdentifier(subject.kind, subject.value)
  return identifier ? tx.getUser(identifier.userId) : null
}

/**
 * Signs a user in with an identifier and a password. Unknown identifier, wrong password, no password,
 * disabled or deleted user, suspended or unknown tenant: all INVALID_CREDENTIALS, at the cost of one Argon2
 * verification; the true reason is only in the audit trail. A locked identifier, user or caller key is
 * THROTTLED (`details.retryAfterMs`) before any hashing. A success creates a session, or, for a user with a
 * second factor, a sign-in challenge, in the same unit of work as the check.
 */
export async function authenticate(
  ctx: EngineContext,
  tenantId: string,
  credentials: SignInCredentials,
): Promise<SignInResult> {
  assertId(tenantId, 'tenantId')
  const { subject, password, callerKey } = parseCredentials(credentials)
  const outcome = await checkPassword(
    ctx,
    tenantId,
    subject,
    password,
    callerKey,
    { succeeded: AUDIT_ACTIONS.signInSucceeded, failed: AUDIT_ACTIONS.signInFailed },
    // The session (or challenge) commits with the check: a password changed meanwhile conflicts, and the
    // retry then finds the new password does not match.
    (tx, user, factors) => bufferSignInStep(ctx, tx, user.id, factors, ['password']),
  )
  if (!outcome.ok) throw invalidCredentials()
  return signInResult(outcome.user, outcome.factors, outcome.extra)
}

/** One message per step, never the reason: the identifier-and-password step, or the second factor's. */
export function invalidCredentials(step: 'password' | 'second-factor' = 'password'): UserEngineError {
  return new UserEngineError(
    ErrorCode.INVALID_CREDENTIALS,
    step === 'password' ? 'the identifier or password is not valid' : 'the second-factor code is not valid',
  )
}
