import { ValidationError } from '../domain/errors.js'
import { LIMITS } from '../domain/limits.js'
import { assertId, assertIpAddress, isStorableText, optionsObject } from '../domain/validation.js'
import type { AuditDraft, UnitOfWork } from '../store/unit-of-work.js'
import type { EngineContext } from './context.js'

/**
 * Who asks for a change, passed as the last argument of every mutating use case and recorded in its audit
 * records. Every field is optional.
 */
export interface RequestContext {
  /** Who acts (an administrator, a support agent, a service): an id, 1 to 64 of `A-Z a-z 0-9 _ -`. */
  readonly actorId?: string
  /** The caller's request or trace id, to find the request in its own logs: an id, like `actorId`. */
  readonly requestId?: string
  /** The client's IPv4 or IPv6 address. Recorded only when the engine has `recordClientInfo: true`. */
  readonly ip?: string
  /**
   * The client's user agent. Recorded only when the engine has `recordClientInfo: true`, cut to
   * `LIMITS.userAgentLength` (512) characters: a client chooses its header, so a long one is not refused.
   */
  readonly userAgent?: string
}

/** What a context adds to each audit record of the use case, checked. */
type AuditContext = Pick<AuditDraft, 'actorId' | 'requestId' | 'ip' | 'userAgent'>

const CONTEXT_KEYS = ['actorId', 'requestId', 'ip', 'userAgent'] as const

/** The first `max` characters, never ending inside a surrogate pair. */
function cut(value: string, max: number): string {
  if (value.length <= max) return value
  const end = /[\uD800-\uDBFF]/.test(value[max - 1]!) ? max - 1 : max
  return value.slice(0, end)
}

/**
 * Checks a request context: an object (or undefined) with only the known keys; ids by `assertId`, the IP as
 * an address, the user agent as storable text. Every field is checked whether or not it will be recorded, so
 * a caller's mistake shows on every engine. Errors name the field, never its value. IP and user agent are
 * dropped unless `recordClientInfo`.
 */
export function validateRequestContext(value: unknown, recordClientInfo: boolean): AuditContext | undefined {
  if (value === undefined) return undefined
  const c = optionsObject(value, 'context', CONTEXT_KEYS)
  if (c.actorId !== undefined) assertId(c.actorId, 'context.actorId')
  if (c.requestId !== undefined) assertId(c.requestId, 'context.requestId')
  if (c.ip !== undefined) assertIpAddress(c.ip, 'context.ip')
  const userAgent = c.userAgent
  if (userAgent !== undefined && (typeof userAgent !== 'string' || !isStorableText(userAgent))) {
    throw new ValidationError('context.userAgent must be text that can be stored', {
      details: { field: 'context.userAgent' },
    })
  }
  const audit: { -readonly [K in keyof AuditContext]: AuditContext[K] } = {}
  if (c.actorId !== undefined) audit.actorId = c.actorId
  if (c.requestId !== undefined) audit.requestId = c.requestId
  if (recordClientInfo && c.ip !== undefined) audit.ip = c.ip
  if (recordClientInfo && userAgent !== undefined) audit.userAgent = cut(userAgent, LIMITS.userAgentLength)
  return Object.keys(audit).length === 0 ? undefined : Object.freeze(audit)
}

/** A unit of work whose audit records carry the context; everything else goes to `tx` unchanged. */
function auditing(tx: UnitOfWork, context: AuditContext): UnitOfWork {
  return {
    tenantId: tx.tenantId,
    getTenant: () => tx.getTenant(),
    getUser: (userId) => tx.getUser(userId),
    findIdentifier: (kind, value) => tx.findIdentifier(kind, value),
    listIdentifiers: (userId) => tx.listIdentifiers(userId),
    getProfile: (userId) => tx.getProfile(userId),
    listFactors: (userId) => tx.listFactors(userId),
    putTenant: (tenant, precondition) => tx.putTenant(tenant, precondition),
    putUser: (user, precondition) => tx.putUser(user, precondition),
    putIdentifier: (identifier, precondition) => tx.putIdentifier(identifier, precondition),
    deleteIdentifier: (ref, precondition) => tx.deleteIdentifier(ref, precondition),
    putProfile: (profile, precondition) => tx.putProfile(profile, precondition),
    deleteProfile: (userId, precondition) => tx.deleteProfile(userId, precondition),
    putFactor: (factor, precondition) => tx.putFactor(factor, precondition),
    deleteFactor: (ref, precondition) => tx.deleteFactor(ref, precondition),
    getSession: (sessionId) => tx.getSession(sessionId),
    listSessions: (userId) => tx.listSessions(userId),
    putSession: (session, precondition) => tx.putSession(session, precondition),
    deleteSession: (ref, precondition) => tx.deleteSession(ref, precondition),
    getToken: (tokenId) => tx.getToken(tokenId),
    listTokens: (userId) => tx.listTokens(userId),
    putToken: (token, precondition) => tx.putToken(token, precondition),
    deleteToken: (ref, precondition) => tx.deleteToken(ref, precondition),
    // A use case that names its own actor keeps it; the context fills in what the record leaves out.
    appendAudit: (entry) => tx.appendAudit({ ...context, ...withoutNullish(entry) }),
    enqueue: (event) => tx.enqueue(event),
  }
}

function withoutNullish(entry: AuditDraft): AuditDraft {
  return Object.fromEntries(Object.entries(entry).filter(([, v]) => v != null)) as unknown as AuditDraft
}

/**
 * The engine context for one call: its units of work record `context` in every audit record they append.
 * Validates the context (VALIDATION, never echoing a value); without one, the engine's own context.
 */
export function withRequestContext(ctx: EngineContext, context: unknown): EngineContext {
  const audit = validateRequestContext(context, ctx.recordClientInfo)
  if (audit === undefined) return ctx
  return Object.freeze({
    ...ctx,
    unit: <T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>) =>
      ctx.unit(tenantId, (tx) => fn(auditing(tx, audit))),
  })
}
