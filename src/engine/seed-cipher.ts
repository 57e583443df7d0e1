import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { ErrorCode, UserEngineError } from '../domain/errors.js'
import type { JsonValue } from '../domain/records.js'
import { type Keyring, keyFor } from './keyring.js'

/** What a TOTP factor's `secret` holds: the seed sealed with AES-256-GCM, plus the id of the key. */
export interface SealedSeed {
  readonly [key: string]: JsonValue
  readonly v: 1
  readonly alg: 'A256GCM'
  readonly keyId: string
  readonly iv: string
  readonly tag: string
  readonly ciphertext: string
}

/**
 * Encrypts under the keyring's current key. `context` is bound as associated data (tenant, user, factor ids),
 * so a sealed seed copied onto another factor or user does not decrypt.
 */
export function sealSeed(keyring: Keyring, seed: Uint8Array, context: string): SealedSeed {
  const keyId = keyring.currentKeyId
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keyFor(keyring, keyId), iv)
  cipher.setAAD(Buffer.from(context, 'utf8'))
  const ciphertext = Buffer.concat([cipher.update(seed), cipher.final()])
  return {
    v: 1,
    alg: 'A256GCM',
    keyId,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  }
}

/** Decrypts with the key the seed names (old keys still work); KEY_NOT_FOUND when that key is gone. */
export function openSeed(
  keyring: Keyring,
  sealed: { readonly [key: string]: JsonValue },
  context: string,
): Buffer {
  const { keyId, iv, tag, ciphertext, alg } = sealed
  if (
    alg !== 'A256GCM' ||
    typeof keyId !== 'string' ||
    typeof iv !== 'string' ||
    typeof tag !== 'string' ||
    typeof ciphertext !== 'string'
  ) {
    throw new UserEngineError(ErrorCode.DATA_CORRUPTED, 'stored seed has an unknown format')
  }
  const decipher = createDecipheriv('aes-256-gcm', keyFor(keyring, keyId), Buffer.from(iv, 'base64'))
  decipher.setAAD(Buffer.from(context, 'utf8'))
  decipher.setAuthTag(Buffer.from(tag, 'base64'))
  try {
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64')), decipher.final()])
  } catch (cause) {
    // Wrong key bytes under a known id, or a tampered record: never fall back to anything.
    throw new UserEngineError(ErrorCode.KEY_NOT_FOUND, `stored seed does not decrypt under key ${keyId}`, {
      details: { keyId },
      cause,
    })
  }
}
