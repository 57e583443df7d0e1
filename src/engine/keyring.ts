import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { ErrorCode, UserEngineError, ValidationError } from '../domain/errors.js'
import { assertId, inputObject, optionsObject, plainObject } from '../domain/validation.js'

/** AES-256 needs exactly 32 key bytes. */
export const KEY_BYTES = 32

/**
 * The keys that encrypt TOTP seeds. New seeds are encrypted under `currentKeyId`; every key still listed keeps
 * decrypting the seeds written under it, so a rotation is: add a key, make it current, keep the old one until
 * every seed was re-encrypted (the engine re-encrypts a seed under the current key whenever it verifies it).
 */
export interface Keyring {
  readonly currentKeyId: string
  readonly keys: Readonly<Record<string, Uint8Array>>
}

/** Hides key bytes from JSON.stringify and util.inspect; non-enumerable so spreads and equality ignore it. */
function redact<T extends object>(target: T): T {
  Object.defineProperty(target, 'toJSON', { value: () => '[redacted keyring]', enumerable: false })
  Object.defineProperty(target, inspect.custom, { value: () => 'Keyring([redacted])', enumerable: false })
  return target
}

/**
 * Checks a keyring: ids are plain ids, every key is 32 bytes, the current key exists (else KEY_NOT_FOUND).
 * Returns a frozen copy whose key bytes never print.
 */
export function createKeyring(input: {
  readonly currentKeyId: string
  readonly keys: Readonly<Record<string, Uint8Array | string>>
}): Keyring {
  if (typeof input !== 'object' || input === null) {
    throw new ValidationError('keyring must be an object', { details: { field: 'keyring' } })
  }
  // Copies: a getter or proxy that throws is VALIDATION, and nothing is read twice.
  const given = inputObject(input, 'keyring', ['currentKeyId', 'keys'])
  const currentKeyId = given.currentKeyId
  assertId(currentKeyId, 'currentKeyId')
  const keys: Record<string, Uint8Array> = {}
  const listed = given.keys === undefined ? {} : plainObject(given.keys, 'keys')
  for (const [id, raw] of Object.entries(listed)) {
    assertId(id, 'keyId')
    keys[id] = keyBytes(id, raw)
  }
  // Own keys only: `constructor` or `toString` as the current key id must not find Object.prototype's.
  if (!Object.hasOwn(keys, currentKeyId)) {
    throw new UserEngineError(ErrorCode.KEY_NOT_FOUND, `current key ${currentKeyId} is not in the keyring`, {
      details: { keyId: currentKeyId },
    })
  }
  return Object.freeze(redact({ currentKeyId, keys: Object.freeze(redact(keys)) }))
}

/** Base64 or base64url, padded or not, that decodes and re-encodes to itself; anything else is undefined. */
function strictBase64(text: string): Buffer | undefined {
  const unpadded = text.replace(/=+$/, '')
  // Padding, when given, must be exactly what the length calls for.
  const padding = (4 - (unpadded.length % 4)) % 4
  if (text !== unpadded && text.length !== unpadded.length + padding) return undefined
  const bytes = Buffer.from(unpadded, 'base64')
  const canonical = [bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url')]
  return canonical.includes(unpadded) ? bytes : undefined
}

/** A key's 32 bytes, copied; anything else (or a value whose reading throws) is VALIDATION naming only the id. */
function keyBytes(id: string, raw: unknown): Uint8Array {
  const invalid = () =>
    new ValidationError(`key ${id} must be ${KEY_BYTES} bytes`, { details: { field: 'keys', keyId: id } })
  try {
    // Strings are base64 (the form keys take in env files and secret managers), read strictly: Node's decoder
    // skips characters it does not know, so a typo or a stray byte would otherwise give another key silently.
    const bytes = typeof raw === 'string' ? strictBase64(raw) : raw
    if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_BYTES) throw invalid()
    const copy = Uint8Array.from(bytes)
    if (copy.length !== KEY_BYTES) throw invalid()
    return copy
  } catch {
    // A proxy or getter of the caller's threw: its error (which may quote the key) is not shown.
    throw invalid()
  }
}

/**
 * Reads a keyring from the environment:
 * `USER_ENGINE_KEYS="k2:<base64>,k1:<base64>"` and optionally `USER_ENGINE_CURRENT_KEY=k2`
 * (default: the first key listed).
 */
export function keyringFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  names: { readonly keys?: string; readonly current?: string } = {},
): Keyring {
  const n = optionsObject(names, 'keyringFromEnv names', ['keys', 'current'])
  const keysVar = variableName(n.keys, 'USER_ENGINE_KEYS')
  const currentVar = variableName(n.current, 'USER_ENGINE_CURRENT_KEY')
  const [raw, current] = readVariables(env, keysVar, currentVar)
  if (raw === undefined || raw.trim() === '') {
    throw new UserEngineError(ErrorCode.KEY_NOT_FOUND, `${keysVar} is not set`, {
      details: { variable: keysVar },
    })
  }
  const keys: Record<string, string> = {}
  let first: string | undefined
  for (const part of raw.split(',')) {
    const at = part.indexOf(':')
    if (at <= 0)
      throw new ValidationError(`${keysVar} must be a list of id:base64`, { details: { field: keysVar } })
    const id = part.slice(0, at).trim()
    if (Object.hasOwn(keys, id)) {
      // Which of two keys under one id is meant cannot be known; the id is safe to show once it is an id.
      assertId(id, 'keyId')
      throw new ValidationError(`${keysVar} names key ${id} twice`, {
        details: { field: keysVar, keyId: id },
      })
    }
    keys[id] = part.slice(at + 1).trim()
    first ??= id
  }
  return createKeyring({ currentKeyId: current?.trim() || first!, keys })
}

function variableName(value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(value)) {
    throw new ValidationError('keyringFromEnv names must be environment variable names', {
      details: { field: 'names' },
    })
  }
  return value
}

/** The two variables, each a string or undefined; an environment that throws or holds a non-string is VALIDATION. */
function readVariables(env: unknown, ...names: string[]): Array<string | undefined> {
  if (typeof env !== 'object' || env === null) {
    throw new ValidationError('env must be an object of environment variables', { details: { field: 'env' } })
  }
  return names.map((name) => {
    let value: unknown
    try {
      value = Object.hasOwn(env, name) ? (env as Record<string, unknown>)[name] : undefined
    } catch {
      // The caller's getter or proxy threw: its error is not shown (it may hold the value it guarded).
      throw new ValidationError(`env could not be read`, { details: { field: 'env' } })
    }
    if (value !== undefined && typeof value !== 'string') {
      throw new ValidationError(`${name} must be a string`, { details: { field: name } })
    }
    return value
  })
}

/** A fresh random key in base64, for `USER_ENGINE_KEYS` and for tests. */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString('base64')
}

/** The key with this id, or KEY_NOT_FOUND (the message names the id only). */
export function keyFor(keyring: Keyring, keyId: string): Uint8Array {
  const key = Object.hasOwn(keyring.keys, keyId) ? keyring.keys[keyId] : undefined
  if (key === undefined) {
    throw new UserEngineError(ErrorCode.KEY_NOT_FOUND, `key ${keyId} is not in the keyring`, {
      details: { keyId },
    })
  }
  return key
}
