import { randomBytes } from 'node:crypto'
import {
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  readlinkSync,
  unlinkSync,
  utimes,
  writeSync,
} from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { ErrorCode, UserEngineError } from '../../../domain/errors.js'
import { errnoCode, fsFailure } from './fs-failure.js'

/** The lock file in a PGlite data directory: one process at a time opens the database. */
export const PGLITE_LOCK_FILE = 'user-engine.lock'

// How the lock works.
//
// `user-engine.lock` inside the data directory (writable wherever the database is: a volume root, a
// systemd StateDirectory), created with O_EXCL. A holder is live while:
//  - on this host and pid namespace: its pid exists (signal 0) and, on Linux, started when the lock says
//    (a reused pid is not the holder; in a container a restarted service often gets the same pid);
//  - elsewhere (another container or host sharing the volume, where pids mean nothing): its lock file was
//    refreshed within FOREIGN_STALE_MS; holders refresh it every HEARTBEAT_MS.
// A lock whose holder is not live is stale and is removed under `user-engine.lock.recover`, itself taken with
// O_EXCL, so that of two processes recovering at once exactly one creates the new lock.

const HEARTBEAT_MS = 10_000
const FOREIGN_STALE_MS = 60_000
/** An unreadable lock younger than this is being written by its creator. */
const WRITING_GRACE_MS = 2_000
/** A recovery guard older than this was left by a process that died while recovering. */
const RECOVERY_STALE_MS = 10_000
const ACQUIRE_TIMEOUT_MS = RECOVERY_STALE_MS + 2_000

interface LockHolder {
  readonly pid: number
  readonly hostname: string
  /** Linux: the pid namespace (`pid:[inode]`): containers sharing a volume and a hostname differ here. */
  readonly pidNamespace?: string
  /** Linux: the process start in clock ticks after boot (/proc/PID/stat field 22). */
  readonly startTicks?: number
  /** The process start, ISO 8601 (approximate: now minus uptime). */
  readonly started: string
  /** Random per lock, so that a release removes only its own file. */
  readonly token: string
}

export interface HeldLock {
  readonly path: string
  release(): void
}

function readStartTicks(pid: number | 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 2 (the command) is in parentheses and may hold spaces; field 22 is the 20th after it.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    return Number.isSafeInteger(ticks) ? ticks : undefined
  } catch {
    return undefined
  }
}

let ownIdentity: Omit<LockHolder, 'token'> | undefined
function identity(): Omit<LockHolder, 'token'> {
  if (ownIdentity === undefined) {
    let pidNamespace: string | undefined
    try {
      pidNamespace = readlinkSync('/proc/self/ns/pid')
    } catch {
      pidNamespace = undefined
    }
    const startTicks = readStartTicks('self')
    ownIdentity = {
      pid: process.pid,
      hostname: hostname(),
      ...(pidNamespace === undefined ? {} : { pidNamespace }),
      ...(startTicks === undefined ? {} : { startTicks }),
      started: new Date(Date.now() - process.uptime() * 1000).toISOString(),
    }
  }
  return ownIdentity
}

function parseHolder(text: string): LockHolder | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const o = value as Record<string, unknown>
  // A pid of 0 or below would make signal 0 probe a process group.
  if (typeof o.pid !== 'number' || !Number.isSafeInteger(o.pid) || o.pid <= 0) return undefined
  if (typeof o.hostname !== 'string' || typeof o.started !== 'string' || typeof o.token !== 'string') {
    return undefined
  }
  return {
    pid: o.pid,
    hostname: o.hostname,
    started: o.started,
    token: o.token,
    ...(typeof o.pidNamespace === 'string' ? { pidNamespace: o.pidNamespace } : {}),
    ...(typeof o.startTicks === 'number' && Number.isSafeInteger(o.startTicks)
      ? { startTicks: o.startTicks }
      : {}),
  }
}

function sameScope(holder: LockHolder): boolean {
  const me = identity()
  if (holder.hostname !== me.hostname) return false
  return (
    holder.pidNamespace === undefined ||
    me.pidNamespace === undefined ||
    holder.pidNamespace === me.pidNamespace
  )
}

function isLive(holder: LockHolder, ageMs: number): boolean {
  if (!sameScope(holder)) return ageMs < FOREIGN_STALE_MS
  const me = identity()
  if (holder.pid === me.pid) {
    // This process (another module copy or worker thread), or an earlier process that had the same pid.
    if (holder.startTicks !== undefined && me.startTicks !== undefined)
      return holder.startTicks === me.startTicks
    return Math.abs(Date.parse(holder.started) - Date.parse(me.started)) < 2_000
  }
  try {
    process.kill(holder.pid, 0)
  } catch (error) {
    // EPERM: the process exists under another user.
    if (errnoCode(error) === 'ESRCH') return false
  }
  if (holder.startTicks !== undefined) {
    const ticks = readStartTicks(holder.pid)
    if (ticks !== undefined && ticks !== holder.startTicks) return false
  }
  return true
}

/** Creates `path` with O_EXCL holding `text`; false if it exists. */
function createExclusive(path: string, text: string): boolean {
  let fd: number
  try {
    fd = openSync(path, 'wx', 0o600)
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false
    throw fsFailure(error, 'create the lock file', path)
  }
  try {
    writeSync(fd, text)
  } catch (error) {
    closeSync(fd)
    unlinkQuietly(path)
    throw fsFailure(error, 'write the lock file', path)
  }
  closeSync(fd)
  return true
}

interface SeenLock {
  readonly raw: string
  readonly holder: LockHolder | undefined
  readonly ageMs: number
}

function readLock(path: string): SeenLock | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined
    throw fsFailure(error, 'read the lock file', path)
  }
  try {
    const ageMs = Date.now() - fstatSync(fd).mtimeMs
    const raw = readFileSync(fd, 'utf8')
    return { raw, holder: parseHolder(raw), ageMs }
  } finally {
    closeSync(fd)
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path)
  } catch {
    // Gone already, or not ours to remove: either way nothing to do.
  }
}

/** Removes `path` if it still holds `raw`; true when the caller should try to create the lock again. */
function removeStale(path: string, raw: string, text: string): boolean {
  const guard = `${path}.recover`
  if (!createExclusive(guard, text)) {
    const other = readLock(guard)
    if (other !== undefined && other.ageMs > RECOVERY_STALE_MS) unlinkQuietly(guard)
    return false
  }
  try {
    if (readLock(path)?.raw === raw) unlinkQuietly(path)
  } finally {
    unlinkQuietly(guard)
  }
  return true
}

const LOCKS_KEY = Symbol.for('user-engine.pglite.data-dir-locks')

/** Locks this process holds, shared by every copy of this module in the realm. */
function heldLocks(): Map<string, HeldLock> {
  const g = globalThis as unknown as Record<symbol, Map<string, HeldLock> | undefined>
  let held = g[LOCKS_KEY]
  if (held === undefined) {
    const map = new Map<string, HeldLock>()
    held = map
    g[LOCKS_KEY] = map
    // Best effort on a normal exit; after a crash or a signal the next opener finds the lock stale.
    process.once('exit', () => {
      for (const lock of [...map.values()]) lock.release()
    })
  }
  return held
}

function lockedError(dir: string, path: string, holder: LockHolder, ageMs: number): UserEngineError {
  const single =
    'PGlite is single-process: one data directory is open in one process, through one store, at a time'
  const several =
    'use the PostgreSQL server store (createNodePostgresStore, or --database-url postgres://...) when several processes share the data'
  if (holder.pid === process.pid && sameScope(holder)) {
    return new UserEngineError(
      ErrorCode.STORE_LOCKED,
      `the PGlite data directory ${dir} is already open in this process (pid ${holder.pid}). ${single}; share the open store or close it first`,
      { details: { pid: holder.pid, lockFile: path } },
    )
  }
  if (!sameScope(holder)) {
    const seconds = Math.max(0, Math.round(ageMs / 1000))
    return new UserEngineError(
      ErrorCode.STORE_LOCKED,
      `the PGlite data directory ${dir} is in use by process ${holder.pid} on host ${holder.hostname} (its lock was refreshed ${seconds} s ago; it counts as stale ${FOREIGN_STALE_MS / 1000} s after the last refresh). ${single}; stop that process, or ${several}`,
      { details: { pid: holder.pid, hostname: holder.hostname, lockFile: path } },
    )
  }
  return new UserEngineError(
    ErrorCode.STORE_LOCKED,
    `the PGlite data directory ${dir} is in use by process ${holder.pid}. ${single}; stop that process first, or ${several}`,
    { details: { pid: holder.pid, lockFile: path } },
  )
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Takes the data directory's lock, recovering a stale one, or raises STORE_LOCKED naming the holder. */
export async function acquireLock(dir: string): Promise<HeldLock> {
  const path = join(dir, PGLITE_LOCK_FILE)
  const held = heldLocks()
  const token = randomBytes(16).toString('hex')
  const text = `${JSON.stringify({ ...identity(), token } satisfies LockHolder)}\n`
  const own = held.get(path)
  if (own !== undefined) throw lockedError(dir, path, { ...identity(), token }, 0)
  const deadline = Date.now() + ACQUIRE_TIMEOUT_MS
  for (;;) {
    if (createExclusive(path, text)) break
    const seen = readLock(path)
    if (seen !== undefined) {
      if (seen.holder !== undefined && isLive(seen.holder, seen.ageMs)) {
        throw lockedError(dir, path, seen.holder, seen.ageMs)
      }
      const beingWritten = seen.holder === undefined && seen.ageMs < WRITING_GRACE_MS
      if (!beingWritten && removeStale(path, seen.raw, text)) continue
    }
    if (Date.now() > deadline) {
      throw new UserEngineError(
        ErrorCode.STORE_LOCKED,
        `could not lock the PGlite data directory ${dir}: other processes kept opening or recovering it for ${ACQUIRE_TIMEOUT_MS / 1000} s`,
        { details: { lockFile: path } },
      )
    }
    await sleep(25)
  }
  const heartbeat = setInterval(() => {
    const now = new Date()
    utimes(path, now, now, () => {})
  }, HEARTBEAT_MS)
  heartbeat.unref()
  let released = false
  const lock: HeldLock = {
    path,
    release() {
      if (released) return
      released = true
      clearInterval(heartbeat)
      if (held.get(path) === lock) held.delete(path)
      // Not a lock someone took over (a foreign host after this process stalled past FOREIGN_STALE_MS).
      try {
        if (parseHolder(readFileSync(path, 'utf8'))?.token === token) unlinkSync(path)
      } catch {
        // Gone already.
      }
    },
  }
  held.set(path, lock)
  return lock
}
