import assert from 'node:assert/strict'
import { ErrorCode } from '../../domain/errors.js'

export { assert }

const CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode))

/**
 * The library error code of a thrown value, or null. Duck-typed rather than `instanceof UserEngineError`: a
 * provider's store may load its own copy of user-engine, and a driver error's own `code` (a SQLSTATE) is not
 * one of ours.
 */
export function errorCode(error: unknown): string | null {
  if (!(error instanceof Error)) return null
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && CODES.has(code) ? code : null
}

/** Awaits `action` and asserts it fails with a library error of `code`; returns the error. */
export async function expectCode(
  action: Promise<unknown> | (() => Promise<unknown>),
  code: string,
  what: string,
) {
  let settled: { ok: true; value: unknown } | { ok: false; error: unknown }
  try {
    settled = { ok: true, value: await (typeof action === 'function' ? action() : action) }
  } catch (error) {
    settled = { ok: false, error }
  }
  if (settled.ok) assert.fail(`${what}: expected a ${code} error, but it succeeded`)
  const actual = errorCode(settled.error)
  if (actual !== code) {
    const described =
      settled.error instanceof Error
        ? `${settled.error.name}: ${settled.error.message}`
        : String(settled.error)
    assert.fail(`${what}: expected a ${code} error, got ${actual ?? 'a non-library error'} (${described})`)
  }
  return settled.error as Error & { code: string }
}

/**
 * Awaits `action`, which must succeed; a store error is reported with `what` (the step the case expected to
 * work), not only the store's own message and stack.
 */
export async function expectOk<T>(action: Promise<T> | (() => Promise<T>), what: string): Promise<T> {
  try {
    return await (typeof action === 'function' ? action() : action)
  } catch (error) {
    const code = errorCode(error)
    const described = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    assert.fail(`${what}: expected it to succeed, got ${code ?? 'a non-library error'} (${described})`)
  }
}

/** Asserts a record read back is absent. */
export function expectNull(value: unknown, what: string): void {
  assert.equal(value, null, `${what}: expected null, got a value`)
}

/** Asserts a page is empty and has no next cursor. */
export function expectEmptyPage(page: { items: unknown[]; nextCursor: string | null }, what: string): void {
  assert.equal(page.items.length, 0, `${what}: expected no items, got ${page.items.length}`)
  assert.equal(page.nextCursor, null, `${what}: expected no next cursor`)
}

/** Resolves after `ms`; only for waiting out a lease or a backoff, never to order concurrent work. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Fails with `message` when `promise` has not settled within `ms`: a case that drives interleavings must fail
 * with a reason, not hang, when a store serializes what the contract says may interleave.
 */
export async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} (no progress within ${ms} ms)`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
