import { ConflictError, ErrorCode, NotFoundError, ValidationError } from '../domain/errors.js'
import { shownId } from '../domain/ids.js'
import type { ProfileRecord, ProfileValue } from '../domain/records.js'
import { assertId, assertPositiveInt, inputObject, validateProfile } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import { type EngineContext, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'

export interface UpdateProfileOptions {
  /** The profile version the caller read; a different stored version fails with VERSION_CONFLICT. */
  readonly expectedVersion?: number
  /** `merge` (default) overlays the given attributes; `replace` makes them the whole profile. */
  readonly mode?: 'merge' | 'replace'
}

export async function getProfile(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
): Promise<ProfileRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'getProfile')
    const profile = await tx.getProfile(user.id)
    if (!profile) {
      throw new NotFoundError(`profile of user ${shownId(userId)} not found`, {
        details: { userId: shownId(userId) },
      })
    }
    return profile
  })
}

export async function updateProfile(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  attributes: Readonly<Record<string, ProfileValue>>,
  options: UpdateProfileOptions,
): Promise<ProfileRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  const patch = validateProfile(attributes)
  const opts = inputObject(options, 'options', ['expectedVersion', 'mode'])
  const expectedVersion = opts.expectedVersion
  if (expectedVersion !== undefined) assertPositiveInt(expectedVersion, 'expectedVersion')
  const mode = opts.mode ?? 'merge'
  if (mode !== 'merge' && mode !== 'replace') {
    throw new ValidationError('mode must be merge or replace', { details: { field: 'mode' } })
  }
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'updateProfile')
    const profile = await tx.getProfile(userId)
    if (expectedVersion !== undefined && profile?.version !== expectedVersion) {
      throw new ConflictError(
        ErrorCode.VERSION_CONFLICT,
        `profile ${shownId(userId)} is not at the expected version`,
        {
          details: { recordType: 'profile', recordId: userId, expectedVersion },
        },
      )
    }
    // The merged profile must still respect the size limits.
    const next = validateProfile(mode === 'replace' ? patch : { ...profile?.attributes, ...patch })
    tx.putProfile(
      { userId, attributes: next },
      profile ? { expectedVersion: profile.version } : { mustNotExist: true },
    )
    await recordUserChange(tx, userId, user, {
      audit: { action: AUDIT_ACTIONS.profileUpdated, data: { attributes: Object.keys(patch).length, mode } },
      events: [{ type: EVENT_TYPES.profileUpdated, payload: { userId } }],
    })
    const written = (await tx.getProfile(userId))!
    return profile ? { ...written, createdAt: profile.createdAt } : written
  })
}
