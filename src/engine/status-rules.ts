import { ErrorCode } from '../domain/errors.js'

/** What a use case does for a user or tenant in a given status. */
export type StatusOutcome =
  /** Runs as for an active user of an active tenant. */
  | 'allowed'
  /** Refused with this code; nothing is written. */
  | typeof ErrorCode.USER_DISABLED
  | typeof ErrorCode.USER_DELETED
  | typeof ErrorCode.TENANT_SUSPENDED
  /** A check (verifyPassword, verifyTotp, consumeRecoveryCode) answers false; authenticate INVALID_CREDENTIALS. */
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
// Sign-in checks never raise: they answer false (INVALID_CREDENTIALS) and audit the reason.
const CHECK: StatusRule = { disabledUser: 'refused', deletedUser: 'refused', suspendedTenant: 'refused' }

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
