import { newId } from '../domain/ids.js'
import type { ProfileValue, UserRecord } from '../domain/records.js'
import { assertId, inputObject, normalizeIdentifier, validateProfile } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import { type EngineContext, requireUser, tenantNotFound, tenantSuspended, userNotFound } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { checkNewPassword, passwordSecret } from './password.js'
import { bufferRevokeSessions } from './sessions.js'
import { bufferDropTokens } from './tokens.js'

export interface RegisterUserInput {
  readonly email: string
  readonly password?: string
  readonly profile?: Readonly<Record<string, ProfileValue>>
}

export async function registerUser(
  ctx: EngineContext,
  tenantId: string,
  input: RegisterUserInput,
): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  const fields = inputObject(input, 'input', ['email', 'password', 'profile'])
  const email = normalizeIdentifier('email', fields.email)
  const password = fields.password === undefined ? undefined : checkNewPassword(fields.password)
  const attributes = validateProfile(fields.profile ?? {})
  // Hashed once for every attempt of the unit (a retry must not pay for Argon2 twice), while the unit starts.
  const hashing = password === undefined ? undefined : ctx.hasher.hash(password)
  // Awaited in the unit; this keeps a unit that throws before then from leaving a rejection unhandled.
  hashing?.catch(() => undefined)
  // The commit refuses an unknown tenant (NOT_FOUND) and a taken email (DUPLICATE_IDENTIFIER), and on a
  // store that can, a suspended tenant: then registration is one statement on the Postgres store, no read.
  return ctx.unit(tenantId, async (tx) => {
    if (tx.refuseSuspendedTenant?.() !== true) {
      const tenant = await tx.getTenant()
      if (tenant?.status === 'suspended') throw tenantSuspended(tenantId)
    }
    const phc = await hashing
    const userId = newId('usr')
    const user = await recordUserChange(tx, userId, null, {
      audit: { action: AUDIT_ACTIONS.userRegistered, data: { hasPassword: phc !== undefined } },
      events: [{ type: EVENT_TYPES.userRegistered, payload: { userId } }],
    })
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
    return user
  })
}

export async function getUser(ctx: EngineContext, tenantId: string, userId: string): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  // The hit path is one read: a user exists only inside an existing tenant. Only a miss asks which is missing.
  const user = await ctx.store.getUser(tenantId, userId)
  if (user) return user
  if (!(await ctx.store.getTenant(tenantId))) throw tenantNotFound(tenantId)
  throw userNotFound(userId)
}

export async function findUserByEmail(
  ctx: EngineContext,
  tenantId: string,
  email: string,
): Promise<UserRecord | null> {
  assertId(tenantId, 'tenantId')
  const value = normalizeIdentifier('email', email)
  const user = await ctx.store.findUserByIdentifier(tenantId, 'email', value)
  if (user) return user
  if (!(await ctx.store.getTenant(tenantId))) throw tenantNotFound(tenantId)
  return null
}

/** disableUser and enableUser: the same status again is a no-op. */
export async function setStatus(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  status: 'active' | 'disabled',
): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, status === 'disabled' ? 'disableUser' : 'enableUser')
    if (user.status === status) return user
    const disabled = status === 'disabled'
    // A disabled account is frozen: its sessions end and its tokens stop working, in the same commit.
    const [ended, tokens] = disabled
      ? await Promise.all([
          bufferRevokeSessions(ctx, tx, userId, 'user_disabled'),
          bufferDropTokens(tx, userId),
        ])
      : [{ events: [], revoked: 0 }, 0]
    return recordUserChange(tx, userId, user, {
      status,
      audit: disabled
        ? {
            action: AUDIT_ACTIONS.userDisabled,
            data: { sessionsRevoked: ended.revoked, tokensDropped: tokens },
          }
        : { action: AUDIT_ACTIONS.userEnabled },
      events: [
        { type: disabled ? EVENT_TYPES.userDisabled : EVENT_TYPES.userEnabled, payload: { userId } },
        ...ended.events,
      ],
    })
  })
}

export async function deleteUser(ctx: EngineContext, tenantId: string, userId: string): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'deleteUser')
    if (user.status === 'deleted') return user
    const [identifiers, factors, profile, ended, tokens] = await Promise.all([
      tx.listIdentifiers(userId),
      tx.listFactors(userId),
      tx.getProfile(userId),
      bufferRevokeSessions(ctx, tx, userId, 'user_deleted'),
      bufferDropTokens(tx, userId),
    ])
    for (const i of identifiers) tx.deleteIdentifier({ id: i.id, userId }, { expectedVersion: i.version })
    for (const f of factors) tx.deleteFactor({ id: f.id, userId }, { expectedVersion: f.version })
    if (profile) tx.deleteProfile(userId, { expectedVersion: profile.version })
    return recordUserChange(tx, userId, user, {
      status: 'deleted',
      audit: {
        action: AUDIT_ACTIONS.userDeleted,
        data: {
          identifiers: identifiers.length,
          factors: factors.length,
          profile: profile !== null,
          sessions: ended.revoked,
          tokens,
        },
      },
      events: [{ type: EVENT_TYPES.userDeleted, payload: { userId } }, ...ended.events],
    })
  })
}
