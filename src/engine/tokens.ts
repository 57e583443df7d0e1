import type {
  IdentifierRecord,
  JsonValue,
  TenantRecord,
  TokenPurpose,
  TokenRecord,
  UserRecord,
} from '../domain/records.js'
import { Secret } from '../domain/secret.js'
import type { EventDraft, UnitOfWork } from '../store/unit-of-work.js'
import type { EngineContext } from './context.js'
import type { TokenPolicy } from './engine-options.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { invalidToken, newToken, parseToken, tokenMatches } from './token-codec.js'

/** A single-use token just issued: send `token.reveal()` (a link in an email); only its SHA-256 is stored. */
export interface IssuedToken {
  readonly id: string
  readonly tenantId: string
  readonly userId: string
  readonly purpose: TokenPurpose
  readonly expiresAt: string
  /** Printed `[redacted]`; `reveal()` once, to send it. */
  readonly token: Secret<string>
}

type UserEvent = Omit<EventDraft, 'userId'>

const TTL: Record<TokenPurpose, keyof TokenPolicy> = {
  email_verification: 'emailVerificationTtlMs',
  password_reset: 'passwordResetTtlMs',
  email_change: 'emailChangeTtlMs',
  sign_in_challenge: 'signInChallengeTtlMs',
  magic_link: 'magicLinkTtlMs',
}

/** Purposes of which a user holds at most one: a new token replaces the older ones. */
const ONE_AT_A_TIME: ReadonlySet<TokenPurpose> = new Set(['password_reset', 'email_change'])

const isLive = (t: TokenRecord, now: number) => Date.parse(t.expiresAt) > now

/**
 * Buffers a new token for the user in `tx`: drops the user's expired tokens, the older ones of a purpose held
 * one at a time (a new reset link invalidates the last), and the oldest beyond `tokens.maxPerUser`; appends the
 * audit record. Returns the token and the events for the caller's one user change.
 */
export async function bufferNewToken(
  ctx: EngineContext,
  tx: UnitOfWork,
  userId: string,
  purpose: TokenPurpose,
  data: { readonly [key: string]: JsonValue },
): Promise<{ issued: IssuedToken; events: UserEvent[] }> {
  const now = ctx.clock()
  const tokens = await tx.listTokens(userId)
  const dropped = tokens.filter(
    (t) => !isLive(t, now) || (ONE_AT_A_TIME.has(purpose) && t.purpose === purpose),
  )
  const kept = tokens.filter((t) => !dropped.includes(t))
  // Ids are time-ordered, so the list is oldest first.
  dropped.push(...kept.slice(0, Math.max(0, kept.length - (ctx.tokens.maxPerUser - 1))))
  for (const t of dropped) tx.deleteToken({ id: t.id, userId }, { expectedVersion: t.version })
  const { id, token, hash } = newToken(tx.tenantId, 'tok')
  const expiresAt = new Date(now + ctx.tokens[TTL[purpose]]).toISOString()
  tx.putToken({ id, userId, purpose, tokenHash: new Secret(hash), expiresAt, data }, { mustNotExist: true })
  tx.appendAudit({
    action: AUDIT_ACTIONS.tokenIssued,
    userId,
    data: { tokenId: id, purpose, replaced: dropped.filter((t) => isLive(t, now)).length },
  })
  return {
    issued: { id, tenantId: tx.tenantId, userId, purpose, expiresAt, token: new Secret(token) },
    events: [{ type: EVENT_TYPES.tokenIssued, payload: { userId, tokenId: id, purpose } }],
  }
}

/** Buffers the deletion of the user's tokens of these purposes (all when omitted); returns how many. */
export async function bufferDropTokens(
  tx: UnitOfWork,
  userId: string,
  purposes?: readonly TokenPurpose[],
  keep?: string,
): Promise<number> {
  const tokens = (await tx.listTokens(userId)).filter(
    (t) => t.id !== keep && (purposes === undefined || purposes.includes(t.purpose)),
  )
  for (const t of tokens) tx.deleteToken({ id: t.id, userId }, { expectedVersion: t.version })
  return tokens.length
}

/** What a valid token gives the work it authorizes. */
export interface TokenUse {
  readonly tx: UnitOfWork
  readonly tenant: TenantRecord
  readonly user: UserRecord
  readonly record: TokenRecord
  /**
   * Buffers the token's deletion (its precondition makes it single-use: of racing uses, one commits), the
   * `token.consumed` audit record, and returns its event. Call it once the work will succeed.
   */
  consume(): UserEvent
  /**
   * Reads the token again: false once a racing use consumed (or changed) it since this use read it. Reads in
   * a unit are not one snapshot, so a refusal on the user's proof re-checks first: a loser of a race may have
   * read the token before the winner's commit and the factor after it (its TOTP step then looks replayed).
   */
  stillLive(): Promise<boolean>
}

/**
 * The frame of every token use. In one unit of work of the token's tenant: reads the tenant and the token
 * together, compares hashes in constant time, and refuses (INVALID_TOKEN) an unknown, used, expired or
 * wrong-purpose token, a malformed one and one of a suspended tenant, all after the same two reads and one
 * hash; nothing is written for a refusal. Then reads the user (gone or inactive: refused) and runs `work`.
 * A commit that loses a race is re-run on fresh reads, where the used token is gone: refused.
 */
export async function useToken<T>(
  ctx: EngineContext,
  token: unknown,
  purpose: TokenPurpose,
  work: (use: TokenUse) => Promise<T>,
): Promise<T> {
  const parsed = parseToken(token)
  if (parsed === null) {
    tokenMatches(null, null)
    throw invalidToken()
  }
  return ctx.unit(parsed.tenantId, async (tx) => {
    const [tenant, record] = await Promise.all([tx.getTenant(), tx.getToken(parsed.id)])
    const matches = tokenMatches(parsed.token, record?.tokenHash.reveal())
    if (
      !matches ||
      !record ||
      !tenant ||
      tenant.status !== 'active' ||
      record.purpose !== purpose ||
      !isLive(record, ctx.clock())
    ) {
      throw invalidToken()
    }
    const user = await tx.getUser(record.userId)
    if (user?.status !== 'active') throw invalidToken()
    let consumed = false
    return work({
      tx,
      tenant,
      user,
      record,
      consume: () => {
        if (!consumed) {
          consumed = true
          tx.deleteToken({ id: record.id, userId: user.id }, { expectedVersion: record.version })
          tx.appendAudit({
            action: AUDIT_ACTIONS.tokenConsumed,
            userId: user.id,
            data: { tokenId: record.id, purpose },
          })
        }
        return { type: EVENT_TYPES.tokenConsumed, payload: { userId: user.id, tokenId: record.id, purpose } }
      },
      stillLive: async () => (await tx.getToken(record.id))?.version === record.version,
    })
  })
}

/** The identifier a token was issued for, if it is still the same (same id, kind and version). */
export async function boundIdentifier(use: TokenUse): Promise<IdentifierRecord | null> {
  const { identifierId, identifierVersion } = use.record.data
  const identifier = (await use.tx.listIdentifiers(use.user.id)).find((i) => i.id === identifierId)
  return identifier?.kind === 'email' && identifier.version === identifierVersion ? identifier : null
}

/** What a token bound to the user's email holds: that identifier and its version. */
export function identifierBinding(identifier: IdentifierRecord): { [key: string]: JsonValue } {
  return { identifierId: identifier.id, identifierVersion: identifier.version }
}
