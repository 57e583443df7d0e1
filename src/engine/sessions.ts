import { plainList } from '../domain/caller-values.js'
import { ErrorCode, isUserEngineError, ValidationError } from '../domain/errors.js'
import type { SessionRecord, SignInMethod, UserRecord } from '../domain/records.js'
import { SIGN_IN_METHODS } from '../domain/records.js'
import { Secret } from '../domain/secret.js'
import { assertId, inputObject, isSignInMethod } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import type { EventDraft, UnitOfWork } from '../store/unit-of-work.js'
import { type EngineContext, requireUser } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { invalidToken, newToken, parseToken, tokenMatches } from './token-codec.js'
import { bufferDropTokens } from './tokens.js'

/** A session as the engine shows it: ids and times, never its token or the token's hash. */
export interface SessionSummary {
  readonly id: string
  readonly tenantId: string
  readonly userId: string
  /** How the user signed in, in order (`['password', 'totp']`). */
  readonly methods: readonly SignInMethod[]
  readonly createdAt: string
  /** The last activity recorded (written at most once per `sessions.refreshIntervalMs`). */
  readonly lastSeenAt: string
  /** When the session ends unless a refresh moves it: the earlier of idle and absolute expiry. */
  readonly expiresAt: string
  /** When the session ends whatever happens. */
  readonly absoluteExpiresAt: string
}

/** A session just created, with its token: shown once, printed `[redacted]` until revealed. */
export interface NewSession extends SessionSummary {
  /** `token.reveal()` is the string to hand to the client (a cookie); only its SHA-256 is stored. */
  readonly token: Secret<string>
}

/** Why sessions ended, as audit records and `user.sessions_revoked` events name it. */
export type RevokeReason =
  | 'sign_out'
  | 'revoked'
  | 'revoked_all'
  | 'session_limit'
  | 'password_set'
  | 'password_reset'
  | 'email_changed'
  | 'user_disabled'
  | 'user_deleted'

type UserEvent = Omit<EventDraft, 'userId'>

export function summarize(s: SessionRecord): SessionSummary {
  return {
    id: s.id,
    tenantId: s.tenantId,
    userId: s.userId,
    methods: s.methods,
    createdAt: s.createdAt,
    lastSeenAt: s.lastSeenAt,
    expiresAt: s.expiresAt,
    absoluteExpiresAt: s.absoluteExpiresAt,
  }
}

const isLive = (s: { readonly expiresAt: string }, now: number) => Date.parse(s.expiresAt) > now

/**
 * Buffers a new session for the user in `tx`: drops the user's expired sessions, ends the least recently
 * active ones beyond `maxPerUser`, writes the new one and appends its audit record. Returns the session with
 * its token and the events for the caller's one user change (rule 5: the caller writes the user).
 */
export async function bufferNewSession(
  ctx: EngineContext,
  tx: UnitOfWork,
  userId: string,
  methods: readonly SignInMethod[],
): Promise<{ session: NewSession; events: UserEvent[] }> {
  const now = ctx.clock()
  const existing = await tx.listSessions(userId)
  const live = existing.filter((s) => isLive(s, now))
  const over = Math.max(0, live.length - (ctx.sessions.maxPerUser - 1))
  const evicted = [...live].sort((a, b) => (a.lastSeenAt < b.lastSeenAt ? -1 : 1)).slice(0, over)
  for (const s of [...existing.filter((x) => !isLive(x, now)), ...evicted]) {
    tx.deleteSession({ id: s.id, userId }, { expectedVersion: s.version })
  }
  const { id, token, hash } = newToken(tx.tenantId, 'ses')
  const nowIso = new Date(now).toISOString()
  const absoluteExpiresAt = new Date(now + ctx.sessions.absoluteTtlMs).toISOString()
  const expiresAt = new Date(Math.min(now + ctx.sessions.idleTtlMs, now + ctx.sessions.absoluteTtlMs))
  const draft = {
    id,
    userId,
    tokenHash: new Secret(hash),
    methods: [...methods],
    lastSeenAt: nowIso,
    expiresAt: expiresAt.toISOString(),
    absoluteExpiresAt,
  }
  tx.putSession(draft, { mustNotExist: true })
  // The buffered row carries the commit's time, which the store will record as createdAt.
  const createdAt = (await tx.getSession(id))?.createdAt ?? nowIso
  tx.appendAudit({
    action: AUDIT_ACTIONS.sessionCreated,
    userId,
    data: { sessionId: id, methods: methods.join('+') },
  })
  const events: UserEvent[] = [{ type: EVENT_TYPES.sessionCreated, payload: { userId, sessionId: id } }]
  if (evicted.length > 0) events.push(...revokedRecord(tx, userId, evicted, 'session_limit'))
  const session: NewSession = {
    id,
    tenantId: tx.tenantId,
    userId,
    methods: Object.freeze([...methods]),
    createdAt,
    lastSeenAt: draft.lastSeenAt,
    expiresAt: draft.expiresAt,
    absoluteExpiresAt,
    token: new Secret(token),
  }
  return { session, events }
}

/** Audit record and event for sessions ended in one commit (ids only); no event when none was live. */
function revokedRecord(
  tx: UnitOfWork,
  userId: string,
  ended: readonly SessionRecord[],
  reason: RevokeReason,
): UserEvent[] {
  if (ended.length === 0) return []
  tx.appendAudit({
    action: AUDIT_ACTIONS.sessionsRevoked,
    userId,
    data: { reason, count: ended.length, ...(ended.length === 1 ? { sessionId: ended[0]!.id } : {}) },
  })
  return [
    { type: EVENT_TYPES.sessionsRevoked, payload: { userId, reason, sessionIds: ended.map((s) => s.id) } },
  ]
}

/**
 * Buffers the end of every session of the user (except `keep`) in `tx`, with its audit record; returns the
 * events for the caller's user change and how many live sessions ended. Expired ones go silently.
 */
export async function bufferRevokeSessions(
  ctx: EngineContext,
  tx: UnitOfWork,
  userId: string,
  reason: RevokeReason,
  keep?: string,
): Promise<{ events: UserEvent[]; revoked: number }> {
  const now = ctx.clock()
  const sessions = (await tx.listSessions(userId)).filter((s) => s.id !== keep)
  for (const s of sessions) tx.deleteSession({ id: s.id, userId }, { expectedVersion: s.version })
  const live = sessions.filter((s) => isLive(s, now))
  return { events: revokedRecord(tx, userId, live, reason), revoked: live.length }
}

/** `createSession`: a session for a user the service signed in by its own means (methods default `external`). */
export async function createSession(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  options: { readonly methods?: readonly SignInMethod[] },
): Promise<NewSession> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  const methodsMessage = `options.methods must be a non-empty list of distinct ${SIGN_IN_METHODS.join(', ')}`
  const methods = plainList(
    inputObject(options, 'options', ['methods']).methods ?? ['external'],
    'methods',
    SIGN_IN_METHODS.length,
    methodsMessage,
    isSignInMethod,
  )
  if (methods.length === 0 || new Set(methods).size !== methods.length) {
    throw new ValidationError(methodsMessage, { details: { field: 'methods' } })
  }
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'createSession')
    const { session, events } = await bufferNewSession(ctx, tx, userId, methods)
    await recordUserChange(tx, userId, user, { events })
    return session
  })
}

/**
 * The hot path: one read (`findSession`: the session and its tenant) and no write unless a refresh is due.
 * Unknown, revoked, expired, tampered and malformed tokens, and sessions of a suspended tenant, are all
 * INVALID_TOKEN after the same hashing. A refresh writes only the session (rule 5's exception); when another
 * request refreshed or revoked it first, what the store holds then decides.
 */
export async function validateSession(ctx: EngineContext, token: string): Promise<SessionSummary> {
  const parsed = parseToken(token)
  if (parsed === null) {
    tokenMatches(null, null)
    throw invalidToken()
  }
  const found = await ctx.store.findSession(parsed.tenantId, parsed.id)
  const now = ctx.clock()
  const session = usable(found, parsed.token, now)
  if (now - Date.parse(session.lastSeenAt) < ctx.sessions.refreshIntervalMs) return summarize(session)
  return refresh(ctx, parsed.token, session, now)
}

function usable(
  found: Awaited<ReturnType<EngineContext['store']['findSession']>>,
  token: string,
  now: number,
): SessionRecord {
  const matches = tokenMatches(token, found?.session.tokenHash.reveal())
  if (!matches || !found || found.tenantStatus !== 'active' || !isLive(found.session, now)) {
    throw invalidToken()
  }
  return found.session
}

async function refresh(
  ctx: EngineContext,
  token: string,
  session: SessionRecord,
  now: number,
): Promise<SessionSummary> {
  const lastSeenAt = new Date(now).toISOString()
  const expiresAt = new Date(
    Math.min(now + ctx.sessions.idleTtlMs, Date.parse(session.absoluteExpiresAt)),
  ).toISOString()
  const { id, userId, tokenHash, methods, absoluteExpiresAt } = session
  try {
    await ctx.store.transaction(session.tenantId, async (tx) => {
      tx.putSession(
        { id, userId, tokenHash, methods, lastSeenAt, expiresAt, absoluteExpiresAt },
        { expectedVersion: session.version },
      )
    })
  } catch (error) {
    if (!isUserEngineError(error, ErrorCode.VERSION_CONFLICT)) throw error
    // Another request refreshed it (fine) or it was revoked or purged (refused): read what is there now.
    const again = await ctx.store.findSession(session.tenantId, id)
    return summarize(usable(again, token, now))
  }
  return summarize({ ...session, lastSeenAt, expiresAt, version: session.version + 1 })
}

export async function listSessions(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
): Promise<SessionSummary[]> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    await requireUser(tx, userId, 'listSessions')
    const now = ctx.clock()
    return (await tx.listSessions(userId)).filter((s) => isLive(s, now)).map(summarize)
  })
}

/** Ends one session of the user; true when it was live, false when there was none (idempotent). */
export async function revokeSession(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  sessionId: string,
): Promise<boolean> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  assertId(sessionId, 'sessionId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'revokeSession')
    const session = await tx.getSession(sessionId)
    if (!session || session.userId !== userId) return false
    return endOne(ctx, tx, user, session, 'revoked')
  })
}

async function endOne(
  ctx: EngineContext,
  tx: UnitOfWork,
  user: UserRecord,
  session: SessionRecord,
  reason: RevokeReason,
): Promise<boolean> {
  tx.deleteSession({ id: session.id, userId: user.id }, { expectedVersion: session.version })
  const live = isLive(session, ctx.clock())
  await recordUserChange(tx, user.id, user, {
    events: revokedRecord(tx, user.id, live ? [session] : [], reason),
  })
  return live
}

/** Ends every session of the user but `exceptSessionId`; returns how many live sessions ended. */
export async function revokeAllSessions(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
  options: { readonly exceptSessionId?: string },
): Promise<number> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  const except = inputObject(options, 'options', ['exceptSessionId']).exceptSessionId
  if (except !== undefined) assertId(except, 'exceptSessionId')
  return ctx.unit(tenantId, async (tx) => {
    const user = await requireUser(tx, userId, 'revokeAllSessions')
    const sessions = (await tx.listSessions(userId)).filter((s) => s.id !== except)
    // A pending sign-in challenge is half a session: it would still become one.
    const challenges = await bufferDropTokens(tx, userId, ['sign_in_challenge'])
    if (sessions.length === 0 && challenges === 0) return 0
    const { events, revoked } = await bufferRevokeSessions(ctx, tx, userId, 'revoked_all', except as string)
    await recordUserChange(tx, userId, user, { events })
    return revoked
  })
}

/** Ends the session a token names (sign-out): true when it was live, false for any token that is not. */
export async function signOut(ctx: EngineContext, token: string): Promise<boolean> {
  const parsed = parseToken(token)
  if (parsed === null) return false
  return ctx.unit(parsed.tenantId, async (tx) => {
    const session = await tx.getSession(parsed.id)
    if (!session || !tokenMatches(parsed.token, session.tokenHash.reveal())) return false
    const user = await tx.getUser(session.userId)
    if (!user) return false
    return endOne(ctx, tx, user, session, 'sign_out')
  })
}
