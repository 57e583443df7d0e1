import { createHash } from 'node:crypto'
import { ValidationError } from '../../domain/errors.js'
import { importOptional } from '../../domain/optional-import.js'
import { createPgliteDriver, PGLITE_START_SETTINGS, type PGliteLike } from './driver/pglite-driver.js'
import { MIGRATIONS } from './schema/manifest.js'
import { createMigrator } from './schema/runner.js'

/**
 * PGlite database images: a data directory dumped once per process and loaded by every new database after
 * it. Starting PGlite from nothing runs initdb (seconds); loading an image takes a fraction of that, and an
 * image at a schema version also skips its migrations. The conformance command (`conformanceStoresFor`) and
 * the project's tests use them; the store itself never does.
 */

/** A data directory as `dumpDataDir` returns it. */
export type PgliteImage = Blob

/** A PGlite instance the caller owns and closes (see `openPgliteImage`). */
export interface PgliteInstance extends PGliteLike {
  dumpDataDir(compression?: 'none' | 'gzip' | 'auto'): Promise<Blob>
}

const images = new Map<number, Promise<PgliteImage>>()

/**
 * Keeps images between processes: the project's test runner shares one directory per run, so initdb runs
 * once per run instead of once per test file. `name` changes with the migrations an image holds.
 */
export interface PgliteImageCache {
  /** The image, or undefined: the caller builds it and then calls `set`, or `abandon` if the build failed. */
  get(name: string): Promise<PgliteImage | undefined>
  set(name: string, image: PgliteImage): Promise<void>
  abandon?(name: string): Promise<void>
}

let cache: PgliteImageCache | undefined

/** Sets (or, with undefined, removes) the cache images are read from and written to. Default: none. */
export function setPgliteImageCache(next: PgliteImageCache | undefined): void {
  cache = next
}

/** The image's name: its version and a digest of what built it (the migrations up to it, the settings). */
function imageName(schemaVersion: number): string {
  const hash = createHash('sha256')
  hash.update(PGLITE_START_SETTINGS.join(' '))
  for (const m of MIGRATIONS) if (m.version <= schemaVersion) hash.update(`\n${m.version} ${m.checksum}`)
  return `v${schemaVersion}-${hash.digest('hex').slice(0, 16)}`
}

async function pgliteClass() {
  const { PGlite } = await importOptional(
    () => import('@electric-sql/pglite'),
    '@electric-sql/pglite',
    'the embedded PGlite store',
  )
  return PGlite
}

/**
 * An image whose bytes were read once. PGlite reads `loadDataDir` with `arrayBuffer()`, which for a plain Blob
 * copies the whole image in chunks on every load (a quarter of a load's CPU for a 40 MB image); PGlite only
 * parses the buffer and copies the files out of it, so one buffer serves every load.
 */
class ReadImage extends Blob {
  readonly #bytes: ArrayBuffer
  constructor(bytes: ArrayBuffer) {
    super([])
    this.#bytes = bytes
  }
  override arrayBuffer(): Promise<ArrayBuffer> {
    return Promise.resolve(this.#bytes)
  }
}

const readImages = new WeakMap<PgliteImage, Promise<Blob>>()

function readOnce(image: PgliteImage): Promise<Blob> {
  let read = readImages.get(image)
  if (read === undefined) {
    read = image.arrayBuffer().then((bytes) => new ReadImage(bytes))
    readImages.set(image, read)
  }
  return read
}

async function start(image: PgliteImage | undefined, dataDir?: string): Promise<PgliteInstance> {
  const PGlite = await pgliteClass()
  const db = new PGlite({
    ...(dataDir === undefined ? {} : { dataDir }),
    ...(image === undefined ? {} : { loadDataDir: await readOnce(image) }),
    // The driver's own settings, so a database from an image runs as one the driver started.
    startParams: [...PGlite.defaultStartParams, ...PGLITE_START_SETTINGS],
  })
  await db.waitReady
  return db as unknown as PgliteInstance
}

async function cachedOrBuilt(schemaVersion: number): Promise<PgliteImage> {
  const name = imageName(schemaVersion)
  const kept = await cache?.get(name)
  if (kept !== undefined) return kept
  let image: PgliteImage
  try {
    image = await build(schemaVersion)
  } catch (error) {
    await cache?.abandon?.(name)
    throw error
  }
  await cache?.set(name, image)
  return image
}

async function build(schemaVersion: number): Promise<PgliteImage> {
  // Version 0 is initdb alone; every later version starts from the image before it and applies its own
  // migration, so initdb runs once per process and each migration once per image set.
  const db = await start(schemaVersion === 0 ? undefined : await pgliteImage(previousVersion(schemaVersion)))
  try {
    if (schemaVersion > 0) {
      await createMigrator(await createPgliteDriver({ db }), { targetVersion: schemaVersion }).migrate()
    }
    // Written out, so a load does not replay the WAL.
    await db.exec('CHECKPOINT')
    return await db.dumpDataDir('none')
  } finally {
    await db.close()
  }
}

/** The version before `schemaVersion` in the manifest (0 before the first). */
function previousVersion(schemaVersion: number): number {
  let previous = 0
  for (const m of MIGRATIONS) if (m.version < schemaVersion) previous = Math.max(previous, m.version)
  return previous
}

/**
 * The image of a database at `schemaVersion` (0: never migrated), built once per process. Versions run
 * through the migration runner, each from the image of the version before it, as successive
 * `migrate({ targetVersion })` calls would.
 */
export function pgliteImage(schemaVersion: number): Promise<PgliteImage> {
  if (!Number.isInteger(schemaVersion) || schemaVersion < 0) {
    throw new ValidationError(`schemaVersion must be a non-negative integer, got ${schemaVersion}`, {
      details: { field: 'schemaVersion' },
    })
  }
  let image = images.get(schemaVersion)
  if (image === undefined) {
    image = cachedOrBuilt(schemaVersion)
    // A failed build is not cached: the next caller tries again and sees its own error.
    image.catch(() => images.delete(schemaVersion))
    images.set(schemaVersion, image)
  }
  return image
}

/**
 * A new in-memory PGlite database at `schemaVersion`, loaded from its image (or one handed back with
 * `releasePgliteImage` and emptied back to that image); or, with `dataDir`, that new directory written from
 * the image (close it before a store opens the directory). The caller closes or releases it.
 */
export async function openPgliteImage(schemaVersion: number, dataDir?: string): Promise<PgliteInstance> {
  const image = await pgliteImage(schemaVersion)
  if (dataDir !== undefined) return start(image, dataDir)
  const reused = idle.get(schemaVersion)?.pop()
  if (reused !== undefined) {
    clearTimeout(closing.get(reused))
    closing.delete(reused)
    return reused
  }
  const db = await start(image)
  // The catalog a released database must match to be reused, read while this one is untouched.
  if (!pristine.has(schemaVersion)) pristine.set(schemaVersion, await catalogOf(db))
  return db
}

// ---- reuse ----------------------------------------------------------------------------------------------

/** Released databases per version, emptied and checked, waiting for the next open. */
const idle = new Map<number, PgliteInstance[]>()
/**
 * How long a released database waits for its next open before it closes itself. A live PGlite keeps a timer
 * of Postgres' running, which would keep the process alive: this bounds that, and `closeIdlePgliteImages`
 * ends it at once.
 */
const IDLE_MS = 1000
/** The timer that closes each released database left waiting too long. */
const closing = new Map<PgliteInstance, ReturnType<typeof setTimeout>>()
/** Each version's catalog as its image has it (`catalogOf`). */
const pristine = new Map<number, string>()
/** Databases kept per version: a test file or a conformance run holds one or two at a time. */
const IDLE_PER_VERSION = 2

/**
 * What a database holds besides table rows: every relation, column, index, constraint, trigger, function,
 * type and schema outside the system's, the database and role settings, and the rows of the migration
 * history. Two databases with the same catalog and empty tables are the same database to a store.
 */
const CATALOG = `
  WITH own AS (
    SELECT oid FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
  )
  SELECT string_agg(line, E'\\n' ORDER BY line) AS catalog FROM (
    SELECT concat_ws(' ', 'schema', nspname, nspacl, nspowner::regrole) AS line
      FROM pg_namespace WHERE oid IN (SELECT oid FROM own)
    UNION ALL SELECT concat_ws(' ', 'relation', oid::regclass, relkind, reloptions)
      FROM pg_class WHERE relnamespace IN (SELECT oid FROM own)
    UNION ALL SELECT concat_ws(' ', 'column', a.attrelid::regclass, a.attname,
        format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE c.relnamespace IN (SELECT oid FROM own) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT concat_ws(' ', 'index', pg_get_indexdef(i.indexrelid), i.indisvalid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace IN (SELECT oid FROM own)
    UNION ALL SELECT concat_ws(' ', 'constraint', conname, pg_get_constraintdef(oid))
      FROM pg_constraint WHERE connamespace IN (SELECT oid FROM own)
    UNION ALL SELECT concat_ws(' ', 'trigger', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace IN (SELECT oid FROM own)
    UNION ALL SELECT concat_ws(' ', 'function', oid::regprocedure, md5(prosrc), proconfig)
      FROM pg_proc WHERE pronamespace IN (SELECT oid FROM own)
    UNION ALL SELECT concat_ws(' ', 'type', oid::regtype)
      FROM pg_type WHERE typnamespace IN (SELECT oid FROM own) AND typrelid = 0 AND typelem = 0
    UNION ALL SELECT concat_ws(' ', 'setting', setdatabase, setrole, setconfig) FROM pg_db_role_setting
    UNION ALL SELECT concat_ws(' ', 'extension', extname, extversion) FROM pg_extension
    UNION ALL SELECT concat_ws(' ', 'role', rolname) FROM pg_roles
  ) lines`

const HISTORY = 'SELECT version, name, checksum FROM user_engine_schema_versions ORDER BY version'

async function catalogOf(db: PgliteInstance): Promise<string> {
  const { rows } = await db.query<{ catalog: string | null }>(CATALOG)
  const present = await db.query<{ p: boolean }>(
    `SELECT to_regclass('user_engine_schema_versions') IS NOT NULL AS p`,
  )
  const history = present.rows[0]?.p ? JSON.stringify((await db.query(HISTORY)).rows) : 'no history'
  return `${rows[0]?.catalog ?? ''}\n${history}`
}

/**
 * Empties a database back to its image: session state reset, every table but the migration history
 * truncated (identities restarted); at version 0, whose image has no tables, every object dropped. Only
 * the migration runner's tables and functions can be told from the image's by their catalog, so a
 * database whose catalog then differs (a test altered the schema or planted history) is not reused.
 */
const EMPTY = `
  DO $$
  DECLARE r record;
  BEGIN
    FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'user_engine_schema_versions'
    LOOP
      EXECUTE format('TRUNCATE %s RESTART IDENTITY CASCADE', r.t);
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'S'
    LOOP
      EXECUTE format('ALTER SEQUENCE %s RESTART', r.s);
    END LOOP;
  END $$`

const DROP_ALL = `
  DO $$
  DECLARE r record;
  BEGIN
    -- Tables first (their views, identities and partitions go with them), then what is left. By name, not oid:
    -- IF EXISTS then also covers an object an earlier CASCADE took along.
    FOR r IN SELECT kind, name FROM (
      SELECT 1 AS rank, CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
          WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
          format('%I.%I', n.nspname, c.relname) AS name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      UNION ALL
      SELECT 2, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
          format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
      UNION ALL
      SELECT 3, 'TYPE', format('%I.%I', n.nspname, t.typname)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typrelid = 0 AND t.typelem = 0
    ) objects ORDER BY rank, kind = 'SEQUENCE'
    LOOP
      EXECUTE format('DROP %s IF EXISTS %s CASCADE', r.kind, r.name);
    END LOOP;
  END $$`

/**
 * Hands back a database from `openPgliteImage(schemaVersion)` (every store over it closed) so the next open
 * of that version reuses it instead of loading the image again (0.4 s of CPU saved per open). It is emptied
 * back to the image and its catalog compared with the image's; one that differs, fails to empty, or finds
 * the pool full is closed instead. Never throws.
 */
export async function releasePgliteImage(db: PgliteInstance, schemaVersion: number): Promise<void> {
  const expected = pristine.get(schemaVersion)
  const full = () => (idle.get(schemaVersion)?.length ?? 0) >= IDLE_PER_VERSION
  let reusable = false
  try {
    if (expected !== undefined && !full() && !db.closed && !idle.get(schemaVersion)?.includes(db)) {
      // Fails inside a transaction a test left open: such a database is closed, not reused.
      await db.exec('DISCARD ALL')
      await db.exec(schemaVersion === 0 ? DROP_ALL : EMPTY)
      reusable = (await catalogOf(db)) === expected
    }
  } catch {
    reusable = false
  }
  // Other releases ran meanwhile: the pool may have filled.
  if (!reusable || full()) {
    await db.close().catch(() => undefined)
    return
  }
  const waiting = idle.get(schemaVersion) ?? []
  waiting.push(db)
  idle.set(schemaVersion, waiting)
  const timer = setTimeout(() => void closeIdle(db, schemaVersion), IDLE_MS)
  timer.unref()
  closing.set(db, timer)
}

async function closeIdle(db: PgliteInstance, schemaVersion: number): Promise<void> {
  clearTimeout(closing.get(db))
  closing.delete(db)
  const waiting = idle.get(schemaVersion) ?? []
  const at = waiting.indexOf(db)
  if (at === -1) return
  waiting.splice(at, 1)
  await db.close().catch(() => undefined)
}

/** Closes every released database now (a run's end: they would otherwise live up to a second longer). */
export async function closeIdlePgliteImages(): Promise<void> {
  await Promise.all(
    [...idle].flatMap(([version, waiting]) => [...waiting].map((db) => closeIdle(db, version))),
  )
}
