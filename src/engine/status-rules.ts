import { ErrorCode } from '../domain/errors.js'

/** What a use case does for a user or tenant in a given status. */
export type StatusOutcome =
  /** Runs as for an active user of an active tenant. */
  | 'allowed'
  /** Refused with this code; nothing is written. */
  | typeof ErrorCode.USER_DISABLED
  | typeof ErrorCode.USER_DELETED
  | typeof ErrorCode.TENANT_SUSPENDED
  /**
   * Refused without saying why: a check (verifyPassword, verifyTotp, consumeRecoveryCode) answers false,
   * authenticate is INVALID_CREDENTIALS, a use of a session or token INVALID_TOKEN, a request for a token
   * (requestPasswordReset, requestMagicLink) null.
   */
  | 'refused'
  /** deleteUser on a deleted user, disableUser on a disabled one: returns the record, writes nothing. */
  | 'no-op'
  /** The use case has no user in that status (registerUser creates one). */
  | 'n/a'

export interface StatusRule {
  readonly disabledUser: StatusOutcome
  readonly deletedUser: StatusOutcome
  readonly suspendedTenant: StatusOutcome
}

const { USER_DISABLED, USER_DELETED, TENANT_SUSPENDED } = ErrorCode

// A user's own changes: refused on a disabled user, a deleted user and in a suspended tenant.
const SELF_SERVICE: StatusRule = {
  disabledUser: USER_DISABLED,
  deletedUser: USER_DELETED,
  suspendedTenant: TENANT_SUSPENDED,
}
// Reads of a user's data: a disabled user's data stays readable (support, admin screens); a deleted user's
// data is erased, so asking for it is USER_DELETED. Reads work in a suspended tenant.
const USER_READ: StatusRule = {
  disabledUser: 'allowed',
  deletedUser: USER_DELETED,
  suspendedTenant: 'allowed',
}
// Sign-in checks never raise: they answer false (INVALID_CREDENTIALS) and audit the reason. Sessions and
// tokens are refused the same way (INVALID_TOKEN), and requests for a token by identifier answer null.
const CHECK: StatusRule = { disabledUser: 'refused', deletedUser: 'refused', suspendedTenant: 'refused' }
// Ending sessions is always possible: a disabled or deleted user has none left (ended with the status
// change), so it changes nothing; in a suspended tenant it works, like deleteUser.
const SIGN_OUT: StatusRule = { disabledUser: 'no-op', deletedUser: 'no-op', suspendedTenant: 'allowed' }

/**
 * Every user use case x user status x tenant status. docs/status-rules.md shows this table (a test keeps the
 * two equal) and test/engine/status-rules.test.ts runs every cell on every store.
 */
export const STATUS_RULES = {
  registerUser: { disabledUser: 'n/a', deletedUser: 'n/a', suspendedTenant: TENANT_SUSPENDED },
  getUser: { disabledUser: 'allowed', deletedUser: 'allowed', suspendedTenant: 'allowed' },
  // Like getUser: a deleted user's details are its tombstone (its identifiers, profile and factors are erased).
  getUserDetails: { disabledUser: 'allowed', deletedUser: 'allowed', suspendedTenant: 'allowed' },
  getProfile: USER_READ,
  listFactors: USER_READ,
  updateProfile: SELF_SERVICE,
  changeEmail: SELF_SERVICE,
  setUsername: SELF_SERVICE,
  removeUsername: SELF_SERVICE,
  setPassword: SELF_SERVICE,
  enrollTotp: SELF_SERVICE,
  generateRecoveryCodes: SELF_SERVICE,
  removeFactor: SELF_SERVICE,
  authenticate: CHECK,
  verifyPassword: CHECK,
  verifyTotp: CHECK,
  consumeRecoveryCode: CHECK,
  disableUser: { disabledUser: 'no-op', deletedUser: USER_DELETED, suspendedTenant: TENANT_SUSPENDED },
  enableUser: { disabledUser: 'allowed', deletedUser: USER_DELETED, suspendedTenant: TENANT_SUSPENDED },
  // Erasure is always possible, also in a suspended tenant (a data-protection request cannot wait).
  deleteUser: { disabledUser: 'allowed', deletedUser: 'no-op', suspendedTenant: 'allowed' },
  // Sessions: disabling or deleting a user ends them; a suspended tenant's sessions stop validating until it
  // is reactivated (they are kept, so reactivation restores them).
  createSession: SELF_SERVICE,
  validateSession: CHECK,
  listSessions: USER_READ,
  revokeSession: SIGN_OUT,
  revokeAllSessions: SIGN_OUT,
  signOut: SIGN_OUT,
  completeSignIn: CHECK,
  // Single-use tokens: disabling or deleting a user drops them; issuing is the user's own change.
  issueEmailVerification: SELF_SERVICE,
  verifyEmail: CHECK,
  requestPasswordReset: CHECK,
  resetPassword: CHECK,
  requestEmailChange: SELF_SERVICE,
  confirmEmailChange: CHECK,
  requestMagicLink: CHECK,
  signInWithMagicLink: CHECK,
} as const satisfies Record<string, StatusRule>

export type UserUseCase = keyof typeof STATUS_RULES

/** STATUS_RULES as the Markdown table docs/status-rules.md shows. */
export function statusRulesTable(): string {
  const cell = (o: StatusOutcome) =>
    o === 'allowed' || o === 'refused' || o === 'no-op' || o === 'n/a' ? o : `\`${o}\``
  const rows = Object.entries(STATUS_RULES).map(
    ([useCase, r]) =>
      `| \`${useCase}\` | ${cell(r.disabledUser)} | ${cell(r.deletedUser)} | ${cell(r.suspendedTenant)} |`,
  )
  return [
    '| Use case | Disabled user | Deleted user | Suspended tenant |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n')
}
