/**
 * `user-engine`: what service teams and provider teams use. Every name here is a compatibility promise; the
 * checked-in report api/public-api.md lists them, and a test fails when it and this surface disagree.
 */

export { decodeIdCursor, decodeValueCursor, encodeCursor, encodeValueCursor } from './domain/cursor.js'
// Errors and values every caller meets.
export {
  ConflictError,
  ERROR_CODE_MEANINGS,
  ErrorCode,
  type ErrorDetails,
  type ErrorOptions,
  isUserEngineError,
  NotFoundError,
  type ReadinessReason,
  SchemaError,
  UserEngineError,
  ValidationError,
} from './domain/errors.js'
export { LIMITS } from './domain/limits.js'
// The logger hook the relay and the CLI write through.
export { type LogFields, type Logger, type LogLevel, lineLogger, silentLogger } from './domain/logger.js'
export * from './domain/records.js'
export { Secret } from './domain/secret.js'
// Prefix search as every store must order it (code points), for providers writing a store.
export { compareCodePoints, prefixUpperBound } from './domain/user-queries.js'
export {
  assertId,
  isIsoInstant,
  MAX_PURGE_BATCH,
  normalizeIdentifier,
  validatePageSize,
} from './domain/validation.js'
export {
  DEFAULT_CALLER_THROTTLE,
  DEFAULT_SESSION_POLICY,
  DEFAULT_SIGN_IN_THROTTLE,
  DEFAULT_TOKEN_POLICY,
} from './engine/engine-options.js'
// The engine: the use cases service teams call.
export {
  AUDIT_ACTIONS,
  type AuditAction,
  EVENT_TYPES,
  type EventType,
  type RejectReason,
} from './engine/events.js'
export { createKeyring, generateKey, KEY_BYTES, type Keyring, keyringFromEnv } from './engine/keyring.js'
export {
  createExpiryPurger,
  type ExpiryPurger,
  type ExpiryPurgerOptions,
  purgeExpired,
} from './engine/maintenance.js'
export { DEFAULT_PASSWORD_HASHING, type PasswordHashingOptions } from './engine/password-hasher.js'
export { DEFAULT_RECOVERY_CODE_COUNT } from './engine/recovery-code-hashes.js'
export { STATUS_RULES, type StatusOutcome, type StatusRule, type UserUseCase } from './engine/status-rules.js'
export { DEFAULT_TOTP, type TotpOptions } from './engine/totp-algorithm.js'
export { ENGINE_SPANS, type SpanAttributeValue, type SpanLike, type TracerLike } from './engine/tracing.js'
export {
  type AccountIdentifier,
  type CompletedSignIn,
  type CountUsersOptions,
  type FactorSummary,
  type IdentifierSummary,
  type IssuedToken,
  type KeyUsage,
  type KeyUse,
  type ListAuditOptions,
  type ListUsersOptions,
  type NewSession,
  type PasswordSubject,
  type PurgeOptions,
  type PurgeResult,
  type RecoveryCodeSet,
  type RegisterUserInput,
  type RequestContext,
  type ResealFailure,
  type ResealOptions,
  type ResealProgress,
  type ResealResult,
  type RevokeReason,
  type SecondFactorKind,
  type SecondFactorProof,
  type SessionPolicy,
  type SessionSummary,
  type SignInCredentials,
  type SignInResult,
  type TokenPolicy,
  type TotpEnrollment,
  type UpdateProfileOptions,
  type UserDetails,
  UserEngine,
  type UserEngineOptions,
  type UserListItem,
} from './engine/user-engine.js'
// The outbox relay (the JetStream publisher is `user-engine/nats`).
export { type MeterLike, RELAY_METRICS } from './outbox/metrics.js'
export {
  type BrokerUnreachableReason,
  brokerUnreachable,
  InProcessPublisher,
  isBrokerUnreachable,
  type PublishedEvent,
  type Publisher,
  toPublishedEvent,
} from './outbox/publisher.js'
export { OutboxRelay } from './outbox/relay.js'
export type { BackoffOptions, DrainResult, RelayOptions, RelayProgress } from './outbox/relay-options.js'
// The store contract, and the kit a provider's store may reuse.
export { BufferedUnitOfWork, type RowSource, type UserRowType } from './store/buffered-unit-of-work.js'
export { failedAtCommit, markCommitPhase } from './store/commit-phase.js'
export type * from './store/commit-plan.js'
export { runUnitOfWork, type UnitOfWorkRun } from './store/run-unit-of-work.js'
export * from './store/schema-admin.js'
// The logical schema versions every store implements (the Postgres SQL is in `user-engine/postgres`).
export {
  DIAGNOSTIC_COUNT_KEYS,
  type DiagnosticCountKey,
  LATEST_SCHEMA_VERSION,
  SCHEMA_VERSIONS,
  type SchemaVersion,
} from './store/schema-versions.js'
export { countSealedByKeyId, INVALID_KEY_ID } from './store/sealed-keys.js'
export type * from './store/store.js'
export { recordCodec, type StoredRow } from './store/stored-row.js'
export * from './store/throttle.js'
export type * from './store/unit-of-work.js'
