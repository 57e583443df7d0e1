import { ConflictError, ErrorCode, ValidationError } from '../domain/errors.js'
import type { IdentifierKind, UserRecord } from '../domain/records.js'
import { assertId, inputObject, normalizeIdentifier } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import { throttleKey } from './attempt-throttle.js'
import { type EngineContext, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES, type RejectReason } from './events.js'
import { bufferEmailChanged } from './identifiers.js'
import { bufferPasswordChange, checkNewPassword } from './password.js'
import { bufferSignInStep, type SignInResult, secondFactorsOf, signInResult } from './sign-in.js'
import { invalidToken } from './token-codec.js'
import { boundIdentifier, bufferNewToken, type IssuedToken, identifierBinding, useToken } from './tokens.js'

/**
 * The account flows that go through a single-use token: a service issues the token, sends it (a link in an
 * email), and the user's click comes back with it. Issuing is one unit of work; using is one unit of work that
 * consumes the token together with the change it authorizes.
 */

/** Whom a token request is for: a sign-in identifier, as a form gives it. */
export type AccountIdentifier = { readonly email: string } | { readonly username: string }

function parseIdentifier(value: unknown): { kind: IdentifierKind; value: string } {
  const o = inputObject(value, 'identifier', ['email', 'username'])
  if ((o.email === undefined) === (o.username === undefined)) {
    throw new ValidationError('identifier needs exactly one of email and username', {
      details: { field: 'identifier' },
    })
  }
  const kind: IdentifierKind = o.email !== undefined ? 'email' : 'username'
  return { kind, value: normalizeIdentifier(kind, o.email ?? o.username) }
}

/** Issues an email verification token for the user's current email. */
export async function issueEmailVerification(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
): Promise<IssuedToken> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'issueEmailVerification')
    const email = (await tx.listIdentifiers(userId)).find((i) => i.kind === 'email')
    if (!email) {
      throw new ValidationError('the user has no email to verify', { details: { userId } })
    }
    const { issued, events } = await bufferNewToken(
      ctx,
      tx,
      userId,
      'email_verification',
      identifierBinding(email),
    )
    await recordUserChange(tx, userId, user, { events })
    return issued
  })
}

/** Marks the email the token was issued for as verified; INVALID_TOKEN when the email changed since. */
export async function verifyEmail(ctx: EngineContext, token: string): Promise<UserRecord> {
  return useToken(ctx, token, 'email_verification', async (use) => {
    const email = await boundIdentifier(use)
    if (!email) throw invalidToken()
    const { tx, user } = use
    const consumed = use.consume()
    if (!email.verified) tx.putIdentifier({ ...email, verified: true }, { expectedVersion: email.version })
    return recordUserChange(tx, user.id, user, {
      audit: { action: AUDIT_ACTIONS.emailVerified, data: { identifierId: email.id } },
      events: [
        consumed,
        { type: EVENT_TYPES.emailVerified, payload: { userId: user.id, identifierId: email.id } },
      ],
    })
  })
}

/**
 * A password reset token for the user an email or username names, replacing any earlier one. Null when there
 * is no such active user in an active tenant: then only a `token.refused` audit record is written (its
 * `data.reason` says why), so that a refusal costs a commit as an issue does. Answer the requester the same
 * way in both cases, and send the email from a queue so that its timing does not tell either.
 */
export async function requestPasswordReset(
  ctx: EngineContext,
  tenantId: string,
  identifier: AccountIdentifier,
): Promise<IssuedToken | null> {
  assertId(tenantId, 'tenantId')
  const { kind, value } = parseIdentifier(identifier)
  return issueForIdentifier(ctx, tenantId, kind, value, 'password_reset')
}

/** A magic sign-in link token for the user an email names (`signInWithMagicLink`); null as for a reset. */
export async function requestMagicLink(
  ctx: EngineContext,
  tenantId: string,
  identifier: { readonly email: string },
): Promise<IssuedToken | null> {
  assertId(tenantId, 'tenantId')
  const { kind, value } = parseIdentifier(identifier)
  if (kind !== 'email') {
    throw new ValidationError('a magic link goes to an email', { details: { field: 'identifier' } })
  }
  return issueForIdentifier(ctx, tenantId, kind, value, 'magic_link')
}

/** An id in the shape of a user id that no user has (ids carry a time and randomness): a read that finds nothing. */
const NO_USER = 'usr_00000000000000000000000000000000'

async function issueForIdentifier(
  ctx: EngineContext,
  tenantId: string,
  kind: IdentifierKind,
  value: string,
  purpose: 'password_reset' | 'magic_link',
): Promise<IssuedToken | null> {
  return ctx.unit(tenantId, async (tx) => {
    const [tenant, identifier] = await Promise.all([tx.getTenant(), tx.findIdentifier(kind, value)])
    if (!tenant) return null
    const user = await tx.getUser(identifier?.userId ?? NO_USER)
    // A refusal makes the reads an issue makes (the user, then their tokens) and commits an audit record, so
    // that it costs what an issued token costs: the time a request takes must not tell whether the account
    // exists. The identifier asked for is not recorded.
    const refuse = async (reason: RejectReason, userId: string | null = null) => {
      await tx.listTokens(user?.id ?? NO_USER)
      tx.appendAudit({ action: AUDIT_ACTIONS.tokenRefused, userId, data: { purpose, reason } })
      return null
    }
    if (tenant.status !== 'active') return refuse('tenant_inactive', user?.id)
    if (!identifier || !user || user.status === 'deleted') return refuse('unknown_user')
    if (user.status !== 'active') return refuse('user_inactive', user.id)
    // A magic link signs in through the user's email, so it is bound to it: a changed email voids the link.
    // (A changed email drops outstanding reset tokens too: see bufferEmailChanged.)
    const data = purpose === 'magic_link' ? identifierBinding(identifier) : {}
    const { issued, events } = await bufferNewToken(ctx, tx, user.id, purpose, data)
    await recordUserChange(tx, user.id, user, { events })
    return issued
  })
}

/**
 * Sets a new password with a reset token: in one unit of work the token is consumed, the password set, every
 * session of the user ended and every other reset token dropped. The new password is hashed only once the
 * token checked out (a stream of bad tokens costs no Argon2), and once per call even when a race retries.
 */
export async function resetPassword(
  ctx: EngineContext,
  token: string,
  password: string,
): Promise<UserRecord> {
  const checked = checkNewPassword(password)
  let phc: Promise<string> | undefined
  const { user, identifierKeys } = await useToken(ctx, token, 'password_reset', async (use) => {
    const { tx, user, record } = use
    phc ??= ctx.hasher.hash(checked)
    const [hash, identifiers] = await Promise.all([phc, tx.listIdentifiers(user.id)])
    const consumed = use.consume()
    const change = await bufferPasswordChange(ctx, tx, user.id, hash, 'password_reset', record.id)
    const changed = await recordUserChange(tx, user.id, user, {
      audit: {
        action: AUDIT_ACTIONS.passwordReset,
        data: { factorId: change.factorId, sessionsRevoked: change.revoked },
      },
      events: [consumed, ...change.events],
    })
    const keys = identifiers.map((i) => throttleKey('identifier', `${i.kind}\u0000${i.value}`))
    return { user: changed, identifierKeys: keys }
  })
  // A user who proved control of their email is no longer locked out by someone else's guesses.
  await ctx.store.throttle.clear(user.tenantId, [throttleKey('user', user.id), ...identifierKeys])
  return user
}

/**
 * An email change confirmation token: the new email, once its owner confirms it (`confirmEmailChange`),
 * replaces the current one. Replaces any earlier change request. DUPLICATE_IDENTIFIER when another user holds
 * the new email now; VALIDATION when it already is the user's.
 */
export async function requestEmailChange(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  email: string,
): Promise<IssuedToken> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  const value = normalizeIdentifier('email', email)
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'requestEmailChange')
    const holder = await tx.findIdentifier('email', value)
    if (holder?.userId === userId) {
      throw new ValidationError('the new email is already the user’s email', { details: { field: 'email' } })
    }
    if (holder) {
      throw new ConflictError(ErrorCode.DUPLICATE_IDENTIFIER, 'this email is already taken in the tenant', {
        details: { kind: 'email' },
      })
    }
    const { issued, events } = await bufferNewToken(ctx, tx, userId, 'email_change', { email: value })
    await recordUserChange(tx, userId, user, { events })
    return issued
  })
}

/**
 * Replaces the user's email with the one the token carries, verified (its owner just proved it), and, as every
 * email change does, drops tokens sent to the old address and (by default) ends every session. A value taken
 * meanwhile is DUPLICATE_IDENTIFIER and leaves the token unused.
 */
export async function confirmEmailChange(ctx: EngineContext, token: string): Promise<UserRecord> {
  return useToken(ctx, token, 'email_change', async (use) => {
    const { tx, user, record } = use
    const value = record.data.email
    const current = (await tx.listIdentifiers(user.id)).find((i) => i.kind === 'email')
    if (typeof value !== 'string' || !current) throw invalidToken()
    const consumed = use.consume()
    tx.putIdentifier({ ...current, value, verified: true }, { expectedVersion: current.version })
    const after = await bufferEmailChanged(ctx, tx, user.id, record.id)
    return recordUserChange(tx, user.id, user, {
      audit: {
        action: AUDIT_ACTIONS.emailChanged,
        data: { identifierId: current.id, confirmed: true, sessionsRevoked: after.revoked },
      },
      events: [
        consumed,
        { type: EVENT_TYPES.emailChanged, payload: { userId: user.id, identifierId: current.id } },
        ...after.events,
      ],
    })
  })
}

/**
 * Signs in with a magic link token: consumed with the sign-in, the email marked verified (the link reached
 * it). A user with a second factor gets a sign-in challenge, as after a password.
 */
export async function signInWithMagicLink(ctx: EngineContext, token: string): Promise<SignInResult> {
  const { user, factors, step } = await useToken(ctx, token, 'magic_link', async (use) => {
    const email = await boundIdentifier(use)
    if (!email) throw invalidToken()
    const { tx, user } = use
    const consumed = use.consume()
    if (!email.verified) tx.putIdentifier({ ...email, verified: true }, { expectedVersion: email.version })
    const factors = secondFactorsOf(await tx.listFactors(user.id))
    const step = await bufferSignInStep(ctx, tx, user.id, factors, ['magic_link'])
    tx.appendAudit({
      action: AUDIT_ACTIONS.signInSucceeded,
      userId: user.id,
      data: { method: 'magic_link', secondFactorRequired: factors.length > 0 },
    })
    const signedIn = await recordUserChange(tx, user.id, user, { events: [consumed, ...step.events] })
    return { user: signedIn, factors, step: step.value }
  })
  return signInResult(user, factors, step)
}
