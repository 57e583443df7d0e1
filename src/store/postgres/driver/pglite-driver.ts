import { chmodSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { ErrorCode, UserEngineError, ValidationError } from '../../../domain/errors.js'
import { yieldIfBusy } from '../../../domain/event-loop-turns.js'
import { importOptional } from '../../../domain/optional-import.js'
import { isStorableText } from '../../../domain/validation.js'
import { acquireLock, type HeldLock, PGLITE_LOCK_FILE } from './data-dir-lock.js'
import type { SqlDriver, SqlResult, SqlSession } from './driver.js'
import { errnoCode, fsFailure } from './fs-failure.js'
import { statementName } from './statement-names.js'

/** The part of a PGlite instance the driver uses, typed structurally so the package stays optional. */
export interface PGliteLike {
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>
  exec(sql: string): Promise<unknown>
  close(): Promise<void>
  readonly closed?: boolean
  /** PGlite's wire-protocol entry and its lock (what `queryText` prepares statements with), when present. */
  execProtocol?(message: Uint8Array): Promise<{ messages: readonly { name: string }[] }>
  runExclusive?<T>(fn: () => Promise<T>): Promise<T>
}

/** The part of PGlite's `protocol.serialize` (pg-protocol's) that `queryText` writes with. */
interface ProtocolSerializer {
  parse(message: { name: string; text: string; types: number[] }): Uint8Array
  bind(message: { statement: string; values: string[] }): Uint8Array
  execute(message: Record<string, never>): Uint8Array
  sync(): Uint8Array
}

export interface PgliteDriverOptions {
  /**
   * A directory to keep the database in; omitted, the database lives in memory. One process at a time:
   * the driver holds `user-engine.lock` inside it while open (STORE_LOCKED for any other opener).
   */
  readonly dataDir?: string
  /** An instance the caller owns: `close()` leaves it open, and the caller keeps it single-process. */
  readonly db?: PGliteLike
}

/**
 * Postgres settings on top of PGlite's own start parameters. PGlite keeps Postgres' 128 MB of
 * shared_buffers, which become resident as pages are read; 16 MB holds a small store's working set, and
 * reads past it come from the OS page cache. Measured by bench/pglite-memory.ts.
 */
export const PGLITE_START_SETTINGS: readonly string[] = ['-c', 'shared_buffers=16MB']

const PGLITE_PACKAGE = '@electric-sql/pglite'

/**
 * A driver over embedded PGlite. PGlite is one connection, so every query and every session is
 * serialized through one queue: a session (BEGIN ... COMMIT, an advisory lock) has the connection to
 * itself until it ends, and nothing else interleaves with it.
 *
 * PGlite is single-process: two instances on one data directory corrupt it. Opening a directory that a
 * live process holds (this one included) raises STORE_LOCKED at once, naming the holder's pid; a lock left
 * by a process that died is recovered. A `dataDir` that is not a usable directory path raises VALIDATION,
 * one this process may not create or write STORE_UNAVAILABLE, and a missing `@electric-sql/pglite` package
 * DEPENDENCY_MISSING.
 */
export async function createPgliteDriver(options: PgliteDriverOptions = {}): Promise<SqlDriver> {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('createPgliteDriver options must be an object', {
      details: { field: 'options' },
    })
  }
  let db = options.db
  const owned = db === undefined
  let lock: HeldLock | undefined
  if (db === undefined) {
    const requested = options.dataDir === undefined ? undefined : checkDataDir(options.dataDir)
    const { PGlite } = await importOptional(
      () => import('@electric-sql/pglite'),
      PGLITE_PACKAGE,
      'the embedded PGlite store',
    )
    const dir = requested === undefined ? undefined : prepareDataDir(requested)
    if (dir !== undefined) {
      lock = await acquireLock(dir)
      try {
        assertDatabaseOrEmpty(dir)
        restrictToOwner(dir)
      } catch (error) {
        lock.release()
        throw error
      }
    }
    let created: InstanceType<typeof PGlite> | undefined
    try {
      created = new PGlite({
        ...(dir === undefined ? {} : { dataDir: dir }),
        startParams: [...PGlite.defaultStartParams, ...PGLITE_START_SETTINGS],
      })
      await created.waitReady
    } catch (error) {
      await created?.close().catch(() => {})
      lock?.release()
      throw new UserEngineError(
        ErrorCode.STORE_UNAVAILABLE,
        `PGlite could not open ${dir === undefined ? 'an in-memory database' : `the data directory ${dir}`} (${describeFailure(error)})`,
        { cause: error },
      )
    }
    db = created as unknown as PGliteLike
  } else if (options.dataDir !== undefined) {
    throw new ValidationError('give createPgliteDriver dataDir or db, not both', {
      details: { field: 'dataDir' },
    })
  }
  const conn = db
  let tail: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const step = () => yieldIfBusy().then(fn)
    const run = tail.then(step, step)
    // The queue continues whether this step succeeds or fails.
    tail = run.catch(() => {})
    return run
  }
  const session: SqlSession = {
    query: async <R>(sql: string, params?: readonly unknown[]): Promise<SqlResult<R>> => {
      const r = await conn.query<R>(sql, params === undefined ? undefined : [...params])
      return { rows: r.rows, rowCount: r.affectedRows ?? 0 }
    },
    exec: async (sql: string) => {
      await conn.exec(sql)
    },
  }
  const prepared = await preparedTextQuery(conn)
  let closed = false
  return {
    kind: 'pglite',
    query: (sql, params) => exclusive(() => session.query(sql, params)),
    ...(prepared === undefined
      ? {}
      : { queryText: (sql: string, params: readonly string[]) => exclusive(() => prepared(sql, params)) }),
    exec: (sql) => exclusive(() => session.exec(sql)),
    session: (fn) => exclusive(() => fn(session)),
    async close() {
      if (closed) return
      closed = true
      try {
        if (owned) await exclusive(() => conn.close())
      } finally {
        // Only once PGlite has flushed and let go of the files may another process open them.
        lock?.release()
      }
    },
  }
}

/**
 * `queryText` on PGlite: `query` parses and plans every statement again (PGlite has no prepared-statement API),
 * which for findSession's join costs more than running it. This sends Parse once per statement (named by
 * `statementName`, so drivers sharing one instance agree), then Bind, Execute and Sync, through PGlite's
 * wire-protocol entry under its lock. Undefined when the instance or the package offers no such entry.
 */
async function preparedTextQuery(
  db: PGliteLike,
): Promise<((sql: string, params: readonly string[]) => Promise<(string | null)[][]>) | undefined> {
  const { execProtocol, runExclusive } = db
  if (typeof execProtocol !== 'function' || typeof runExclusive !== 'function') return undefined
  let serialize: ProtocolSerializer
  try {
    serialize = (await import('@electric-sql/pglite')).protocol.serialize as unknown as ProtocolSerializer
  } catch {
    return undefined
  }
  const locked = <T>(fn: () => Promise<T>) => runExclusive.call(db, fn) as Promise<T>
  const parsed = new Set<string>()
  const send = async (name: string, sql: string, params: readonly string[], parse: boolean) => {
    const parts = [
      ...(parse ? [serialize.parse({ name, text: sql, types: [] })] : []),
      serialize.bind({ statement: name, values: [...params] }),
      serialize.execute({}),
      serialize.sync(),
    ]
    const message = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
    let at = 0
    for (const part of parts) {
      message.set(part, at)
      at += part.length
    }
    const { messages } = await execProtocol.call(db, message)
    parsed.add(name)
    const rows: (string | null)[][] = []
    for (const m of messages)
      if (m.name === 'dataRow') rows.push((m as { fields?: (string | null)[] }).fields ?? [])
    return rows
  }
  return (sql, params) =>
    locked(async () => {
      const name = statementName(sql)
      const parse = !parsed.has(name)
      try {
        return await send(name, sql, params, parse)
      } catch (error) {
        // Prepared already (another driver on this instance: the same text) or gone (DEALLOCATE): once more.
        const code = (error as { code?: unknown } | null)?.code
        if (code === '42P05' && parse) return send(name, sql, params, false)
        if (code === '26000' && !parse) return send(name, sql, params, true)
        throw error
      }
    })
}

/** A short reason for a PGlite startup failure (its ErrnoErrors stringify as "[object Object]"). */
function describeFailure(error: unknown): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>
  const parts = [
    typeof e.name === 'string' ? e.name : undefined,
    typeof e.errno === 'number' ? `errno ${e.errno}` : undefined,
    typeof e.message === 'string' && e.message !== '' && e.message !== '[object Object]'
      ? e.message.slice(0, 200)
      : undefined,
  ].filter((p) => p !== undefined)
  return parts.length === 0 ? String(error).slice(0, 200) : parts.join(': ')
}

// ---- the data directory ---------------------------------------------------------------------------------

/** Type and shape only, before anything is loaded or created. Returns the absolute path. */
function checkDataDir(value: unknown): string {
  const memory = 'leave dataDir out for an in-memory database'
  if (typeof value !== 'string') {
    throw new ValidationError(`dataDir must be a string (a directory path); ${memory}`, {
      details: { field: 'dataDir' },
    })
  }
  if (value.trim() === '') {
    throw new ValidationError(`dataDir is empty: give a directory path, or ${memory}`, {
      details: { field: 'dataDir' },
    })
  }
  // A NUL ends a path early; other control characters and lone surrogates make names that print or compare
  // as something else (a newline splits a log line; U+D800 is written as U+FFFD).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value) || !isStorableText(value)) {
    throw new ValidationError('dataDir must not contain a NUL, a control character or a lone surrogate', {
      details: { field: 'dataDir' },
    })
  }
  // PGlite reads memory://, idb://, file:// ... as other storage; a path is the only thing this driver locks.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new ValidationError(`dataDir must be a filesystem path, not a URL; ${memory}`, {
      details: { field: 'dataDir' },
    })
  }
  return resolve(value)
}

// What may sit in a directory PGlite has not initialized yet: a mount point's lost+found, dot files, a lock.
const tolerated = (name: string) =>
  name === 'lost+found' || name.startsWith('.') || name.startsWith(PGLITE_LOCK_FILE)

/**
 * Creates the directory if it is missing (parents too; the directory itself 0700: it holds every user's
 * data) and returns its real path, so that two spellings of one directory are one lock. Refuses a file.
 */
function prepareDataDir(path: string): string {
  let stats: ReturnType<typeof statSync> | undefined
  try {
    stats = statSync(path)
  } catch (error) {
    if (errnoCode(error) === 'ENOTDIR') throw notADirectory(path, 'a parent of it is a file')
    if (errnoCode(error) !== 'ENOENT') throw fsFailure(error, 'read the PGlite data directory', path)
  }
  if (stats === undefined) {
    try {
      makeParents(path)
      mkdirSync(path, { mode: 0o700 })
    } catch (error) {
      const code = errnoCode(error)
      if (code === 'ENOTDIR') throw notADirectory(path, 'a parent of it is a file')
      // EEXIST: created meanwhile by another opener (fine if a directory), or a parent is a file.
      if (code !== 'EEXIST') throw fsFailure(error, 'create the PGlite data directory', path)
      if (!isDirectory(path)) throw notADirectory(path, 'a parent of it, or it, is a file')
    }
  } else if (!stats.isDirectory()) {
    throw notADirectory(path, 'it exists and is not a directory')
  }
  let real: string
  try {
    real = realpathSync(path)
  } catch (error) {
    throw fsFailure(error, 'read the PGlite data directory', path)
  }
  return real
}

/**
 * The missing parents of `path`, made one level at a time: Node's recursive mkdir never returns on some
 * paths (under /proc), where this fails at once with the level it could not make.
 */
function makeParents(path: string): void {
  const missing: string[] = []
  for (let p = dirname(path); !existsSync(p); p = dirname(p)) {
    missing.push(p)
    if (dirname(p) === p) break
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir)
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST' || !isDirectory(dir)) throw error
    }
  }
}

/**
 * PGlite creates its files readable and writable by everyone (0666, whatever the umask), so the directory
 * is what keeps other local users out of every email, password hash and sealed seed in it: like Postgres, a
 * data directory is its owner's alone (0700). One made elsewhere (a deploy script, a mounted volume) is
 * restricted on open; one this process cannot restrict is refused.
 */
function restrictToOwner(dir: string): void {
  if (process.platform === 'win32') return
  try {
    if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700)
  } catch (error) {
    throw new UserEngineError(
      ErrorCode.STORE_UNAVAILABLE,
      `the PGlite data directory ${dir} is open to other users and could not be restricted to its owner (${errnoCode(error) ?? 'unknown error'}): make it mode 0700, owned by the user this process runs as`,
      { details: { code: errnoCode(error) ?? 'unknown error' }, cause: error },
    )
  }
}

/**
 * Refuses a non-empty directory that holds no database: PGlite would spread one through it. Checked under
 * the lock, since a directory another process is initializing holds files and no PG_VERSION yet.
 */
function assertDatabaseOrEmpty(dir: string): void {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch (error) {
    throw fsFailure(error, 'read the PGlite data directory', dir)
  }
  if (!names.includes('PG_VERSION') && names.some((n) => !tolerated(n))) {
    throw new ValidationError(
      `dataDir ${dir} is not empty and holds no PGlite database (no PG_VERSION): give a new or empty directory (an interrupted first start leaves such a directory; remove it then)`,
      { details: { field: 'dataDir' } },
    )
  }
}

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

const notADirectory = (path: string, why: string) =>
  new ValidationError(`dataDir ${path} cannot be a data directory: ${why}`, { details: { field: 'dataDir' } })
