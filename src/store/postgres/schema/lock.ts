import { randomBytes } from 'node:crypto'
import { ErrorCode, UserEngineError } from '../../../domain/errors.js'
import type { SqlSession } from '../driver/driver.js'

/** The advisory lock key every user-engine migrator takes (one per database). */
export const MIGRATION_LOCK_KEY = '7305392647001'

const MAX_BACKOFF_MS = 200

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * A session setting naming the migrator that holds the lock on a server connection. Advisory locks are
 * re-entrant per server connection: through a pooler, a second migrator handed the holder's connection would
 * get the lock "again". The owner setting, written in the statement that takes the lock, tells it apart.
 */
const OWNER_SETTING = 'user_engine.migration_lock_owner'

// One statement, so the check, the lock and the owner land on one server connection. A CTE with volatile
// functions is evaluated once, before the outer query reads it.
const TRY_LOCK = `WITH here AS (
    SELECT pg_backend_pid() AS pid, coalesce(current_setting('${OWNER_SETTING}', true), '') AS owner),
  attempt AS (
    SELECT pid, owner, CASE WHEN owner = '' THEN pg_try_advisory_lock($1::bigint) ELSE false END AS locked
    FROM here)
  SELECT pid, owner, locked, CASE WHEN locked THEN set_config('${OWNER_SETTING}', $2, false) END AS claimed
  FROM attempt`

/** The lock as one migrator holds it: the server process that took it, and the migrator's own token. */
export interface HeldLock {
  readonly key: string
  readonly backendPid: number
  readonly owner: string
  readonly waitedMs: number
}

function movedError(message: string, details: Record<string, number | string | boolean>): UserEngineError {
  return new UserEngineError(
    ErrorCode.POOLED_CONNECTION,
    `${message}. Use a direct connection to the server for migrate (USER_ENGINE_MIGRATION_URL). On its way out the migrator unlocks, or closes the idle pooled server connection holding its lock when no unlock lands there`,
    { details },
  )
}

/**
 * Takes a session-level advisory lock by polling `pg_try_advisory_lock` with capped exponential backoff.
 * Never a blocking `pg_advisory_lock`: a session waiting on it holds a snapshot that CREATE INDEX
 * CONCURRENTLY (run by the lock holder) waits for, a deadlock no timeout on our side would see.
 * Returns how long it waited, the server process holding the lock and the owner token; throws
 * MIGRATION_LOCK_TIMEOUT after `timeoutMs`, and POOLED_CONNECTION when the server connection it landed on
 * holds another migrator's lock (only a pooler hands one session's server connection to another client).
 */
export async function acquireAdvisoryLock(
  session: SqlSession,
  options: { key?: string; timeoutMs: number; onWait?: (waitedMs: number) => void },
): Promise<HeldLock> {
  const key = options.key ?? MIGRATION_LOCK_KEY
  const owner = randomBytes(12).toString('hex')
  const started = Date.now()
  let delay = 5
  for (;;) {
    const { rows } = await session.query<{ locked: boolean; pid: number; owner: string }>(TRY_LOCK, [
      key,
      owner,
    ])
    const waited = Date.now() - started
    const row = rows[0]
    if (row !== undefined && row.owner !== '') {
      throw movedError(
        'this server connection already holds the migration lock for another migrator (a pooler handed it on)',
        { backendPid: Number(row.pid), lockKey: key },
      )
    }
    if (row?.locked === true) return { key, backendPid: Number(row.pid), owner, waitedMs: waited }
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
 * Checks that the session still talks to the server process that took the lock, as the migrator that took
 * it. A transaction-mode pooler (PgBouncer `pool_mode = transaction`) hands each transaction to any server
 * connection: the lock would then protect nothing, so schema work refuses with POOLED_CONNECTION before its
 * next step.
 */
export async function assertLockHolder(session: SqlSession, lock: HeldLock): Promise<void> {
  const { rows } = await session.query<{ pid: number; owner: string | null }>(
    `SELECT pg_backend_pid() AS pid, current_setting('${OWNER_SETTING}', true) AS owner`,
  )
  const pid = Number(rows[0]?.pid)
  if (pid !== lock.backendPid || rows[0]?.owner !== lock.owner) {
    throw movedError(
      'schema work moved between server connections (a transaction-mode pooler?): the migration lock would protect nothing, so nothing more was applied',
      { lockBackendPid: lock.backendPid, backendPid: pid },
    )
  }
}

// Unlocks when this server connection holds the lock for this migrator; says whether the holder's server
// process still holds it (through a pooler the statement may land elsewhere).
const RELEASE = `SELECT
    CASE WHEN current_setting('${OWNER_SETTING}', true) = $2
      THEN pg_advisory_unlock($1::bigint) AND set_config('${OWNER_SETTING}', '', false) = '' END AS released,
    EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = $3 AND objsubid = 1
      AND ((classid::bigint << 32) | objid::bigint) = $1::bigint) AS held`

// The last resort when no unlock lands on the holder: its server connection, idle in a pooler's pool and
// holding this lock, is closed, which releases the lock. Never one running a statement.
const CLOSE_IDLE_HOLDER = `SELECT pg_terminate_backend(a.pid) AS closed FROM pg_stat_activity a
  WHERE a.pid = $2 AND a.state = 'idle' AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'
    AND l.pid = a.pid AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint)`

/**
 * Releases the lock when this server connection holds it for `lock`'s migrator (another migrator's lock is
 * not ours to drop). Through a pooler the unlock may land on another server connection: it is sent again
 * until the holder's server process no longer holds the lock; after `retryMs / 2` that process is closed
 * instead when it is idle (a pooler's spare connection: closing it is what releases the lock). Returns false
 * when the lock is still held after `retryMs`. A failed statement means the connection is gone, and with it
 * the lock.
 */
export async function releaseAdvisoryLock(
  session: SqlSession,
  lock: HeldLock,
  retryMs = 3000,
): Promise<boolean> {
  const started = Date.now()
  for (;;) {
    try {
      const { rows } = await session.query<{ released: boolean | null; held: boolean }>(RELEASE, [
        lock.key,
        lock.owner,
        lock.backendPid,
      ])
      if (rows[0]?.released === true || rows[0]?.held !== true) return true
      if (Date.now() - started >= retryMs / 2) {
        await session.query(CLOSE_IDLE_HOLDER, [lock.key, lock.backendPid])
      }
    } catch {
      return true
    }
    if (Date.now() - started >= retryMs) return false
    await sleep(10)
  }
}
