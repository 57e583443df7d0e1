/** An error as text for `lastError` and logs: name, code and message only, bounded. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    const head = typeof code === 'string' || typeof code === 'number' ? `${error.name} ${code}` : error.name
    return `${head}: ${error.message}`.slice(0, 300)
  }
  return `non-error thrown: ${typeof error}`
}

/** The relay's onError when none is given: one line on stderr, never a payload. */
export function defaultOnError(error: unknown): void {
  process.stderr.write(`user-engine relay: ${describeError(error)}\n`)
}
