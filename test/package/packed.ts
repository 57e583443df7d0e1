import { realpathSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, resolve } from 'node:path'
import { cleanEnv, createProject, isInside, makeTempDir, packTarball, removeDir } from './smoke.mjs'

/**
 * What users get: the package as `npm pack` makes it (its `prepack` builds dist/), installed with
 * `npm install --omit=dev` into a fresh project under os.tmpdir(), outside the repository, so nothing resolves
 * from the repository's node_modules. The tarball is made once per process (test/package has one test file,
 * so once per test run); nothing is cached across runs but npm's own cache. `cleanupPacked()` removes it all.
 */
export const REPO_ROOT = resolve(import.meta.dirname, '../..')

/** The environment of a user whose PATH finds the Node that runs these tests first. */
export const USER_ENV = cleanEnv(dirname(process.execPath))

const tempDirs: string[] = []
let tarball: Promise<string> | undefined

export function packedTarball(): Promise<string> {
  tarball ??= (async () => {
    const dest = makeTempDir('ue-pack-')
    tempDirs.push(dest)
    return packTarball(REPO_ROOT, dest, USER_ENV)
  })()
  return tarball
}

/** `npm init -y` and `npm install --omit=dev --no-audit --no-fund <tarball>` plus `npmArgs`; returns the dir. */
export async function installedProject(
  name: string,
  npmArgs: readonly string[] = [],
): Promise<{ dir: string; installMs: number }> {
  const path = await packedTarball()
  const project = await createProject(path, { prefix: `ue-pkg-${name}-`, npmArgs, env: USER_ENV })
  tempDirs.push(project.dir)
  if (isInside(project.dir, REPO_ROOT) || isInside(REPO_ROOT, project.dir)) {
    throw new Error(`the temporary project ${project.dir} and the repository ${REPO_ROOT} overlap`)
  }
  if (!isInside(project.dir, realpathSync(tmpdir())))
    throw new Error(`${project.dir} is not under os.tmpdir()`)
  return project
}

export function cleanupPacked(): void {
  for (const dir of tempDirs.splice(0)) removeDir(dir)
}
