#!/usr/bin/env node
// Runs every test/**/*.test.ts under node:test (Node 20's --test takes no globs).
// Usage: node scripts/run-tests.mjs [substring...]  — only files whose path contains a substring.
// test/faults/ (minutes of broker outages and cluster kills) runs only when a filter names it:
// `npm run test:faults` is `node scripts/run-tests.mjs test/faults/`.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { buildSync } from 'esbuild'

const filters = process.argv.slice(2)
const files = readdirSync('test', { recursive: true })
  .map((f) => join('test', String(f)))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .filter((f) => !f.startsWith(join('test', 'faults')) || filters.some((s) => s.includes('faults')))
  .sort()
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
// Folders whose files take longest, in that order: their groups start first, so the last minute is not one
// long group on one core while the other idles.
const HEAVY_FIRST = ['conformance', 'engine', 'postgres', 'cli', 'migrations', 'package', 'pooler', 'outbox']
const GROUP_SIZE = 6
// The fault tests start and kill servers from root-level hooks, timed per file: each keeps a process.
const ONE_FILE_A_PROCESS = ['faults']

/**
 * The files of a folder run in groups of up to GROUP_SIZE, each group one process importing its files one
 * after another (node:test runs every file in a process of its own, and Node 20 cannot turn that off). A
 * process pays tsx's start-up and, once, PGlite's WebAssembly compile (about 2.5 s of CPU, then each
 * database comes from an image): paid per group instead of per file, that is a quarter of the run's CPU.
 * Test files keep no state across files (top-level hooks only clean up after themselves), so a group runs
 * them as separate processes would. A run of one file runs it as itself. A file that fails to load fails its
 * group's entry, whose first line names the group's files.
 */
function shard(testFiles, dir) {
  if (testFiles.length === 1) return testFiles
  const byFolder = new Map()
  for (const f of testFiles) {
    const folder = f.split(/[\\/]/)[1]
    byFolder.set(folder, [...(byFolder.get(folder) ?? []), f])
  }
  const rank = (folder) => (HEAVY_FIRST.includes(folder) ? HEAVY_FIRST.indexOf(folder) : HEAVY_FIRST.length)
  const folders = [...byFolder.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
  const entries = []
  for (const folder of folders) {
    const inFolder = byFolder.get(folder)
    if (ONE_FILE_A_PROCESS.includes(folder)) {
      entries.push(...inFolder)
      continue
    }
    const groups = Array.from({ length: Math.ceil(inFolder.length / GROUP_SIZE) }, () => [])
    for (const [k, f] of inFolder.entries()) groups[k % groups.length].push(f)
    for (const [k, group] of groups.entries()) {
      // node --test runs the files it is given in name order: the number keeps the order chosen above.
      const entry = join(dir, `${String(entries.length).padStart(2, '0')}-${folder}-${k + 1}.test.mjs`)
      const imports = group.map((f) => `import ${JSON.stringify(pathToFileURL(resolve(f)).href)}\n`).join('')
      writeFileSync(entry, `// ${group.join(', ')}\n${imports}`)
      entries.push(entry)
    }
  }
  return entries
}

// Three groups on two cores: a group often waits (timers, leases, locks, child processes, the servers), and a
// third fills the core it leaves idle. Measured 2026-11-30: two at once, 194 s with 71 core-seconds idle;
// three, 179 s with 30. The fault tests, timed against outages they cause, keep two.
const concurrency = files.some((f) => f.startsWith(join('test', 'faults'))) ? 2 : 3

// PGlite images built by the first file that needs one and loaded by the others (test/support/images.ts).
const images = mkdtempSync(join(tmpdir(), 'user-engine-test-images-'))
// The CLI bundled once (its packages left external), for the tests that spawn it (test/cli/run-cli.ts):
// plain node starts it with a fifth of tsx's CPU. It lies under node_modules/.cache, so it finds the
// packages and migrations/ from there as the built package does.
mkdirSync(join('node_modules', '.cache'), { recursive: true })
const cli = mkdtempSync(join('node_modules', '.cache', 'user-engine-test-cli-'))
let result
try {
  buildSync({
    entryPoints: ['src/cli/bin.ts'],
    outfile: join(cli, 'bin.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'warning',
  })
  result = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${process.env.USER_ENGINE_TEST_CONCURRENCY ?? concurrency}`,
      ...shard(files, cli),
    ],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        USER_ENGINE_TEST_IMAGES: images,
        USER_ENGINE_TEST_CLI: join(process.cwd(), cli, 'bin.mjs'),
      },
    },
  )
} finally {
  rmSync(images, { recursive: true, force: true })
  rmSync(cli, { recursive: true, force: true })
}
process.exit(result.status ?? 1)
