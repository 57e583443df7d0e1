import { NotFoundError } from '../domain/errors.js'
import { shownId } from '../domain/ids.js'
import type { FactorKind, FactorRecord, UserRecord } from '../domain/records.js'
import { assertId } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import { type EngineContext, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { usedSlots } from './recovery-codes.js'

/** A factor without its secret. */
export interface FactorSummary {
  readonly id: string
  readonly kind: FactorKind
  readonly version: number
  readonly createdAt: string
  readonly updatedAt: string
  /** TOTP: whether a code has been verified since enrollment. */
  readonly confirmed?: boolean
  /** Recovery codes: how many are unused. */
  readonly remaining?: number
}

export async function listFactors(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
): Promise<FactorSummary[]> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    await requireUser(tx, userId, 'listFactors')
    return (await tx.listFactors(userId)).map(summarizeFactor)
  })
}

export async function removeFactor(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  factorId: string,
): Promise<UserRecord> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  assertId(factorId, 'factorId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'removeFactor')
    const factor = (await tx.listFactors(userId)).find((f) => f.id === factorId)
    if (!factor) {
      throw new NotFoundError(`factor ${shownId(factorId)} not found`, {
        details: { userId: shownId(userId), factorId: shownId(factorId) },
      })
    }
    tx.deleteFactor({ id: factorId, userId }, { expectedVersion: factor.version })
    return recordUserChange(tx, userId, user, {
      audit: { action: AUDIT_ACTIONS.factorRemoved, data: { factorId, kind: factor.kind } },
      events: [{ type: EVENT_TYPES.factorRemoved, payload: { userId, factorId, kind: factor.kind } }],
    })
  })
}

/** A factor without its secret: what listFactors and getUserDetails return. */
export function summarizeFactor(f: FactorRecord): FactorSummary {
  const base = { id: f.id, kind: f.kind, version: f.version, createdAt: f.createdAt, updatedAt: f.updatedAt }
  if (f.kind === 'totp') return { ...base, confirmed: f.state.confirmed === true }
  if (f.kind === 'recovery_codes') {
    const hashes = f.secret.reveal().hashes
    const total = Array.isArray(hashes) ? hashes.length : 0
    return { ...base, remaining: Math.max(0, total - usedSlots(f.state).length) }
  }
  return base
}
