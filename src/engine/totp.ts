import { ConflictError, ErrorCode } from '../domain/errors.js'
import { newId } from '../domain/ids.js'
import { Secret } from '../domain/secret.js'
import { assertId, assertString } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import { asObject, checkFactor, type EngineContext, reject, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { openSeed, sealSeed } from './seed-cipher.js'

export interface TotpEnrollment {
  readonly factorId: string
  /** otpauth:// URI with the seed: show it (as a QR code) once, never store or log it. */
  readonly uri: string
}

/** Bound the AES-GCM associated data to the record the seed belongs to. */
const seedContext = (tenantId: string, userId: string, factorId: string) =>
  `user-engine/totp/v1/${tenantId}/${userId}/${factorId}`

export async function enrollTotp(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  options: { label?: string },
): Promise<TotpEnrollment> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  const label = asObject(options, 'options').label
  if (label !== undefined) assertString(label, 'label', 200)
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, { active: true })
    const [factors, identifiers] = await Promise.all([tx.listFactors(userId), tx.listIdentifiers(userId)])
    const existing = factors.find((f) => f.kind === 'totp')
    if (existing?.state.confirmed === true) {
      throw new ConflictError(
        ErrorCode.ALREADY_EXISTS,
        `user ${userId} already has a confirmed TOTP factor`,
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
          state: { confirmed: false, lastUsedStep: null },
        },
        existing ? { expectedVersion: existing.version } : { mustNotExist: true },
      )
      await recordUserChange(tx, userId, user, {
        audit: { action: AUDIT_ACTIONS.totpEnrolled, data: { factorId, keyId: sealed.keyId } },
        events: [{ type: EVENT_TYPES.totpEnrolled, payload: { userId, factorId } }],
      })
      const accountName = label ?? identifiers.find((i) => i.kind === 'email')?.value ?? userId
      return { factorId, uri: ctx.totp.uri(seed, accountName) }
    } finally {
      seed.fill(0)
    }
  })
}

export async function verifyTotp(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  code: string,
): Promise<boolean> {
  const how = { kind: 'totp', rejected: AUDIT_ACTIONS.totpRejected, maxCodeLength: 32 } as const
  return checkFactor(ctx, tenantId, userId, code, how, async (tx, user, factor) => {
    const context = seedContext(tenantId, userId, factor.id)
    const sealed = factor.secret.reveal()
    const seed = openSeed(ctx.keyring, sealed, context)
    try {
      const step = ctx.totp.matchStep(seed, code, ctx.clock())
      const last = typeof factor.state.lastUsedStep === 'number' ? factor.state.lastUsedStep : -1
      if (step === null || step <= last) {
        const reason = step === null ? 'wrong_secret' : 'replayed'
        return reject(tx, how.rejected, userId, reason, factor.id)
      }
      const secret =
        sealed.keyId === ctx.keyring.currentKeyId
          ? factor.secret
          : new Secret(sealSeed(ctx.keyring, seed, context))
      tx.putFactor(
        {
          id: factor.id,
          userId,
          kind: 'totp',
          secret,
          state: { ...factor.state, confirmed: true, lastUsedStep: step },
        },
        { expectedVersion: factor.version },
      )
      await recordUserChange(tx, userId, user, {
        audit: { action: AUDIT_ACTIONS.totpVerified, data: { factorId: factor.id } },
        events: [{ type: EVENT_TYPES.totpVerified, payload: { userId, factorId: factor.id } }],
      })
      return true
    } finally {
      seed.fill(0)
    }
  })
}
