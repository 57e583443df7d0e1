import { newId } from '../domain/ids.js'
import type { FactorRecord, JsonValue } from '../domain/records.js'
import { Secret } from '../domain/secret.js'
import { assertId } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import type { EventDraft, UnitOfWork } from '../store/unit-of-work.js'
import { checkFactor, type EngineContext, reject, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES, type RejectReason } from './events.js'
import { matchRecoveryCode, newRecoveryCodes } from './recovery-code-hashes.js'
import { ShownOnce } from './shown-once.js'

export interface RecoveryCodeSet {
  readonly factorId: string
  /**
   * Shown to the user once; only their hashes are stored. Reading it gives the codes; the set itself prints
   * them `[redacted]` (`JSON.stringify`, `util.inspect`) and keeps them out of `Object.keys` and spreads.
   */
  readonly codes: readonly string[]
}

/** What `generateRecoveryCodes` returns: `factorId` is an own property, `codes` a getter (see `ShownOnce`). */
class CodeSet extends ShownOnce<{ codes: readonly string[] }> implements RecoveryCodeSet {
  readonly factorId: string

  constructor(factorId: string, codes: readonly string[]) {
    super({ codes })
    this.factorId = factorId
  }

  get codes(): readonly string[] {
    return this.revealed('codes')
  }
}

/** The slots of a recovery-codes factor already used. */
export function usedSlots(state: FactorRecord['state']): number[] {
  return Array.isArray(state.used) ? state.used.filter((n): n is number => typeof n === 'number') : []
}

export async function generateRecoveryCodes(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
): Promise<RecoveryCodeSet> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'generateRecoveryCodes')
    const existing = (await tx.listFactors(userId)).find((f) => f.kind === 'recovery_codes')
    const factorId = existing?.id ?? newId('fac')
    const { codes, hashes } = newRecoveryCodes(ctx.recoveryCodeCount)
    tx.putFactor(
      { id: factorId, userId, kind: 'recovery_codes', secret: new Secret(hashes), state: { used: [] } },
      existing ? { expectedVersion: existing.version } : { mustNotExist: true },
    )
    await recordUserChange(tx, userId, user, {
      audit: { action: AUDIT_ACTIONS.recoveryCodesGenerated, data: { factorId, count: codes.length } },
      events: [{ type: EVENT_TYPES.recoveryCodesGenerated, payload: { userId, factorId } }],
    })
    return new CodeSet(factorId, codes)
  })
}

/** The longest recovery code input taken. */
export const RECOVERY_CODE_MAX_LENGTH = 64

/**
 * Checks a recovery code inside a unit of work. A valid unused code buffers its slot as used (a versioned
 * write: of racing uses, one commits), appends the `recovery_code.used` audit record and returns the event for
 * the caller's one user change. A refusal writes nothing and says why.
 */
export function acceptRecoveryCode(
  tx: UnitOfWork,
  userId: string,
  factor: FactorRecord,
  code: string,
): { ok: true; event: Omit<EventDraft, 'userId'> } | { ok: false; reason: RejectReason } {
  const slot = matchRecoveryCode(factor.secret.reveal(), code)
  const used = usedSlots(factor.state)
  if (slot < 0 || used.includes(slot))
    return { ok: false, reason: slot < 0 ? 'wrong_secret' : 'already_used' }
  const nowUsed = [...used, slot].sort((a, b) => a - b)
  const hashes = factor.secret.reveal().hashes
  const total = Array.isArray(hashes) ? (hashes as JsonValue[]).length : 0
  const remaining = Math.max(0, total - nowUsed.length)
  tx.putFactor(
    {
      id: factor.id,
      userId,
      kind: 'recovery_codes',
      secret: factor.secret,
      state: { ...factor.state, used: nowUsed },
    },
    { expectedVersion: factor.version },
  )
  tx.appendAudit({ action: AUDIT_ACTIONS.recoveryCodeUsed, userId, data: { factorId: factor.id, remaining } })
  return {
    ok: true,
    event: { type: EVENT_TYPES.recoveryCodeUsed, payload: { userId, factorId: factor.id, remaining } },
  }
}

export async function consumeRecoveryCode(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  code: string,
): Promise<boolean> {
  const how = {
    kind: 'recovery_codes',
    rejected: AUDIT_ACTIONS.recoveryCodeRejected,
    maxCodeLength: RECOVERY_CODE_MAX_LENGTH,
  } as const
  return checkFactor(ctx, tenantId, userId, code, how, async (tx, user, factor) => {
    const accepted = acceptRecoveryCode(tx, userId, factor, code)
    if (!accepted.ok) return reject(tx, how.rejected, userId, accepted.reason, factor.id)
    await recordUserChange(tx, userId, user, { events: [accepted.event] })
    return true
  })
}
