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
  type FactorSummary,
  type PasswordSubject,
  type RecoveryCodeSet,
  type RegisterUserInput,
  type TotpEnrollment,
  type UpdateProfileOptions,
  UserEngine,
  type UserEngineOptions,
} from './user-engine.js'
