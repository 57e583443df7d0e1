#!/usr/bin/env node
// Runs every test/**/*.test.ts under node:test (Node 20's --test takes no globs).
// Usage: node scripts/run-tests.mjs [substring...]  — only files whose path contains a substring.
// test/faults/ (minutes of broker outages and cluster kills) runs only when a filter names it:
// `npm run test:faults` is `node scripts/run-tests.mjs test/faults/`.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
      `--test-concurrency=${process.env.USER_ENGINE_TEST_CONCURRENCY ?? 2}`,
      ...files,
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
