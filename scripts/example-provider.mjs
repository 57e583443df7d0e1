#!/usr/bin/env node
// The worked provider example (examples/sqlite-store) against the PACKED package, as a provider team would
// consume it: `npm pack` of this repository, a copy of the example in a temp directory outside the
// repository, `npm install <tarball>` plus the example's own dependencies there, then its node:test file, which
// runs the whole conformance harness from `user-engine/testing` against the SQLite store (after tsc has checked
// the example's JSDoc types against the declarations the tarball ships).
// Prints one line per step, the harness's counts and every skip with its reason; exits 1 on any failure.
// Usage: node scripts/example-provider.mjs [--keep]   (--keep leaves the temp directory for a look)
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative, resolve, sep } from 'node:path'
import {
  cleanEnv,
  describeRun,
  makeTempDir,
  packTarball,
  parseTap,
  removeDir,
  run,
} from '../test/package/smoke.mjs'

const ROOT = resolve(import.meta.dirname, '..')
const EXAMPLE = join(ROOT, 'examples', 'sqlite-store')
const keep = process.argv.includes('--keep')
const temp = makeTempDir('ue-example-provider-')
const env = cleanEnv()
const started = performance.now()
const seconds = (ms) => `${(ms / 1000).toFixed(1)}s`

function cleanup() {
  if (keep) console.log(`kept ${temp}`)
  else removeDir(temp)
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanup()
    process.exit(1)
  })
}

/** Runs one step; prints its line; a failure ends the script with exit 1. */
async function step(label, fn) {
  const t = performance.now()
  try {
    const summary = await fn()
    console.log(`ok   ${label}${summary ? `: ${summary}` : ''} (${seconds(performance.now() - t)})`)
    return summary
  } catch (error) {
    console.log(`FAIL ${label}: ${String(error?.message ?? error)}`)
    cleanup()
    process.exit(1)
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message)
}

const project = join(temp, 'sqlite-store')
let tarball = ''

await step('npm pack', async () => {
  tarball = await packTarball(ROOT, temp, env)
  return relative(temp, tarball)
})

await step('copy examples/sqlite-store out of the repository', async () => {
  // No node_modules and no symlink: the copy resolves only what npm installs next to it.
  cpSync(EXAMPLE, project, {
    recursive: true,
    filter: (src) => !src.split(sep).includes('node_modules') && !src.endsWith('package-lock.json'),
  })
  return project
})

await step('npm install <tarball> and the example dependencies', async () => {
  // --omit=peer: the example needs neither PGlite, pg nor NATS (optional or unused peers of user-engine).
  const r = await run('npm', ['install', '--no-audit', '--no-fund', '--omit=peer', tarball], {
    cwd: project,
    env,
  })
  check(r.code === 0, describeRun('npm install', r))
  const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'))
  const spec = pkg.dependencies?.['user-engine'] ?? pkg.peerDependencies?.['user-engine']
  return `user-engine ${spec}, sql.js ${pkg.dependencies?.['sql.js']}`
})

await step('user-engine resolves to the installed tarball, not the repository', async () => {
  const script = `for (const s of ['user-engine', 'user-engine/testing']) console.log(import.meta.resolve(s))`
  const r = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project, env })
  check(r.code === 0, describeRun('resolve', r))
  const paths = r.stdout.trim().split('\n')
  const installed = `file://${join(project, 'node_modules', 'user-engine', 'dist', 'src')}${sep}`
  for (const p of paths) {
    check(p.startsWith(installed), `${p} is not inside the installed package`)
    check(!p.includes(ROOT), `${p} resolves into the repository`)
  }
  return paths.map((p) => relative(project, new URL(p).pathname)).join(', ')
})

const expected = await step('count the harness cases the installed package defines', async () => {
  const script = `import { CONFORMANCE_SUITES } from 'user-engine/testing'
console.log(CONFORMANCE_SUITES.reduce((n, s) => n + s.cases.length, 0))`
  const r = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project, env })
  check(r.code === 0, describeRun('count', r))
  return r.stdout.trim()
})

await step(
  'tsc: the example type-checks (// @ts-check JSDoc) against the installed declarations',
  async () => {
    const tsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc')
    const r = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project, env })
    check(r.code === 0, describeRun('tsc', r))
    return 'no errors'
  },
)

await step('node --test: the conformance harness against the SQLite store', async () => {
  const r = await run(process.execPath, ['--test', '--test-reporter=tap', 'conformance.test.js'], {
    cwd: project,
    env,
    timeoutMs: 240_000,
  })
  writeFileSync(join(temp, 'harness.tap'), r.stdout)
  const tap = parseTap(r.stdout)
  const skips = tap.results.filter((t) => t.directive === 'SKIP')
  const failures = tap.results.filter((t) => !t.ok)
  console.log(`     ${tap.tests} cases: ${tap.pass} passed, ${tap.fail} failed, ${skips.length} skipped`)
  for (const s of skips) console.log(`     skipped: ${s.name} (${s.reason})`)
  for (const f of failures) console.log(`     FAILED: ${f.name}`)
  if (failures.length > 0) console.log(describeRun('node --test', r))
  check(r.code === 0 && tap.fail === 0, `node --test exited ${r.code} with ${tap.fail} failed`)
  check(String(tap.tests) === expected, `node:test ran ${tap.tests} cases; the harness defines ${expected}`)
  check(tap.pass > 0, 'no case passed')
  return `${tap.pass} passed, 0 failed, ${skips.length} skipped`
})

await step(
  'node --test query-plans.test.js: the hot reads are index ranges (EXPLAIN QUERY PLAN)',
  async () => {
    const r = await run(process.execPath, ['--test', '--test-reporter=tap', 'query-plans.test.js'], {
      cwd: project,
      env,
      timeoutMs: 120_000,
    })
    const tap = parseTap(r.stdout)
    check(r.code === 0 && tap.fail === 0 && tap.pass > 0, describeRun('node --test query-plans.test.js', r))
    return `${tap.pass} passed, ${tap.fail} failed`
  },
)

await step('npx user-engine conformance --store ./conformance.js (the CLI, three suites)', async () => {
  const suites = ['schema-history', 'identifiers', 'closed-store']
  const args = ['user-engine', 'conformance', '--store', './conformance.js', '--json']
  for (const suite of suites) args.push('--suite', suite)
  const r = await run('npx', ['--no-install', ...args], { cwd: project, env, timeoutMs: 120_000 })
  check(r.code === 0, describeRun('user-engine conformance', r))
  const report = JSON.parse(r.stdout)
  check(
    report.failed === 0 && report.passed > 0,
    `the CLI reported ${report.failed} failed, ${report.passed} passed`,
  )
  return `${suites.join(', ')}: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`
})

console.log(`example provider: ok (${seconds(performance.now() - started)})`)
cleanup()
