import { NotFoundError } from '../domain/errors.js'
import { shownId } from '../domain/ids.js'
import type { UserRecord, UserStatus } from '../domain/records.js'
import type { UserEngineStore } from './store.js'
import type { AuditDraft, EventDraft, UnitOfWork } from './unit-of-work.js'

/** What a commit records about the user it changes, besides its own writes. */
export interface UserChange {
  /** The status the user is written with. Default: the status read (`active` for a new user). */
  readonly status?: UserStatus
  /** One audit record about the change; its `userId` is the user's. */
  readonly audit?: Omit<AuditDraft, 'userId'>
  /** Events about the user, in enqueue order; each one's `userId` is the user's. */
  readonly events?: readonly Omit<EventDraft, 'userId'>[]
}

/**
 * The "change a user" step, inside a unit of work: writes the user record with the version it was read at as
 * its precondition (`before` null: the user is new and must not exist), so the commit bumps the user's version
 * and that version becomes the sequence of the events (rule 5); then appends the audit record and enqueues the
 * events, all naming the user. The change's other writes may come before or after it.
 *
 * Returns the user as the commit will store it (with the `createdAt` read, which a buffered row does not know).
 */
export async function recordUserChange(
  tx: UnitOfWork,
  userId: string,
  before: UserRecord | null,
  change: UserChange = {},
): Promise<UserRecord> {
  const status = change.status ?? before?.status ?? 'active'
  tx.putUser({ id: userId, status }, before ? { expectedVersion: before.version } : { mustNotExist: true })
  if (change.audit) tx.appendAudit({ ...change.audit, userId })
  for (const event of change.events ?? []) tx.enqueue({ ...event, userId })
  const written = (await tx.getUser(userId))!
  return before ? { ...written, createdAt: before.createdAt } : written
}

export interface CommitUserChangeOptions<T> extends UserChange {
  /** Buffers the change's own writes, after the user was read. Its result is commitUserChange's. */
  readonly write?: (tx: UnitOfWork, user: UserRecord) => T | Promise<T>
  /** The error for a user that does not exist in the tenant. Default: NOT_FOUND. */
  readonly notFound?: (userId: string) => Error
}

/**
 * One whole commit that changes an existing user: reads the user inside the unit (so the precondition is the
 * version this unit saw), lets `write` buffer its writes, then recordUserChange.
 */
export async function commitUserChange<T = void>(
  store: Pick<UserEngineStore, 'transaction'>,
  tenantId: string,
  userId: string,
  options: CommitUserChangeOptions<T> = {},
): Promise<T> {
  const { write, notFound, ...change } = options
  return store.transaction(tenantId, async (tx) => {
    const user = await tx.getUser(userId)
    if (!user) {
      throw (
        notFound?.(userId) ??
        new NotFoundError(`user ${shownId(userId)} not found`, { details: { userId: shownId(userId) } })
      )
    }
    const result = (await write?.(tx, user)) as T
    await recordUserChange(tx, userId, user, change)
    return result
  })
}
