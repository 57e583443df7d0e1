import { ConflictError, ErrorCode } from '../domain/errors.js'
import { newId, shownId } from '../domain/ids.js'
import type { FactorRecord } from '../domain/records.js'
import { Secret } from '../domain/secret.js'
import { assertId, assertString, inputObject } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import type { EventDraft, UnitOfWork } from '../store/unit-of-work.js'
import { checkFactor, type EngineContext, reject, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES, type RejectReason } from './events.js'
import { openSeed, sealSeed } from './seed-cipher.js'
import { ShownOnce } from './shown-once.js'

export interface TotpEnrollment {
  readonly factorId: string
  /**
   * otpauth:// URI with the seed: show it (as a QR code) once, never store or log it. Reading it gives the
   * string; the enrollment object itself prints it `[redacted]` (`JSON.stringify`, `util.inspect`) and keeps it
   * out of `Object.keys` and spreads.
   */
  readonly uri: string
}

/** What `enrollTotp` returns: `factorId` is an own property, `uri` a getter (see `ShownOnce`). */
class Enrollment extends ShownOnce<{ uri: string }> implements TotpEnrollment {
  readonly factorId: string

  constructor(factorId: string, uri: string) {
    super({ uri })
    this.factorId = factorId
  }

  get uri(): string {
    return this.revealed('uri')
  }
}

/** Bound the AES-GCM associated data to the record the seed belongs to. */
export const seedContext = (tenantId: string, userId: string, factorId: string) =>
  `user-engine/totp/v1/${tenantId}/${userId}/${factorId}`

/** The longest TOTP code input taken. */
export const TOTP_MAX_CODE_LENGTH = 32

export async function enrollTotp(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  options: { label?: string },
): Promise<TotpEnrollment> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  const label = inputObject(options, 'options', ['label']).label
  if (label !== undefined) assertString(label, 'label', 200)
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'enrollTotp')
    const [factors, identifiers] = await Promise.all([tx.listFactors(userId), tx.listIdentifiers(userId)])
    const existing = factors.find((f) => f.kind === 'totp')
    if (existing?.state.confirmed === true) {
      throw new ConflictError(
        ErrorCode.ALREADY_EXISTS,
        `user ${shownId(userId)} already has a confirmed TOTP factor`,
        {
          details: { userId, factorId: existing.id },
        },
      )
    }
    const factorId = existing?.id ?? newId('fac')
    const seed = ctx.totp.newSeed()
    try {
      const sealed = sealSeed(ctx.keyring, seed, seedContext(tenantId, userId, factorId))
      tx.putFactor(
        {
          id: factorId,
          userId,
          kind: 'totp',
          secret: new Secret(sealed),
          keyId: sealed.keyId,
          state: { confirmed: false, lastUsedStep: null },
        },
        existing ? { expectedVersion: existing.version } : { mustNotExist: true },
      )
      await recordUserChange(tx, userId, user, {
        audit: { action: AUDIT_ACTIONS.totpEnrolled, data: { factorId, keyId: sealed.keyId } },
        events: [{ type: EVENT_TYPES.totpEnrolled, payload: { userId, factorId } }],
      })
      const accountName = label ?? identifiers.find((i) => i.kind === 'email')?.value ?? userId
      return new Enrollment(factorId, ctx.totp.uri(seed, accountName))
    } finally {
      seed.fill(0)
    }
  })
}

/**
 * Checks a TOTP code against the user's factor inside a unit of work. A match later than the last accepted
 * step buffers the factor's new step (with a version precondition, so one code is accepted once under any
 * race) and re-seals the seed under the current key; it appends the `totp.verified` audit record and returns
 * the event for the caller's one user change. A refusal writes nothing and says why.
 */
export function acceptTotp(
  ctx: EngineContext,
  tx: UnitOfWork,
  userId: string,
  factor: FactorRecord,
  code: string,
): { ok: true; event: Omit<EventDraft, 'userId'> } | { ok: false; reason: RejectReason } {
  const context = seedContext(tx.tenantId, userId, factor.id)
  const sealed = factor.secret.reveal()
  const seed = openSeed(ctx.keyring, sealed, context)
  try {
    const step = ctx.totp.matchStep(seed, code, ctx.clock())
    const last = typeof factor.state.lastUsedStep === 'number' ? factor.state.lastUsedStep : -1
    if (step === null || step <= last)
      return { ok: false, reason: step === null ? 'wrong_secret' : 'replayed' }
    const current = sealed.keyId === ctx.keyring.currentKeyId
    const resealed = current ? null : sealSeed(ctx.keyring, seed, context)
    tx.putFactor(
      {
        id: factor.id,
        userId,
        kind: 'totp',
        secret: resealed ? new Secret(resealed) : factor.secret,
        keyId: resealed ? resealed.keyId : typeof sealed.keyId === 'string' ? sealed.keyId : factor.keyId,
        state: { ...factor.state, confirmed: true, lastUsedStep: step },
      },
      { expectedVersion: factor.version },
    )
    tx.appendAudit({ action: AUDIT_ACTIONS.totpVerified, userId, data: { factorId: factor.id } })
    return { ok: true, event: { type: EVENT_TYPES.totpVerified, payload: { userId, factorId: factor.id } } }
  } finally {
    seed.fill(0)
  }
}

export async function verifyTotp(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  code: string,
): Promise<boolean> {
  const how = {
    kind: 'totp',
    rejected: AUDIT_ACTIONS.totpRejected,
    maxCodeLength: TOTP_MAX_CODE_LENGTH,
  } as const
  return checkFactor(ctx, tenantId, userId, code, how, async (tx, user, factor) => {
    const accepted = acceptTotp(ctx, tx, userId, factor, code)
    if (!accepted.ok) return reject(tx, how.rejected, userId, accepted.reason, factor.id)
    await recordUserChange(tx, userId, user, { events: [accepted.event] })
    return true
  })
}
