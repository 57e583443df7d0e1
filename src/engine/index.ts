export { AUDIT_ACTIONS, type AuditAction, EVENT_TYPES, type EventType, type RejectReason } from './events.js'
export { createKeyring, generateKey, KEY_BYTES, type Keyring, keyFor, keyringFromEnv } from './keyring.js'
export { DEFAULT_PASSWORD_HASHING, PasswordHasher, type PasswordHashingOptions } from './password-hasher.js'
export {
  DEFAULT_RECOVERY_CODE_COUNT,
  matchRecoveryCode,
  newRecoveryCodes,
  normalizeRecoveryCode,
  type RecoveryCodeHashes,
} from './recovery-code-hashes.js'
export { openSeed, type SealedSeed, sealSeed } from './seed-cipher.js'
export { DEFAULT_TOTP, TotpAlgorithm, type TotpOptions } from './totp-algorithm.js'
export {
  type AccountIdentifier,
  type CompletedSignIn,
  type CountUsersOptions,
  type FactorSummary,
  type IdentifierSummary,
  type IssuedToken,
  type KeyUsage,
  type ListAuditOptions,
  type ListUsersOptions,
  type NewSession,
  type PasswordSubject,
  type RecoveryCodeSet,
  type RegisterUserInput,
  type RequestContext,
  type ResealResult,
  type SecondFactorProof,
  type SessionSummary,
  type SignInResult,
  type TotpEnrollment,
  type UpdateProfileOptions,
  type UserDetails,
  UserEngine,
  type UserEngineOptions,
  type UserListItem,
} from './user-engine.js'
