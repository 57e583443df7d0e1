import { newId } from '../domain/ids.js'
import { LIMITS } from '../domain/limits.js'
import type { JsonValue, UserRecord } from '../domain/records.js'
import { Secret } from '../domain/secret.js'
import { assertId, assertString, normalizeIdentifier } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import { asObject, type EngineContext, requireTenant, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES, type RejectReason } from './events.js'

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
    const user = await requireUser(tx, userId)
    const existing = (await tx.listFactors(userId)).find((f) => f.kind === 'password')
    const factorId = existing?.id ?? newId('fac')
    tx.putFactor(
      { id: factorId, userId, kind: 'password', secret: passwordSecret(phc), state: {} },
      existing ? { expectedVersion: existing.version } : { mustNotExist: true },
    )
    return recordUserChange(tx, userId, user, {
      audit: { action: AUDIT_ACTIONS.passwordSet, data: { factorId } },
      events: [{ type: EVENT_TYPES.passwordSet, payload: { userId, factorId } }],
    })
  })
}

export async function verifyPassword(
  ctx: EngineContext,
  tenantId: string,
  subject: PasswordSubject,
  password: string,
): Promise<boolean> {
  assertId(tenantId, 'tenantId')
  const s = asObject(subject, 'subject')
  const email = 'email' in s ? normalizeIdentifier('email', s.email) : undefined
  const userId = email === undefined ? s.userId : undefined
  if (email === undefined) assertId(userId, 'userId')
  assertString(password, 'password', LIMITS.passwordMaxLength, 0)
  return ctx.unit(tenantId, async (tx) => {
    const tenant = await requireTenant(tx)
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
        ? await ctx.hasher.verify(phc, password)
        : await ctx.hasher.verifyDummy(password)
    if (!ok) reason ??= 'wrong_secret'
    tx.appendAudit({
      action: ok ? AUDIT_ACTIONS.passwordVerified : AUDIT_ACTIONS.passwordRejected,
      userId: user?.id ?? null,
      data: ok ? {} : { reason },
    })
    return ok
  })
}
