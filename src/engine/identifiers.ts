import { ConflictError, ErrorCode } from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import type { IdentifierKind, UserRecord } from '../domain/records.js'
import { assertId, normalizeIdentifier } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import type { EventDraft, UnitOfWork } from '../store/unit-of-work.js'
import { type EngineContext, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { bufferRevokeSessions } from './sessions.js'
import { bufferDropTokens } from './tokens.js'

const CHANGED = {
  email: { audit: AUDIT_ACTIONS.emailChanged, event: EVENT_TYPES.emailChanged },
  username: { audit: AUDIT_ACTIONS.usernameChanged, event: EVENT_TYPES.usernameChanged },
} as const

/**
 * Sets the user's identifier of `kind` (one per kind): adds it, or replaces the value in place (same
 * identifier id; a new email starts unverified). The same value again is a no-op. A value another user holds
 * is DUPLICATE_IDENTIFIER, here and, under a race, from the store's unique index.
 */
export async function setIdentifier(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  kind: IdentifierKind,
  raw: string,
): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  const value = normalizeIdentifier(kind, raw)
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, kind === 'email' ? 'changeEmail' : 'setUsername')
    const [identifiers, holder] = await Promise.all([
      tx.listIdentifiers(userId),
      tx.findIdentifier(kind, value),
    ])
    const current = identifiers.find((i) => i.kind === kind)
    if (current?.value === value) return user
    if (holder) {
      throw new ConflictError(ErrorCode.DUPLICATE_IDENTIFIER, `this ${kind} is already taken in the tenant`, {
        details: { kind },
      })
    }
    const identifierId = current?.id ?? newId('idn')
    tx.putIdentifier(
      { id: identifierId, userId, kind, value, verified: false },
      current ? { expectedVersion: current.version } : { mustNotExist: true },
    )
    const after = kind === 'email' ? await bufferEmailChanged(ctx, tx, userId) : { events: [], revoked: 0 }
    return recordUserChange(tx, userId, user, {
      audit: {
        action: CHANGED[kind].audit,
        data: kind === 'email' ? { identifierId, sessionsRevoked: after.revoked } : { identifierId },
      },
      events: [{ type: CHANGED[kind].event, payload: { userId, identifierId } }, ...after.events],
    })
  })
}

/**
 * What changing a user's email ends besides: every token sent to the old address (verification, email change,
 * password reset; but `keepToken`, which the caller consumes) and, unless `sessions.revokeOnEmailChange` is
 * false, every session.
 */
export async function bufferEmailChanged(
  ctx: EngineContext,
  tx: UnitOfWork,
  userId: string,
  keepToken?: string,
): Promise<{ events: Omit<EventDraft, 'userId'>[]; revoked: number }> {
  const [ended] = await Promise.all([
    ctx.sessions.revokeOnEmailChange
      ? bufferRevokeSessions(ctx, tx, userId, 'email_changed')
      : { events: [], revoked: 0 },
    bufferDropTokens(
      tx,
      userId,
      [
        'email_verification',
        'email_change',
        'password_reset',
        'magic_link',
        // Half a session: it ends when the sessions do.
        ...(ctx.sessions.revokeOnEmailChange ? (['sign_in_challenge'] as const) : []),
      ],
      keepToken,
    ),
  ])
  return ended
}

/** Removes the user's username; without one, a no-op. (An email cannot be removed: it is the account's.) */
export async function removeUsername(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'removeUsername')
    const current = (await tx.listIdentifiers(userId)).find((i) => i.kind === 'username')
    if (!current) return user
    tx.deleteIdentifier({ id: current.id, userId }, { expectedVersion: current.version })
    return recordUserChange(tx, userId, user, {
      audit: { action: AUDIT_ACTIONS.usernameRemoved, data: { identifierId: current.id } },
      events: [{ type: EVENT_TYPES.usernameRemoved, payload: { userId, identifierId: current.id } }],
    })
  })
}
