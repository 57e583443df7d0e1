import { redactCredentials } from '../domain/redact-credentials.js'

/** An error as text for `lastError` and logs: name, code and message only, bounded, credentials masked. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const head = typeof code === 'string' || typeof code === 'number' ? `${error.name} ${code}` : error.name
    return redactCredentials(`${head}: ${error.message}`).slice(0, 300)
  }
  return `non-error thrown: ${typeof error}`
}

/** The relay's onError when none is given: one line on stderr, never a payload. */
export function defaultOnError(error: unknown): void {
  process.stderr.write(`user-engine relay: ${describeError(error)}\n`)
}

/** How deep a cause chain is copied; deeper causes are dropped. */
const MAX_CAUSE_DEPTH = 5

/**
 * A copy of `error` fit to keep as an error's `cause`: its name, code, status, message and stack with
 * credentials masked (see redactCredentials), and its own cause copied the same way. Nothing else is kept: a
 * driver's error can hold the raw input (a URL parser's `input`, a client's options) that `util.inspect`, and
 * so most loggers, would print whole.
 */
export function redactedError(error: unknown, secrets: readonly string[] = [], depth = 0): unknown {
  if (!(error instanceof Error)) {
    return typeof error === 'string' ? redactCredentials(error, secrets) : `non-error thrown: ${typeof error}`
  }
  const redact = (text: string) => redactCredentials(text, secrets)
  const cause =
    error.cause === undefined || depth + 1 >= MAX_CAUSE_DEPTH
      ? undefined
      : { cause: redactedError(error.cause, secrets, depth + 1) }
  const copy = new Error(redact(error.message), cause)
  // As on the original: not enumerable, so inspect shows it through the stack's first line only.
  Object.defineProperty(copy, 'name', { value: error.name, writable: true, configurable: true })
  copy.stack = error.stack === undefined ? undefined : redact(error.stack)
  // Kept for whoever branches on them (isNatsUnreachable reads code and status along the chain).
  for (const key of ['code', 'status'] as const) {
    const value = (error as { [k in typeof key]?: unknown })[key]
    if (typeof value === 'number') Object.assign(copy, { [key]: value })
    else if (typeof value === 'string') Object.assign(copy, { [key]: redact(value) })
  }
  return copy
}
