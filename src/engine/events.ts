/**
 * Outbox event types the engine emits. Payloads hold ids (and small counts) only: consumers that need personal
 * data read it through the engine, where access is checked, instead of receiving copies in a broker.
 */
export const EVENT_TYPES = {
  tenantCreated: 'tenant.created',
  tenantRenamed: 'tenant.renamed',
  tenantSuspended: 'tenant.suspended',
  tenantReactivated: 'tenant.reactivated',
  userRegistered: 'user.registered',
  profileUpdated: 'user.profile_updated',
  emailChanged: 'user.email_changed',
  usernameChanged: 'user.username_changed',
  usernameRemoved: 'user.username_removed',
  passwordSet: 'user.password_set',
  passwordRehashed: 'user.password_rehashed',
  totpEnrolled: 'user.totp_enrolled',
  totpVerified: 'user.totp_verified',
  recoveryCodesGenerated: 'user.recovery_codes_generated',
  recoveryCodeUsed: 'user.recovery_code_used',
  factorRemoved: 'user.factor_removed',
  userDisabled: 'user.disabled',
  userEnabled: 'user.enabled',
  userDeleted: 'user.deleted',
  emailVerified: 'user.email_verified',
  totpResealed: 'user.totp_resealed',
  sessionCreated: 'user.session_created',
  sessionsRevoked: 'user.sessions_revoked',
  tokenIssued: 'user.token_issued',
  tokenConsumed: 'user.token_consumed',
} as const
export type EventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES]

/** Audit actions. `data` holds ids, counts and reason codes only. */
export const AUDIT_ACTIONS = {
  tenantCreated: 'tenant.created',
  tenantRenamed: 'tenant.renamed',
  tenantSuspended: 'tenant.suspended',
  tenantReactivated: 'tenant.reactivated',
  userRegistered: 'user.registered',
  profileUpdated: 'profile.updated',
  emailChanged: 'email.changed',
  usernameChanged: 'username.changed',
  usernameRemoved: 'username.removed',
  passwordSet: 'password.set',
  passwordVerified: 'password.verified',
  passwordRejected: 'password.rejected',
  signInSucceeded: 'sign_in.succeeded',
  signInFailed: 'sign_in.failed',
  totpEnrolled: 'totp.enrolled',
  totpVerified: 'totp.verified',
  totpRejected: 'totp.rejected',
  recoveryCodesGenerated: 'recovery_codes.generated',
  recoveryCodeUsed: 'recovery_code.used',
  recoveryCodeRejected: 'recovery_code.rejected',
  factorRemoved: 'factor.removed',
  userDisabled: 'user.disabled',
  userEnabled: 'user.enabled',
  userDeleted: 'user.deleted',
  emailVerified: 'email.verified',
  passwordReset: 'password.reset',
  totpResealed: 'totp.resealed',
  sessionCreated: 'session.created',
  sessionsRevoked: 'sessions.revoked',
  tokenIssued: 'token.issued',
  tokenRefused: 'token.refused',
  tokenConsumed: 'token.consumed',
} as const
export type AuditAction = (typeof AUDIT_ACTIONS)[keyof typeof AUDIT_ACTIONS]

/** Why a verification failed, as recorded in the audit trail (never returned to the caller). */
export type RejectReason =
  | 'unknown_user'
  | 'user_inactive'
  /** Locked by failures through another identifier of the user (see checkPassword). */
  | 'user_locked'
  | 'tenant_inactive'
  | 'no_factor'
  | 'wrong_secret'
  | 'replayed'
  | 'already_used'
