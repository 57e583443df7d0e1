import { readingCallerValue } from '../domain/caller-values.js'
import { ValidationError } from '../domain/errors.js'
import {
  assertIntegerInRange,
  assertOptionalBoolean,
  MAX_TIME_MS,
  optionsObject,
} from '../domain/validation.js'
import type { UserEngineStore } from '../store/store.js'
import { assertThrottlePolicy, type ThrottlePolicy } from '../store/throttle.js'
import { createKeyring, type Keyring } from './keyring.js'
import { DEFAULT_PASSWORD_HASHING, PasswordHasher } from './password-hasher.js'
import { DEFAULT_RECOVERY_CODE_COUNT } from './recovery-code-hashes.js'
import { TotpAlgorithm } from './totp-algorithm.js'
import { isTracer, type TracerLike } from './tracing.js'

/** What `new UserEngine(options)` accepts; see UserEngineOptions for each. */
const ENGINE_OPTION_KEYS = [
  'store',
  'keyring',
  'passwordHashing',
  'totp',
  'recoveryCodeCount',
  'clock',
  'maxAttempts',
  'throttle',
  'callerThrottle',
  'sessions',
  'tokens',
  'recordClientInfo',
  'tracer',
] as const

const MINUTE_MS = 60_000
const HOUR_MS = 60 * MINUTE_MS
const DAY_MS = 24 * HOUR_MS

/** How long sessions live and how often validating one writes. */
export interface SessionPolicy {
  /** A session ends this long after it was created, however active. Default 30 days. */
  readonly absoluteTtlMs: number
  /** A session ends after this long without recorded activity. Default 7 days. */
  readonly idleTtlMs: number
  /**
   * Validating a session writes its activity (and so moves its idle expiry) at most once per this interval;
   * every other validation is one read and no write. Default 1 hour; at least 1000 ms (a write at every
   * request would let a session's holder keep a revocation from committing). The idle expiry is thus
   * counted from the last recorded activity: up to one interval earlier than the last request.
   */
  readonly refreshIntervalMs: number
  /** Sessions one user may hold; a new one ends the least recently active beyond it. Default 50. */
  readonly maxPerUser: number
  /** Whether changing a user's email ends every session of theirs. Default true. */
  readonly revokeOnEmailChange: boolean
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = Object.freeze({
  absoluteTtlMs: 30 * DAY_MS,
  idleTtlMs: 7 * DAY_MS,
  refreshIntervalMs: HOUR_MS,
  maxPerUser: 50,
  revokeOnEmailChange: true,
})

/** How long each kind of single-use token lives, and how many one user may hold. */
export interface TokenPolicy {
  /** Default 24 hours. */
  readonly emailVerificationTtlMs: number
  /** Default 1 hour (OWASP's Forgot Password Cheat Sheet: short-lived). */
  readonly passwordResetTtlMs: number
  /** Default 24 hours. */
  readonly emailChangeTtlMs: number
  /** The time a user has between the password and the second factor. Default 5 minutes. */
  readonly signInChallengeTtlMs: number
  /** Default 15 minutes. */
  readonly magicLinkTtlMs: number
  /** Outstanding tokens per user; issuing one more drops the oldest. Default 10. */
  readonly maxPerUser: number
}

export const DEFAULT_TOKEN_POLICY: TokenPolicy = Object.freeze({
  emailVerificationTtlMs: DAY_MS,
  passwordResetTtlMs: HOUR_MS,
  emailChangeTtlMs: DAY_MS,
  signInChallengeTtlMs: 5 * MINUTE_MS,
  magicLinkTtlMs: 15 * MINUTE_MS,
  maxPerUser: 10,
})

const YEAR_MS = 366 * DAY_MS
const MIN_REFRESH_INTERVAL_MS = 1000

function sessionPolicy(value: unknown): SessionPolicy {
  const given = optionsObject(value, 'options.sessions', Object.keys(DEFAULT_SESSION_POLICY))
  const policy = { ...DEFAULT_SESSION_POLICY, ...definedOnly(given) } as SessionPolicy
  assertIntegerInRange(policy.absoluteTtlMs, 'options.sessions.absoluteTtlMs', MINUTE_MS, 10 * YEAR_MS)
  assertIntegerInRange(policy.idleTtlMs, 'options.sessions.idleTtlMs', MINUTE_MS, policy.absoluteTtlMs)
  // At least a second: a refresh is a write of the session, and refreshes at every request let whoever
  // holds a session (a stolen one included) keep its version moving faster than a revocation can commit.
  assertIntegerInRange(
    policy.refreshIntervalMs,
    'options.sessions.refreshIntervalMs',
    MIN_REFRESH_INTERVAL_MS,
    policy.idleTtlMs - 1,
  )
  assertIntegerInRange(policy.maxPerUser, 'options.sessions.maxPerUser', 1, 1000)
  if (typeof policy.revokeOnEmailChange !== 'boolean') {
    throw new ValidationError('options.sessions.revokeOnEmailChange must be a boolean', {
      details: { field: 'sessions.revokeOnEmailChange' },
    })
  }
  return Object.freeze(policy)
}

function tokenPolicy(value: unknown): TokenPolicy {
  const given = optionsObject(value, 'options.tokens', Object.keys(DEFAULT_TOKEN_POLICY))
  const policy = { ...DEFAULT_TOKEN_POLICY, ...definedOnly(given) } as TokenPolicy
  for (const [field, ms] of Object.entries(policy)) {
    if (field === 'maxPerUser') assertIntegerInRange(ms, 'options.tokens.maxPerUser', 1, 100)
    else assertIntegerInRange(ms, `options.tokens.${field}`, 1000, 30 * DAY_MS)
  }
  return Object.freeze(policy)
}

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
}

/**
 * Sign-in lockout per identifier and per user. OWASP's Authentication Cheat Sheet ("Account Lockout") asks for
 * a failure threshold, an observation window and a lockout that grows; NIST SP 800-63B 5.2.2 caps a
 * verifier at 100 consecutive failures. Five failures lock for 30 s, each further one doubles it up to
 * 15 min, and an hour without failures starts the count again: about 10 guesses an hour, far under 100.
 */
export const DEFAULT_SIGN_IN_THROTTLE: ThrottlePolicy = Object.freeze({
  lockAfter: 5,
  baseLockMs: 30_000,
  maxLockMs: 900_000,
  windowMs: 3_600_000,
})

/** Per caller key (an IP or a device): many users can share one, so the threshold is higher. */
export const DEFAULT_CALLER_THROTTLE: ThrottlePolicy = Object.freeze({
  ...DEFAULT_SIGN_IN_THROTTLE,
  lockAfter: 50,
})

/** The store methods the engine calls: an object without them is not a store. */
const STORE_FUNCTIONS = ['transaction', 'getTenant', 'getUser', 'findUserByIdentifier', 'listUsers'] as const

function throttlePolicy(value: unknown, field: string, defaults: ThrottlePolicy): ThrottlePolicy {
  const given = optionsObject(value, `options.${field}`, ['lockAfter', 'baseLockMs', 'maxLockMs', 'windowMs'])
  const policy = {
    ...defaults,
    ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
  }
  assertThrottlePolicy(policy)
  return Object.freeze(policy)
}

/** The engine's options, checked and with defaults applied. */
export interface ValidEngineOptions {
  readonly store: UserEngineStore
  readonly keyring: Keyring
  readonly hasher: PasswordHasher
  readonly totp: TotpAlgorithm
  readonly recoveryCodeCount: number
  readonly clock: () => number
  readonly maxAttempts: number
  readonly throttle: ThrottlePolicy
  readonly callerThrottle: ThrottlePolicy
  readonly sessions: SessionPolicy
  readonly tokens: TokenPolicy
  /** Audit records keep a request context's `ip` and `userAgent` (personal data): opt in. Default false. */
  readonly recordClientInfo: boolean
  /** Spans per use case and unit of work (see tracing.ts); null records none. */
  readonly tracer: TracerLike | null
}

/**
 * Checks every UserEngine option up front, so a mistake is a VALIDATION (or KEY_NOT_FOUND) error from the
 * constructor rather than a TypeError at the first use case that touches it. Unknown keys are refused: a
 * misspelt option would otherwise be ignored silently.
 */
/**
 * A caller's clock, checked on every read: `clock: Date` (for `Date.now`) or one that answers NaN, a string or
 * a time past half of Date's range fails as VALIDATION naming the option, not as a RangeError deep in a use
 * case. Not read here: a test's clock may answer only once the test has set its time.
 */
function checkedClock(given: unknown): () => number {
  // Expiries are the clock plus a lifetime: a clock near Date's end (MAX_TIME_MS) would overflow them.
  const LATEST_CLOCK_MS = MAX_TIME_MS / 2
  const invalid = () =>
    new ValidationError('options.clock must be a function returning the time in ms', {
      details: { field: 'clock' },
    })
  if (typeof given !== 'function') throw invalid()
  const read = (): number => {
    const t: unknown = given()
    if (typeof t !== 'number' || !Number.isFinite(t) || Math.abs(t) > LATEST_CLOCK_MS) throw invalid()
    return t
  }
  return read
}

export function validateEngineOptions(options: unknown): ValidEngineOptions {
  // A proxy or getter of the caller's that throws anywhere below (a revoked store, a keyring's keys) is
  // VALIDATION, as it is for the options object itself.
  return readingCallerValue('options', () => readEngineOptions(options))
}

function readEngineOptions(options: unknown): ValidEngineOptions {
  if (options === undefined) {
    throw new ValidationError('UserEngine options must be an object with at least store and keyring', {
      details: {
        field: 'options',
      },
    })
  }
  const o = optionsObject(options, 'UserEngine options', ENGINE_OPTION_KEYS)

  const store = o.store as Record<string, unknown> | null | undefined
  const missing = readingCallerValue('store', () =>
    typeof store !== 'object' || store === null
      ? undefined
      : (STORE_FUNCTIONS.find((f) => typeof store[f] !== 'function') ??
        (typeof store.throttle === 'object' && store.throttle !== null ? undefined : 'throttle')),
  )
  if (typeof store !== 'object' || store === null || missing !== undefined) {
    throw new ValidationError(
      `options.store must be a UserEngineStore${missing === undefined ? '' : ` (it has no ${missing === 'throttle' ? 'throttle' : `${missing} function`})`}: e.g. InMemoryUserEngineStore, createNodePostgresStore or createPgliteStore`,
      { details: { field: 'store' } },
    )
  }

  const keyring = o.keyring as { keys?: unknown } | null | undefined
  if (
    typeof keyring !== 'object' ||
    keyring === null ||
    readingCallerValue('keyring', () => Array.isArray(keyring))
  ) {
    throw new ValidationError('options.keyring must be a keyring: see createKeyring and keyringFromEnv', {
      details: {
        field: 'keyring',
      },
    })
  }
  const keys = readingCallerValue('keyring.keys', () => keyring.keys)
  if (
    typeof keys !== 'object' ||
    keys === null ||
    readingCallerValue('keyring.keys', () => Array.isArray(keys))
  ) {
    throw new ValidationError('options.keyring.keys must be an object of key id to 32-byte key', {
      details: {
        field: 'keyring.keys',
      },
    })
  }

  const hashing = optionsObject(o.passwordHashing, 'options.passwordHashing', [
    'memoryCost',
    'timeCost',
    'parallelism',
  ])
  const totp = optionsObject(o.totp, 'options.totp', ['issuer', 'period', 'digits', 'window'])

  // Only undefined means the default: null is a mistake like any other wrong type.
  const recoveryCodeCount =
    o.recoveryCodeCount === undefined ? DEFAULT_RECOVERY_CODE_COUNT : o.recoveryCodeCount
  assertIntegerInRange(recoveryCodeCount, 'options.recoveryCodeCount', 1, 50)
  const maxAttempts = o.maxAttempts === undefined ? 8 : o.maxAttempts
  assertIntegerInRange(maxAttempts, 'options.maxAttempts', 1, 100)
  assertOptionalBoolean(o.recordClientInfo, 'options.recordClientInfo')
  const clock = o.clock === undefined ? Date.now : checkedClock(o.clock)

  if (o.tracer !== undefined && !readingCallerValue('tracer', () => isTracer(o.tracer))) {
    throw new ValidationError(
      "options.tracer must be an OpenTelemetry Tracer (an object with startActiveSpan): e.g. trace.getTracer('my-service')",
      { details: { field: 'tracer' } },
    )
  }

  return {
    store: o.store as UserEngineStore,
    keyring: createKeyring(o.keyring as Parameters<typeof createKeyring>[0]),
    // Each checks its own ranges (Argon2 costs, TOTP digits and window) and throws VALIDATION.
    hasher: new PasswordHasher(
      o.passwordHashing === undefined
        ? DEFAULT_PASSWORD_HASHING
        : (hashing as unknown as ConstructorParameters<typeof PasswordHasher>[0]),
    ),
    totp: new TotpAlgorithm(totp),
    recoveryCodeCount,
    clock: clock as () => number,
    maxAttempts,
    throttle: throttlePolicy(o.throttle, 'throttle', DEFAULT_SIGN_IN_THROTTLE),
    callerThrottle: throttlePolicy(o.callerThrottle, 'callerThrottle', DEFAULT_CALLER_THROTTLE),
    sessions: sessionPolicy(o.sessions),
    tokens: tokenPolicy(o.tokens),
    recordClientInfo: o.recordClientInfo === true,
    tracer: o.tracer === undefined ? null : (o.tracer as TracerLike),
  }
}
