import { ErrorCode, UserEngineError } from '../../../domain/errors.js'
import type { SqlSession } from '../driver/driver.js'

/** The advisory lock key every user-engine migrator takes (one per database). */
export const MIGRATION_LOCK_KEY = '7305392647001'

const MAX_BACKOFF_MS = 200

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Takes a session-level advisory lock by polling `pg_try_advisory_lock` with capped exponential backoff.
 * Never a blocking `pg_advisory_lock`: a session waiting on it holds a snapshot that CREATE INDEX
 * CONCURRENTLY (run by the lock holder) waits for, a deadlock no timeout on our side would see.
 * Returns how long it waited and the server process holding the lock; throws MIGRATION_LOCK_TIMEOUT after
 * `timeoutMs`.
 */
export async function acquireAdvisoryLock(
  session: SqlSession,
  options: { key?: string; timeoutMs: number; onWait?: (waitedMs: number) => void },
): Promise<{ waitedMs: number; backendPid: number }> {
  const key = options.key ?? MIGRATION_LOCK_KEY
  const started = Date.now()
  let delay = 5
  for (;;) {
    const { rows } = await session.query<{ locked: boolean; pid: number }>(
      'SELECT pg_try_advisory_lock($1::bigint) AS locked, pg_backend_pid() AS pid',
      [key],
    )
    const waited = Date.now() - started
    if (rows[0]?.locked === true) return { waitedMs: waited, backendPid: Number(rows[0].pid) }
    if (waited >= options.timeoutMs) {
      throw new UserEngineError(
        ErrorCode.MIGRATION_LOCK_TIMEOUT,
        `another process held the migration lock for more than ${options.timeoutMs} ms`,
        { details: { lockTimeoutMs: options.timeoutMs, lockKey: key } },
      )
    }
    options.onWait?.(waited)
    // Jitter spreads several waiting migrators apart.
    await sleep(Math.min(delay + Math.random() * delay, options.timeoutMs - waited, MAX_BACKOFF_MS))
    delay = Math.min(delay * 2, MAX_BACKOFF_MS)
  }
}

/**
 * Checks that the session still talks to the server process that took the lock. A transaction-mode pooler
 * (PgBouncer `pool_mode = transaction`) hands each transaction to any server connection: the lock would
 * then protect nothing, so schema work refuses with POOLED_CONNECTION before its next step.
 */
export async function assertLockHolder(session: SqlSession, backendPid: number): Promise<void> {
  const { rows } = await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  const pid = Number(rows[0]?.pid)
  if (pid !== backendPid) {
    throw new UserEngineError(
      ErrorCode.POOLED_CONNECTION,
      'schema work moved between server connections (a transaction-mode pooler?): the migration lock would protect nothing, so nothing more was applied. Use a direct connection to the server for migrate (USER_ENGINE_MIGRATION_URL); the pooled connection holding the lock keeps it until it is closed',
      { details: { lockBackendPid: backendPid, backendPid: pid } },
    )
  }
}

/** Releases the lock; a failure is ignored because a dead session has released it already. */
export async function releaseAdvisoryLock(
  session: SqlSession,
  key: string = MIGRATION_LOCK_KEY,
): Promise<void> {
  try {
    await session.query('SELECT pg_advisory_unlock($1::bigint)', [key])
  } catch {
    // The connection is gone, and with it the lock.
  }
}
