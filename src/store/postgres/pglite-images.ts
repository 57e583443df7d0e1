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
  get(name: string): Promise<PgliteImage | undefined>
  set(name: string, image: PgliteImage): Promise<void>
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
  const image = await build(schemaVersion)
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
 * A new in-memory PGlite database at `schemaVersion`, loaded from its image; or, with `dataDir`, that new
 * directory written from the image (close it before a store opens the directory). The caller closes it.
 */
export async function openPgliteImage(schemaVersion: number, dataDir?: string): Promise<PgliteInstance> {
  return start(await pgliteImage(schemaVersion), dataDir)
}
