import { randomBytes } from 'node:crypto'
import { readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  closeIdlePgliteImages,
  openPgliteImage,
  releasePgliteImage,
  setPgliteImageCache,
} from '../../src/store/postgres/pglite-images.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'

/**
 * PGlite images for the tests, shared across the test files of one run: scripts/run-tests.mjs names a
 * directory in USER_ENGINE_TEST_IMAGES (and removes it afterwards), so initdb and each schema version's
 * migrations run once per run, not once per file. The first process to miss an image builds it under a lock
 * file naming its pid; the others wait for the image instead of building it too. Without the variable (one
 * file run by hand, vitest) each process builds its own images. Import `openPgliteImage` from here so the
 * cache is set before the first image.
 */
export const IMAGE_DIR = process.env.USER_ENGINE_TEST_IMAGES

/** How long a process waits for another's image before building its own (a build takes seconds). */
const WAIT_MS = 120_000

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM'
  }
}

if (IMAGE_DIR) {
  const dir = IMAGE_DIR
  const tar = (name: string) => join(dir, `${name}.tar`)
  const lock = (name: string) => join(dir, `${name}.lock`)
  const read = async (name: string) => {
    try {
      return new Blob([await readFile(tar(name))])
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') return undefined
      throw error
    }
  }
  setPgliteImageCache({
    async get(name) {
      const deadline = Date.now() + WAIT_MS
      for (;;) {
        const image = await read(name)
        if (image !== undefined) return image
        try {
          await writeFile(lock(name), String(process.pid), { flag: 'wx' })
          // Built meanwhile by the holder of a lock that was just removed: nothing to build.
          return await read(name)
        } catch (error) {
          if ((error as { code?: string }).code !== 'EEXIST') throw error
        }
        const holder = Number(await readFile(lock(name), 'utf8').catch(() => '0'))
        // A holder that died (or a wait past reason) leaves the build to this process.
        if ((holder > 0 && !alive(holder)) || Date.now() > deadline) {
          await unlink(lock(name)).catch(() => undefined)
          continue
        }
        await sleep(50)
      }
    },
    async set(name, image) {
      // Written aside, then renamed: a reader never sees half an image.
      const partial = join(dir, `${name}.${randomBytes(4).toString('hex')}.partial`)
      await writeFile(partial, new Uint8Array(await image.arrayBuffer()))
      await rename(partial, tar(name))
      await unlink(lock(name)).catch(() => undefined)
    },
    async abandon(name) {
      await unlink(lock(name)).catch(() => undefined)
    },
  })
}

/**
 * Writes a data directory at `dir` holding a database at `schemaVersion` (default the latest) from its image,
 * for tests of a store over a directory that are not about initdb (which takes seconds of CPU).
 */
export async function dataDirFromImage(dir: string, schemaVersion = LATEST_SCHEMA_VERSION): Promise<string> {
  const db = await openPgliteImage(schemaVersion, dir)
  await db.close()
  return dir
}

// Databases released by the file's tests close when the file ends, not a second later.
after(closeIdlePgliteImages)

export { openPgliteImage, releasePgliteImage }
