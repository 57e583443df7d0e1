import { ErrorCode, UserEngineError } from '../../../domain/errors.js'

export const errnoCode = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** STORE_UNAVAILABLE for what the process cannot do to a path (permissions, a read-only or full disk). */
export function fsFailure(error: unknown, action: string, path: string): UserEngineError {
  const code = errnoCode(error) ?? 'unknown error'
  const denied = code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
  return new UserEngineError(
    ErrorCode.STORE_UNAVAILABLE,
    `cannot ${action} ${path} (${code})${denied ? ': the PGlite data directory must be readable and writable by this process; fix its permissions or choose another dataDir' : ''}`,
    { details: { code }, cause: error },
  )
}
