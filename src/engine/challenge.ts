import { createHash } from 'node:crypto'
import { ValidationError } from '../domain/errors.js'
import type { SignInMethod, UserRecord } from '../domain/records.js'
import { assertString, inputObject, isSignInMethod } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import { claimAttempt, lockedFor, throttled, throttleKey } from './attempt-throttle.js'
import { type EngineContext, reject } from './context.js'
import { AUDIT_ACTIONS, type RejectReason } from './events.js'
import { acceptRecoveryCode, RECOVERY_CODE_MAX_LENGTH } from './recovery-codes.js'
import { bufferNewSession, type NewSession } from './sessions.js'
import { invalidCredentials, secondFactorsOf } from './sign-in.js'
import { invalidToken } from './token-codec.js'
import { useToken } from './tokens.js'
import { acceptTotp, TOTP_MAX_CODE_LENGTH } from './totp.js'

/** The second factor that completes a sign-in challenge: a TOTP code or a recovery code. */
export type SecondFactorProof = { readonly totp: string } | { readonly recoveryCode: string }

export interface CompletedSignIn {
  readonly status: 'signed_in'
  readonly user: UserRecord
  readonly session: NewSession
}

function parseProof(proof: unknown): { kind: 'totp' | 'recovery_codes'; code: string } {
  const p = inputObject(proof, 'proof', ['totp', 'recoveryCode'])
  if ((p.totp === undefined) === (p.recoveryCode === undefined)) {
    throw new ValidationError('proof needs exactly one of totp and recoveryCode', {
      details: { field: 'proof' },
    })
  }
  if (p.totp !== undefined) {
    assertString(p.totp, 'totp', TOTP_MAX_CODE_LENGTH)
    return { kind: 'totp', code: p.totp }
  }
  assertString(p.recoveryCode, 'recoveryCode', RECOVERY_CODE_MAX_LENGTH)
  return { kind: 'recovery_codes', code: p.recoveryCode as string }
}

type Outcome =
  | { readonly ok: true; readonly user: UserRecord; readonly session: NewSession; readonly tenantId: string }
  | { readonly ok: false; readonly userId: string; readonly tenantId: string }

/**
 * Completes a sign-in that needs a second factor: the challenge `authenticate` returned and a TOTP or
 * recovery code. In one unit of work: the challenge is consumed, the code accepted (a TOTP step or a
 * recovery code is used once under any race) and a session created, or none of it. A challenge that is not
 * valid is INVALID_TOKEN; a wrong code is INVALID_CREDENTIALS, counted on the user's throttle key (locked:
 * THROTTLED), and leaves the challenge usable until it expires.
 */
export async function completeSignIn(
  ctx: EngineContext,
  challenge: string,
  proof: SecondFactorProof,
): Promise<CompletedSignIn> {
  const parsed = parseProof(proof)
  if (typeof challenge !== 'string') return completeSignInInTurn(ctx, challenge, parsed)
  // Guesses at one challenge run one at a time, each after the count the one before left (OneAtATime).
  const line = `challenge\u0000${createHash('sha256').update(challenge).digest('hex')}`
  return ctx.attempts.run(line, () => completeSignInInTurn(ctx, challenge, parsed))
}

async function completeSignInInTurn(
  ctx: EngineContext,
  challenge: string,
  { kind, code }: { kind: 'totp' | 'recovery_codes'; code: string },
): Promise<CompletedSignIn> {
  const rejected = kind === 'totp' ? AUDIT_ACTIONS.totpRejected : AUDIT_ACTIONS.recoveryCodeRejected
  // Whether the attempt was claimed (counted) before its check; once, whatever retries the unit makes.
  let claimed: boolean | undefined
  const outcome = await useToken(ctx, challenge, 'sign_in_challenge', async (use): Promise<Outcome> => {
    const { tx, user, record } = use
    const tenantId = tx.tenantId
    const userKey = throttleKey('user', user.id)
    const [states, factors] = await Promise.all([
      ctx.store.throttle.read(tenantId, [userKey]),
      tx.listFactors(user.id),
    ])
    const retryAfterMs = lockedFor(states, ctx.clock())
    if (retryAfterMs > 0) throw throttled(retryAfterMs)
    const refuse = async (reason: RejectReason, factorId?: string): Promise<Outcome> => {
      // A challenge a racing completion consumed is INVALID_TOKEN, not a failed attempt on the user's key.
      if (!(await use.stillLive())) throw invalidToken()
      reject(tx, rejected, user.id, reason, factorId)
      return { ok: false, userId: user.id, tenantId }
    }
    const allowed = Array.isArray(record.data.factors) && record.data.factors.includes(kind)
    const factor = secondFactorsOf(factors).includes(kind) ? factors.find((f) => f.kind === kind) : undefined
    if (!allowed || !factor) return refuse('no_factor')
    claimed ??=
      (await claimAttempt(ctx.store.throttle, tenantId, [userKey], states, ctx.throttle, ctx.clock()))
        .length > 0
    const accepted =
      kind === 'totp'
        ? acceptTotp(ctx, tx, user.id, factor, code)
        : acceptRecoveryCode(tx, user.id, factor, code)
    if (!accepted.ok) return refuse(accepted.reason, factor.id)
    const consumed = use.consume()
    const before = Array.isArray(record.data.methods) ? record.data.methods : []
    const methods = [
      ...before.filter(isSignInMethod),
      kind === 'totp' ? 'totp' : 'recovery_code',
    ] as SignInMethod[]
    const { session, events } = await bufferNewSession(ctx, tx, user.id, methods)
    const signedIn = await recordUserChange(tx, user.id, user, {
      events: [accepted.event, consumed, ...events],
    })
    return { ok: true, user: signedIn, session, tenantId }
  })
  // Throttle writes follow the commit, outside the retried unit, as for passwords.
  const key = throttleKey('user', outcome.ok ? outcome.user.id : outcome.userId)
  if (!outcome.ok) {
    if (!claimed) {
      await ctx.store.throttle.recordFailure(outcome.tenantId, [key], ctx.throttle, new Date(ctx.clock()))
    }
    throw invalidCredentials('second-factor')
  }
  await ctx.store.throttle.clear(outcome.tenantId, [key])
  return { status: 'signed_in', user: outcome.user, session: outcome.session }
}
