import { ValidationError } from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import { LIMITS } from '../domain/limits.js'
import type { JsonValue, UserRecord } from '../domain/records.js'
import { Secret } from '../domain/secret.js'
import { assertId, assertString, inputObject, normalizeIdentifier } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import type { EventDraft, UnitOfWork } from '../store/unit-of-work.js'
import { type EngineContext, requireUser, tenantNotFound } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { bufferRevokeSessions } from './sessions.js'
import { type CheckSubject, checkPassword } from './sign-in.js'
import { bufferDropTokens } from './tokens.js'

/** Whom a password check is for: a login form has an email, a re-authentication has the user id. */
export type PasswordSubject = { readonly email: string } | { readonly userId: string }

export function checkNewPassword(password: unknown): string {
  assertString(password, 'password', LIMITS.passwordMaxLength, LIMITS.passwordMinLength)
  return password
}

/** What a password factor's `secret` holds. */
export function passwordSecret(phc: string): Secret<{ [key: string]: JsonValue }> {
  return new Secret({ v: 1, alg: 'argon2id', phc })
}

export async function setPassword(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  password: string,
): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  const phc = await ctx.hasher.hash(checkNewPassword(password))
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'setPassword')
    const { factorId, events, revoked } = await bufferPasswordChange(ctx, tx, userId, phc, 'password_set')
    return recordUserChange(tx, userId, user, {
      audit: { action: AUDIT_ACTIONS.passwordSet, data: { factorId, sessionsRevoked: revoked } },
      events,
    })
  })
}

/**
 * Buffers a new password hash for the user, the end of every session of theirs and of their outstanding reset
 * tokens (but `keepToken`, which the caller consumes). Returns the factor id and the events, password first.
 */
export async function bufferPasswordChange(
  ctx: EngineContext,
  tx: UnitOfWork,
  userId: string,
  phc: string,
  reason: 'password_set' | 'password_reset',
  keepToken?: string,
): Promise<{ factorId: string; events: Omit<EventDraft, 'userId'>[]; revoked: number }> {
  const existing = (await tx.listFactors(userId)).find((f) => f.kind === 'password')
  const factorId = existing?.id ?? newId('fac')
  tx.putFactor(
    { id: factorId, userId, kind: 'password', secret: passwordSecret(phc), state: {} },
    existing ? { expectedVersion: existing.version } : { mustNotExist: true },
  )
  const [ended] = await Promise.all([
    bufferRevokeSessions(ctx, tx, userId, reason),
    // A pending sign-in challenge is half a session, won with the old password: it ends with the sessions.
    bufferDropTokens(tx, userId, ['password_reset', 'sign_in_challenge'], keepToken),
  ])
  return {
    factorId,
    events: [{ type: EVENT_TYPES.passwordSet, payload: { userId, factorId } }, ...ended.events],
    revoked: ended.revoked,
  }
}

/**
 * Re-authentication: the same check as `authenticate` (throttled, equal cost, rehash on success, reason in
 * the audit trail), answered as a boolean. A locked subject is THROTTLED.
 */
export async function verifyPassword(
  ctx: EngineContext,
  tenantId: string,
  subject: PasswordSubject,
  password: string,
): Promise<boolean> {
  assertId(tenantId, 'tenantId')
  const s = inputObject(subject, 'subject', ['email', 'userId'])
  // Exactly one: a subject built as { userId: session.userId, ...body } must not check the body's email.
  if ((s.email === undefined) === (s.userId === undefined)) {
    throw new ValidationError('subject needs exactly one of email and userId', {
      details: { field: 'subject' },
    })
  }
  const checked: CheckSubject =
    s.email !== undefined
      ? { kind: 'email', value: normalizeIdentifier('email', s.email) }
      : { userId: s.userId as string }
  if ('userId' in checked) assertId(checked.userId, 'userId')
  assertString(password, 'password', LIMITS.passwordMaxLength, 0)
  const outcome = await checkPassword(ctx, tenantId, checked, password, undefined, {
    succeeded: AUDIT_ACTIONS.passwordVerified,
    failed: AUDIT_ACTIONS.passwordRejected,
  })
  // Re-authentication names a tenant the service already works in: an unknown one is a caller error.
  if (!outcome.ok && outcome.reason === 'unknown_tenant') throw tenantNotFound(tenantId)
  return outcome.ok
}
