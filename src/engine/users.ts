import { ValidationError } from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import type { ProfileValue, UserRecord, UserStatus } from '../domain/records.js'
import { assertId, normalizeIdentifier, validatePageSize, validateProfile } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import type { ListUsersQuery, Page } from '../store/store.js'
import {
  asObject,
  type EngineContext,
  requireTenant,
  requireUser,
  tenantNotFound,
  userNotFound,
} from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { checkNewPassword, passwordSecret } from './password.js'

export interface RegisterUserInput {
  readonly email: string
  readonly password?: string
  readonly profile?: Readonly<Record<string, ProfileValue>>
}

const USER_STATUSES: readonly UserStatus[] = ['active', 'disabled', 'deleted']

export async function registerUser(
  ctx: EngineContext,
  tenantId: string,
  input: RegisterUserInput,
): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  const fields = asObject(input, 'input')
  const email = normalizeIdentifier('email', fields.email)
  const password = fields.password === undefined ? undefined : checkNewPassword(fields.password)
  const attributes = validateProfile(fields.profile ?? {})
  // Hash before the unit of work: a retry must not pay for Argon2 twice, and no store work waits on it.
  const phc = password === undefined ? undefined : await ctx.hasher.hash(password)
  // No reads: the commit refuses an unknown tenant (NOT_FOUND) and a taken email (DUPLICATE_IDENTIFIER),
  // so registration is one round trip on the Postgres store.
  return ctx.unit(tenantId, async (tx) => {
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

export async function listUsers(
  ctx: EngineContext,
  tenantId: string,
  query: ListUsersQuery,
): Promise<Page<UserRecord>> {
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
  if (!(await ctx.store.getTenant(tenantId))) throw tenantNotFound(tenantId)
  return ctx.store.listUsers(tenantId, query)
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
    const user = await requireUser(tx, userId)
    if (user.status === status) return user
    const disabled = status === 'disabled'
    return recordUserChange(tx, userId, user, {
      status,
      audit: { action: disabled ? AUDIT_ACTIONS.userDisabled : AUDIT_ACTIONS.userEnabled },
      events: [{ type: disabled ? EVENT_TYPES.userDisabled : EVENT_TYPES.userEnabled, payload: { userId } }],
    })
  })
}

export async function deleteUser(ctx: EngineContext, tenantId: string, userId: string): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    const [, user] = await Promise.all([requireTenant(tx), tx.getUser(userId)])
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
    return recordUserChange(tx, userId, user, {
      status: 'deleted',
      audit: {
        action: AUDIT_ACTIONS.userDeleted,
        data: { identifiers: identifiers.length, factors: factors.length, profile: profile !== null },
      },
      events: [{ type: EVENT_TYPES.userDeleted, payload: { userId } }],
    })
  })
}
