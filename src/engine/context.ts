import { randomInt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ConflictError,
  ErrorCode,
  isUserEngineError,
  NotFoundError,
  UserEngineError,
} from '../domain/errors.js'
import { shownId } from '../domain/ids.js'
import type { FactorKind, FactorRecord, TenantRecord, UserRecord } from '../domain/records.js'
import { assertId, assertString } from '../domain/validation.js'
import { failedAtCommit } from '../store/commit-phase.js'
import type { UnitOfWork } from '../store/unit-of-work.js'
import { claimAttempt, lockedFor, OneAtATime, throttled, throttleKey } from './attempt-throttle.js'
import type { ValidEngineOptions } from './engine-options.js'
import type { RejectReason } from './events.js'
import { STATUS_RULES, type StatusRule, type UserUseCase } from './status-rules.js'
import { ENGINE_SPANS, idAttributes, inSpan } from './tracing.js'

/**
 * What every use case works with: the store, the clock, the keyring and the other checked options, and the
 * unit of work with its retry. Each feature module takes it as its first argument; UserEngine holds one.
 */
export interface EngineContext extends ValidEngineOptions {
  /**
   * Runs one unit of work. A VERSION_CONFLICT raised by the commit (another writer moved a record this unit
   * read; the store kit marks such errors, see markCommitPhase) re-runs the whole unit on fresh reads, a
   * bounded number of times. A conflict the callback itself raises (the caller's expectedVersion) is the
   * caller's to handle and is not retried.
   */
  unit<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T>
  /** Attempts at one secret (a tenant's identifier, user or challenge), one at a time: see OneAtATime. */
  readonly attempts: OneAtATime
}

/** The queue a conflict's record names (a store that gives no recordType and recordId gives none). */
function conflictLine(tenantId: string, error: unknown): string | undefined {
  const details = (error as { details?: { recordType?: unknown; recordId?: unknown } }).details
  if (typeof details?.recordType !== 'string' || typeof details.recordId !== 'string') return undefined
  return `${tenantId}\u0000record\u0000${details.recordType}\u0000${details.recordId}`
}

/** Retry n waits up to RETRY_BASE_MS x 2^n ms, at most RETRY_CAP_MS: about 0.6 s over all 8 default attempts. */
const RETRY_BASE_MS = 2
const RETRY_CAP_MS = 160

export function createEngineContext(options: ValidEngineOptions): EngineContext {
  const { store, maxAttempts, tracer } = options
  const attempts = new OneAtATime()
  return Object.freeze({
    ...options,
    attempts,
    async unit<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
      /** After a conflict: the record it named, whose retries in this process then run one at a time. */
      let line: string | undefined
      for (let attempt = 1; ; attempt++) {
        try {
          const run = () =>
            inSpan(
              tracer,
              ENGINE_SPANS.unitOfWork,
              { ...idAttributes([tenantId]), [ENGINE_SPANS.attempt]: attempt },
              () => store.transaction(tenantId, fn),
            )
          return await (line === undefined ? run() : attempts.run(line, run))
        } catch (error) {
          if (failedAtCommit(error) && isUserEngineError(error, ErrorCode.DUPLICATE_IDENTIFIER)) {
            throw identifierTaken(error)
          }
          if (
            !failedAtCommit(error) ||
            attempt >= maxAttempts ||
            !isUserEngineError(error, ErrorCode.VERSION_CONFLICT)
          ) {
            throw error
          }
          // Units that collided on one record retry one at a time in this process (each then reads what the
          // one before committed), so 16 parallel merges of one profile all land instead of colliding anew.
          line ??= conflictLine(tenantId, error)
          // Exponential backoff with full jitter: racing retries spread further apart each round, so many
          // writers of one user (parallel sign-ins, profile merges) get through instead of colliding again.
          await sleep(randomInt(0, Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** attempt) + 1))
        }
      }
    },
  })
}

/**
 * A taken identifier as the engine reports it wherever the store found it (its unique index under a race, or
 * a registration's one-statement commit): the kind only. The store's message names the record id of the
 * unit's own rolled-back draft, which means nothing to a caller and reads like another account's id.
 */
function identifierTaken(error: UserEngineError): ConflictError {
  const kind = (error.details as { kind?: unknown } | undefined)?.kind
  const known = kind === 'email' || kind === 'username'
  return new ConflictError(
    ErrorCode.DUPLICATE_IDENTIFIER,
    `this ${known ? kind : 'identifier'} is already taken in the tenant`,
    { details: known ? { kind } : {} },
  )
}

export async function requireTenant(tx: UnitOfWork): Promise<TenantRecord> {
  const tenant = await tx.getTenant()
  if (!tenant) throw tenantNotFound(tx.tenantId)
  return tenant
}

/**
 * The user a use case works on, with the tenant and user status checked against STATUS_RULES: an unknown
 * tenant or user is NOT_FOUND; a status the rule refuses raises its code (tenant first, then the user). A
 * rule's `no-op` is the caller's to honour (it returns the record unchanged).
 */
export async function requireUser(tx: UnitOfWork, userId: string, useCase: UserUseCase): Promise<UserRecord> {
  const [tenant, user] = await Promise.all([requireTenant(tx), tx.getUser(userId)])
  if (!user) throw userNotFound(userId)
  const rule: StatusRule = STATUS_RULES[useCase]
  const refusal =
    tenant.status !== 'active'
      ? rule.suspendedTenant
      : user.status === 'deleted'
        ? rule.deletedUser
        : user.status === 'disabled'
          ? rule.disabledUser
          : 'allowed'
  if (refusal === ErrorCode.TENANT_SUSPENDED) throw tenantSuspended(tenant.id)
  if (refusal === ErrorCode.USER_DELETED || refusal === ErrorCode.USER_DISABLED) {
    const state = refusal === ErrorCode.USER_DELETED ? 'deleted' : 'disabled'
    throw new UserEngineError(refusal, `user ${shownId(userId)} is ${state}`, {
      details: { userId: shownId(userId) },
    })
  }
  return user
}

/** How a factor check reads: which factor, its refusal audit action, and the longest code it accepts. */
export interface FactorCheck {
  readonly kind: FactorKind
  readonly rejected: string
  readonly maxCodeLength: number
}

/**
 * The frame of verifyTotp and consumeRecoveryCode: validates the ids and the code, then in one unit of work
 * finds the user's factor of that kind. When there is none to check (unknown, deleted or disabled user,
 * inactive tenant, no factor) the refusal is audited and the answer is false; an unknown tenant still throws
 * NOT_FOUND. Otherwise `check` decides, and writes what a success changes. A code is a guess like a
 * password: checks of one user run one at a time, read the user's throttle key first (THROTTLED when
 * locked, as for `verifyPassword`), count a wrong code on it and clear it on success.
 */
export async function checkFactor(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  code: string,
  how: FactorCheck,
  check: (tx: UnitOfWork, user: UserRecord, factor: FactorRecord) => Promise<boolean>,
): Promise<boolean> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  assertString(code, 'code', how.maxCodeLength)
  const key = throttleKey('user', userId)
  return ctx.attempts.run(`${tenantId}\u0000${key}`, async () => {
    // Only a check that ran counts: a refusal without a factor (an unknown user id) writes no throttle row.
    let checked = false
    // Whether the attempt was claimed (counted) up front; once, whatever retries the unit makes.
    let claimed: boolean | undefined
    const ok = await ctx.unit(tenantId, async (tx) => {
      const found = await factorForCheck(tx, userId, how.kind)
      if (typeof found === 'string') return reject(tx, how.rejected, userId, found)
      const states = await ctx.store.throttle.read(tenantId, [key])
      const retryAfterMs = lockedFor(states, ctx.clock())
      if (retryAfterMs > 0) throw throttled(retryAfterMs)
      claimed ??=
        (await claimAttempt(ctx.store.throttle, tenantId, [key], states, ctx.throttle, ctx.clock())).length >
        0
      checked = true
      return check(tx, found.user, found.factor)
    })
    // After the commit, outside the retried unit, as for passwords.
    if (ok) await ctx.store.throttle.clear(tenantId, [key])
    else if (checked && !claimed)
      await ctx.store.throttle.recordFailure(tenantId, [key], ctx.throttle, new Date(ctx.clock()))
    return ok
  })
}

/** The factor to verify against, or why there is none. Unknown tenant still throws NOT_FOUND. */
async function factorForCheck(
  tx: UnitOfWork,
  userId: string,
  kind: FactorKind,
): Promise<{ user: UserRecord; factor: FactorRecord } | RejectReason> {
  const [tenant, user] = await Promise.all([requireTenant(tx), tx.getUser(userId)])
  if (!user || user.status === 'deleted') return 'unknown_user'
  if (tenant.status !== 'active') return 'tenant_inactive'
  if (user.status !== 'active') return 'user_inactive'
  const factor = (await tx.listFactors(userId)).find((f) => f.kind === kind)
  return factor ? { user, factor } : 'no_factor'
}

/** Records a refused check in the audit trail (no write, so no user bump) and answers false. */
export function reject(
  tx: UnitOfWork,
  action: string,
  userId: string,
  reason: RejectReason,
  factorId?: string,
): false {
  // An unknown user id is not recorded as the audit's user: it may not name anything.
  tx.appendAudit({
    action,
    userId: reason === 'unknown_user' ? null : userId,
    data: factorId === undefined ? { reason } : { reason, factorId },
  })
  return false
}

export function tenantNotFound(tenantId: string): NotFoundError {
  return new NotFoundError(`tenant ${shownId(tenantId)} not found`, {
    details: { tenantId: shownId(tenantId) },
  })
}

export function tenantSuspended(tenantId: string): UserEngineError {
  return new UserEngineError(ErrorCode.TENANT_SUSPENDED, `tenant ${shownId(tenantId)} is suspended`, {
    details: { tenantId: shownId(tenantId) },
  })
}

export function userNotFound(userId: string): NotFoundError {
  return new NotFoundError(`user ${shownId(userId)} not found`, { details: { userId: shownId(userId) } })
}
