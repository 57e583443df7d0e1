import { randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after } from 'node:test'
import {
  closeIdlePgliteImages,
  openPgliteImage,
  releasePgliteImage,
  setPgliteImageCache,
} from '../../src/store/postgres/pglite-images.js'

/**
 * PGlite images for the tests, shared across the test files of one run: scripts/run-tests.mjs names a
 * directory in USER_ENGINE_TEST_IMAGES (and removes it afterwards), so initdb and each schema version's
 * migrations run once per run, not once per file. Without it (one file run by hand, vitest) each process
 * builds its own images. Import `openPgliteImage` from here so the cache is set before the first image.
 */
export const IMAGE_DIR = process.env.USER_ENGINE_TEST_IMAGES

if (IMAGE_DIR) {
  const dir = IMAGE_DIR
  setPgliteImageCache({
    async get(name) {
      try {
        return new Blob([await readFile(join(dir, `${name}.tar`))])
      } catch (error) {
        if ((error as { code?: string }).code === 'ENOENT') return undefined
        throw error
      }
    },
    async set(name, image) {
      // Written aside, then renamed: a reader never sees half an image.
      const partial = join(dir, `${name}.${randomBytes(4).toString('hex')}.partial`)
      await writeFile(partial, new Uint8Array(await image.arrayBuffer()))
      await rename(partial, join(dir, `${name}.tar`))
    },
  })
}

// Databases released by the file's tests close when the file ends, not a second later.
after(closeIdlePgliteImages)

export { openPgliteImage, releasePgliteImage }
