import type { Secret } from './secret.js'

/** The logical record types a store keeps. Every one of them belongs to exactly one tenant. */
export const RECORD_TYPES = ['tenant', 'user', 'identifier', 'profile', 'factor', 'session', 'token'] as const
export type RecordType = (typeof RECORD_TYPES)[number]

/** Fields every stored record carries. `version` is set by the store: 1 on insert, +1 on every update. */
export interface RecordMeta {
  readonly tenantId: string
  readonly version: number
  readonly createdAt: string
  readonly updatedAt: string
}

export type TenantStatus = 'active' | 'suspended'
export interface TenantRecord extends RecordMeta {
  readonly id: string
  readonly name: string
  readonly status: TenantStatus
}

export type UserStatus = 'active' | 'disabled' | 'deleted'
/** A user holds no personal data itself: identifiers and profile are separate records, read only when asked for. */
export interface UserRecord extends RecordMeta {
  readonly id: string
  readonly status: UserStatus
}

export const IDENTIFIER_KINDS = ['email', 'username'] as const
export type IdentifierKind = (typeof IDENTIFIER_KINDS)[number]
/** One login identifier. `value` is the normalized form; it is unique per tenant and kind. */
export interface IdentifierRecord extends RecordMeta {
  readonly id: string
  readonly userId: string
  readonly kind: IdentifierKind
  readonly value: string
  readonly verified: boolean
}

export type ProfileValue = string | number | boolean | null
export type ProfileAttributes = Readonly<Record<string, ProfileValue>>
/** One profile per user; its id is the user's id. */
export interface ProfileRecord extends RecordMeta {
  readonly userId: string
  readonly attributes: ProfileAttributes
}

export const FACTOR_KINDS = ['password', 'totp', 'recovery_codes'] as const
export type FactorKind = (typeof FACTOR_KINDS)[number]
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
/**
 * An authentication factor. `secret` is opaque to the store (a hash, an encrypted seed) and prints as
 * `[redacted]`; `state` is non-secret bookkeeping (the last accepted TOTP step, which recovery codes are used).
 */
export interface FactorRecord extends RecordMeta {
  readonly id: string
  readonly userId: string
  readonly kind: FactorKind
  readonly secret: Secret<{ readonly [key: string]: JsonValue }>
  readonly state: { readonly [key: string]: JsonValue }
  /**
   * The id of the keyring key `secret` is sealed under (a TOTP seed), or null when it is not sealed (a hash).
   * Not secret: it lets a store count and find seeds per key without opening them (key rotation).
   */
  readonly keyId: string | null
}

/** How a session's user proved who they are. `external`: the service signed the user in itself. */
export const SIGN_IN_METHODS = ['password', 'totp', 'recovery_code', 'magic_link', 'external'] as const
export type SignInMethod = (typeof SIGN_IN_METHODS)[number]

/**
 * A signed-in session. Only the SHA-256 of its token is stored (`tokenHash`, printed `[redacted]`); the token
 * is shown once, when the session is created. Times are ISO 8601 instants (`toISOString()`).
 */
export interface SessionRecord extends RecordMeta {
  readonly id: string
  readonly userId: string
  readonly tokenHash: Secret<string>
  /** How the user signed in, in order (`['password', 'totp']`). */
  readonly methods: readonly SignInMethod[]
  /** The last activity recorded; a refresh writes it at most once per refresh interval. */
  readonly lastSeenAt: string
  /** When the session stops being valid: the earlier of its idle and absolute expiry. */
  readonly expiresAt: string
  /** The absolute expiry, which no refresh moves. */
  readonly absoluteExpiresAt: string
}

/** What a single-use token is for: a token of one purpose never works for another. */
export const TOKEN_PURPOSES = [
  'email_verification',
  'password_reset',
  'email_change',
  'sign_in_challenge',
  'magic_link',
] as const
export type TokenPurpose = (typeof TOKEN_PURPOSES)[number]

/**
 * A single-use token: purpose-bound and expiring. Only the SHA-256 of the token is stored (`tokenHash`, printed
 * `[redacted]`). Using it deletes the record in the same unit of work as the change it authorizes.
 */
export interface TokenRecord extends RecordMeta {
  readonly id: string
  readonly userId: string
  readonly purpose: TokenPurpose
  readonly tokenHash: Secret<string>
  /** ISO 8601 instant after which the token is refused and may be purged. */
  readonly expiresAt: string
  /**
   * What the token is bound to, by purpose: the identifier and its version (email verification), the new
   * normalized email (email change), the second factors a sign-in challenge accepts. Never a secret.
   */
  readonly data: { readonly [key: string]: JsonValue }
}

export type AuditData = Readonly<Record<string, string | number | boolean | null>>
/**
 * An append-only audit record. `data` holds ids and codes only, never personal values. A tenant's records list
 * in commit order; the order has no number: no counter shared with other tenants is exposed (the listing's
 * cursor is opaque and names the last record listed).
 */
export interface AuditRecord {
  readonly id: string
  readonly tenantId: string
  readonly occurredAt: string
  readonly action: string
  readonly userId: string | null
  /** Who made the change (an administrator, a service): the `actorId` of the use case's request context. */
  readonly actorId: string | null
  /** The caller's request id (an id), for correlating with its logs. */
  readonly requestId: string | null
  /** The client's IP address; recorded only when the engine opts in (`recordClientInfo`). Personal data. */
  readonly ip: string | null
  /** The client's user agent, at most 512 characters; recorded only on opt-in, like `ip`. Personal data. */
  readonly userAgent: string | null
  readonly data: AuditData
}

export type AggregateType = 'tenant' | 'user'
/** A domain event committed in the same unit of work as the change it describes. */
export interface OutboxEvent {
  readonly id: string
  readonly tenantId: string
  readonly aggregateType: AggregateType
  readonly aggregateId: string
  /** The aggregate's version after the commit that emitted the event. */
  readonly sequence: number
  /** The event's position among the events of one aggregate in one commit, from 0. */
  readonly position: number
  readonly type: string
  readonly payload: { readonly [key: string]: JsonValue }
  readonly occurredAt: string
}

export type OutboxStatus = 'pending' | 'published' | 'dead' | 'discarded'
/** An outbox event with its delivery state, as the relay and operators see it. */
export interface OutboxEntry extends OutboxEvent {
  readonly status: OutboxStatus
  readonly attempts: number
  readonly availableAt: string
  readonly leaseOwner: string | null
  readonly leaseUntil: string | null
  readonly publishedAt: string | null
  readonly lastError: string | null
}
