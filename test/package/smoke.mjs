// The installed-package smoke, in plain Node so both runners share it: test/package/tarball.test.ts runs it
// under the Node that runs the tests, scripts/node-versions-smoke.mjs under Node 22 and 24. Everything here
// works on what `npm pack` produced and `npm install` put in a fresh project outside the repository.
import { spawn } from 'node:child_process'
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join, sep } from 'node:path'

/** Every subpath export a user can import. */
export const SUBPATHS = [
  'user-engine',
  'user-engine/memory',
  'user-engine/postgres',
  'user-engine/pglite',
  'user-engine/nats',
  'user-engine/testing',
]

/** devDependencies of the repository a test runner would otherwise resolve by accident. */
const DEV_ONLY = ['tsx', 'typescript', 'vitest', '@biomejs/biome']

const KEEP_NPM_CONFIG = new Set(
  ['registry', 'cache', 'userconfig', 'proxy', 'https_proxy', 'noproxy', 'strict_ssl', 'cafile'].map(
    (k) => `npm_config_${k}`,
  ),
)

/**
 * The environment a user's shell would have: none of the npm lifecycle variables `npm test` sets (they name
 * the repository), no loader flags, no DATABASE_URL, and `binDir` first on PATH (the Node to run under).
 */
export function cleanEnv(binDir, base = process.env) {
  const env = {}
  for (const [key, value] of Object.entries(base)) {
    if (value === undefined) continue
    const lower = key.toLowerCase()
    if (lower.startsWith('npm_') && !KEEP_NPM_CONFIG.has(lower)) continue
    if (['INIT_CWD', 'NODE_OPTIONS', 'NODE_PATH', 'NODE_TEST_CONTEXT', 'DATABASE_URL'].includes(key)) continue
    env[key] = value
  }
  env.PATH = binDir === undefined ? (base.PATH ?? '') : `${binDir}${delimiter}${base.PATH ?? ''}`
  return env
}

/** Runs a command to completion; never rejects for a non-zero exit (callers assert on `code`). */
export function run(command, args, { cwd, env, timeoutMs = 300_000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const ms = performance.now() - started
      if (timedOut) stderr += `\n[killed after ${timeoutMs} ms]`
      resolve({ code, signal, stdout, stderr, ms })
    })
  })
}

/** The last lines of a run's output, for failure messages. */
export function describeRun(label, r) {
  const tail = (s) => s.split('\n').slice(-40).join('\n')
  return `${label}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${tail(r.stdout)}\n--- stderr\n${tail(r.stderr)}`
}

function check(condition, message) {
  if (!condition) throw new Error(message)
}

/** `npm pack` of the repository into `destDir` (its `prepack` builds dist/); returns the tarball's path. */
export async function packTarball(repoRoot, destDir, env) {
  const r = await run('npm', ['pack', '--pack-destination', destDir], {
    cwd: repoRoot,
    env,
    timeoutMs: 600_000,
  })
  check(r.code === 0, describeRun('npm pack', r))
  const tarballs = readdirSync(destDir).filter((f) => f.endsWith('.tgz'))
  check(tarballs.length === 1, `npm pack left ${tarballs.length} tarballs in ${destDir}`)
  return join(destDir, tarballs[0])
}

export function makeTempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
}

/**
 * A fresh project under os.tmpdir(): `npm init -y`, then `npm install --omit=dev <tarball>` plus `npmArgs`
 * (e.g. `--omit=peer`). Returns its directory; the caller removes it.
 */
export async function createProject(tarball, { prefix = 'ue-pkg-', npmArgs = [], env }) {
  const dir = makeTempDir(prefix)
  const init = await run('npm', ['init', '-y'], { cwd: dir, env })
  check(init.code === 0, describeRun('npm init -y', init))
  const install = await run(
    'npm',
    ['install', '--omit=dev', ...npmArgs, '--no-audit', '--no-fund', tarball],
    {
      cwd: dir,
      env,
    },
  )
  check(install.code === 0, describeRun(`npm install ${npmArgs.join(' ')} ${tarball}`, install))
  return { dir, installMs: install.ms }
}

/** The packages npm placed in the project, from its hidden lockfile (`node_modules/.package-lock.json`). */
export function installedPackages(dir) {
  const lock = JSON.parse(readFileSync(join(dir, 'node_modules/.package-lock.json'), 'utf8'))
  return Object.keys(lock.packages)
    .filter((p) => p.startsWith('node_modules/'))
    .map((p) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length))
    .sort()
}

/** Node's TAP reporter output: the summary counts and each top-level result. */
export function parseTap(text) {
  const count = (key) => {
    const m = new RegExp(`^# ${key} (\\d+)$`, 'm').exec(text)
    return m ? Number(m[1]) : undefined
  }
  const results = []
  for (const m of text.matchAll(/^(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO)(?: (.*))?)?$/gm)) {
    results.push({ ok: m[1] === 'ok', name: m[2], directive: m[3], reason: m[4] })
  }
  return {
    tests: count('tests'),
    pass: count('pass'),
    fail: count('fail'),
    skipped: count('skipped'),
    cancelled: count('cancelled'),
    todo: count('todo'),
    results,
  }
}

// Files the steps write into the project. Plain ESM (.mjs): `npm init -y` leaves the project CommonJS.
const IMPORTS_SCRIPT = `const out = {}
for (const s of ${JSON.stringify(SUBPATHS)}) {
  try {
    out[s] = Object.keys(await import(s)).sort()
  } catch (error) {
    out[s] = { error: String(error?.stack ?? error) }
  }
}
out.node = process.version
console.log(JSON.stringify(out))
`

const HARNESS_TEST = `import { writeFileSync } from 'node:fs'
import { test } from 'node:test'
import { InMemoryUserEngineStore } from 'user-engine/memory'
import { CONFORMANCE_SUITES, conformanceCases, registerConformanceTests } from 'user-engine/testing'

// A provider's store (here a subclass of the reference store, standing in for their own), with its
// capabilities declared so skips are decided up front, from those capabilities only.
class ProviderStore extends InMemoryUserEngineStore {}
const probe = new ProviderStore()
const capabilities = probe.capabilities
await probe.close()
const options = { createStore: async () => new ProviderStore(), capabilities }
const cases = conformanceCases(options)
writeFileSync(
  'harness-expected.json',
  JSON.stringify({
    node: process.version,
    capabilities,
    cases: cases.map((c) => c.name),
    suiteCases: CONFORMANCE_SUITES.reduce((n, s) => n + s.cases.length, 0),
    skips: cases.filter((c) => c.skip !== undefined).map((c) => ({ name: c.name, reason: c.skip })),
  }),
)
registerConformanceTests({ ...options, test, skipTest: (name, reason) => test(name, { skip: reason }, () => {}) })
`

/** `npx --no`: run the project's own bin, never fetch a package of that name from the registry. */
function npx(ctx, args, extra = {}) {
  return run('npx', ['--no', '--', 'user-engine', ...args], { cwd: ctx.dir, env: ctx.env, ...extra })
}

/**
 * The smoke steps, in order. Each takes `{ dir, env, nodeMajor?, conformanceCases? }` (the project and the environment whose PATH
 * names the Node under test), throws with the evidence on failure, and returns a short summary on success.
 */
export const SMOKE_STEPS = [
  {
    id: 'node',
    name: 'node on PATH',
    async run(ctx) {
      const r = await run('node', ['-p', 'process.version'], { cwd: ctx.dir, env: ctx.env })
      check(r.code === 0, describeRun('node -p process.version', r))
      const version = r.stdout.trim()
      if (ctx.nodeMajor !== undefined) {
        check(
          version.startsWith(`v${ctx.nodeMajor}.`),
          `expected Node ${ctx.nodeMajor} on PATH, got ${version}`,
        )
      }
      return version
    },
  },
  {
    id: 'isolation',
    name: 'the project cannot resolve the repository',
    async run(ctx) {
      const probe = `const out = {}
for (const n of ${JSON.stringify([...DEV_ONLY, 'user-engine'])}) {
  try { out[n] = require('node:fs').realpathSync(require.resolve(n === 'user-engine' ? n + '/package.json' : n)) }
  catch (e) { out[n] = e.code }
}
console.log(JSON.stringify(out))`
      const r = await run('node', ['-e', probe], { cwd: ctx.dir, env: ctx.env })
      check(r.code === 0, describeRun('require.resolve probe', r))
      const out = JSON.parse(r.stdout)
      for (const name of DEV_ONLY) {
        check(out[name] === 'MODULE_NOT_FOUND', `${name} resolves from the project: ${out[name]}`)
      }
      const expected = join(realpathSync(ctx.dir), 'node_modules', 'user-engine', 'package.json')
      check(out['user-engine'] === expected, `user-engine resolves to ${out['user-engine']}, not ${expected}`)
      return 'tsx, typescript, vitest, biome not found; user-engine from the project'
    },
  },
  {
    id: 'imports',
    name: 'import every subpath',
    async run(ctx) {
      writeFileSync(join(ctx.dir, 'imports.mjs'), IMPORTS_SCRIPT)
      const r = await run('node', ['imports.mjs'], { cwd: ctx.dir, env: ctx.env })
      check(r.code === 0, describeRun('node imports.mjs', r))
      const out = JSON.parse(r.stdout)
      const failed = SUBPATHS.filter((s) => !Array.isArray(out[s]))
      check(failed.length === 0, failed.map((s) => `${s}: ${out[s].error}`).join('\n'))
      const expect = {
        'user-engine': ['UserEngine', 'createKeyring', 'UserEngineError', 'LATEST_SCHEMA_VERSION'],
        'user-engine/memory': ['InMemoryUserEngineStore'],
        'user-engine/postgres': ['createNodePostgresStore', 'PostgresUserEngineStore'],
        'user-engine/pglite': ['createPgliteStore'],
        'user-engine/nats': ['createJetStreamRelay', 'JetStreamPublisher'],
        'user-engine/testing': ['registerConformanceTests', 'conformanceCases', 'CONFORMANCE_SUITES'],
      }
      for (const [s, names] of Object.entries(expect)) {
        const missing = names.filter((n) => !out[s].includes(n))
        check(missing.length === 0, `${s} lacks ${missing.join(', ')}`)
      }
      return SUBPATHS.map((s) => `${s.replace('user-engine', '.')}:${out[s].length}`).join(' ')
    },
  },
  {
    id: 'help',
    name: 'user-engine --help',
    async run(ctx) {
      const r = await npx(ctx, ['--help'])
      check(r.code === 0, describeRun('npx user-engine --help', r))
      check(/^usage: user-engine <command>/m.test(r.stdout), describeRun('--help printed no usage', r))
      return 'exit 0'
    },
  },
  {
    id: 'status',
    name: 'user-engine status --database-url memory:',
    async run(ctx) {
      // A memory: store is new on every start, so every migration is pending: exit 3 by the README.
      const r = await npx(ctx, ['status', '--database-url', 'memory:', '--json'])
      check(r.code === 3, describeRun('status memory: (exit 3 expected: migrations pending)', r))
      const status = JSON.parse(r.stdout)
      const all = Array.from({ length: status.latestVersion }, (_, i) => i + 1)
      check(
        status.currentVersion === 0 &&
          status.latestVersion >= 1 &&
          JSON.stringify(status.pending) === JSON.stringify(all) &&
          Array.isArray(status.drift) &&
          status.drift.length === 0,
        `unexpected status: ${r.stdout}`,
      )
      return `exit 3, version 0 of ${status.latestVersion}`
    },
  },
  {
    id: 'demo',
    name: 'user-engine demo (embedded PGlite in ./.user-engine/data)',
    async run(ctx) {
      const r = await npx(ctx, ['demo'], { timeoutMs: 300_000 })
      check(r.code === 0, describeRun('npx user-engine demo', r))
      check(/outbox_pending\s+\d+/.test(r.stdout), describeRun('demo printed no outbox counts', r))
      const data = join(ctx.dir, '.user-engine', 'data')
      check(existsSync(join(data, 'PG_VERSION')), `the demo left no PGlite database in ${data}`)
      return `exit 0, ${r.stdout.trim().split('\n').length} lines, data in ./.user-engine/data`
    },
  },
  {
    id: 'harness',
    name: 'conformance harness on InMemoryUserEngineStore under node:test',
    async run(ctx) {
      writeFileSync(join(ctx.dir, 'harness.test.mjs'), HARNESS_TEST)
      rmSync(join(ctx.dir, 'harness-expected.json'), { force: true })
      const r = await run('node', ['--test', '--test-reporter=tap', 'harness.test.mjs'], {
        cwd: ctx.dir,
        env: ctx.env,
        timeoutMs: 300_000,
      })
      const tap = parseTap(r.stdout)
      check(r.code === 0 && tap.fail === 0, describeRun('node --test harness.test.mjs', r))
      const expected = JSON.parse(readFileSync(join(ctx.dir, 'harness-expected.json'), 'utf8'))
      if (ctx.nodeMajor !== undefined) {
        check(expected.node.startsWith(`v${ctx.nodeMajor}.`), `the harness ran on ${expected.node}`)
      }
      const total = expected.cases.length
      const skips = expected.skips
      // Exact: the installed CONFORMANCE_SUITES, and the repository's when the caller gives its count.
      check(
        total === expected.suiteCases && total > 0,
        `the harness builds ${total} cases, its CONFORMANCE_SUITES lists ${expected.suiteCases}`,
      )
      if (ctx.conformanceCases !== undefined) {
        check(
          total === ctx.conformanceCases,
          `the installed harness has ${total} cases, the repository's CONFORMANCE_SUITES ${ctx.conformanceCases}`,
        )
      }
      for (const s of skips) {
        // The store's own declaration, or the capabilities option given up front (the node:test runner's way).
        const lacking =
          /^the (?:store|capabilities option) lacks the (\w+) capability(?: \(skipped up front, before any store was opened\))?$/.exec(
            s.reason,
          )?.[1]
        // Or a factory hook this provider does not give (it gives createStore alone).
        const hooks = /^the store factory cannot .* \((\w+(?:, \w+)*)\)$/.exec(s.reason)?.[1]
        check(
          (lacking !== undefined && expected.capabilities[lacking] === false) || hooks !== undefined,
          `"${s.name}" skipped for "${s.reason}", not for a capability ${JSON.stringify(expected.capabilities)} lacks or a factory hook it does not give`,
        )
      }
      check(
        tap.tests === total && tap.pass === total - skips.length && tap.skipped === skips.length,
        `harness reports ${total} cases (${skips.length} skipped by capabilities), node:test counted tests ${tap.tests}, pass ${tap.pass}, fail ${tap.fail}, skipped ${tap.skipped}`,
      )
      check(tap.cancelled === 0 && tap.todo === 0, `cancelled ${tap.cancelled}, todo ${tap.todo}`)
      // The skipped results are exactly the cases the declared capabilities rule out, with their reasons.
      const skippedInTap = tap.results
        .filter((t) => t.directive === 'SKIP')
        .map((t) => `${t.name} | ${t.reason}`)
        .sort()
      const skipsExpected = skips.map((s) => `${s.name} | ${s.reason}`).sort()
      check(
        JSON.stringify(skippedInTap) === JSON.stringify(skipsExpected),
        `skipped in TAP:\n${skippedInTap.join('\n')}\nskips the capabilities ${JSON.stringify(expected.capabilities)} call for:\n${skipsExpected.join('\n')}`,
      )
      const passedNames = tap.results.filter((t) => t.ok && t.directive === undefined).map((t) => t.name)
      check(passedNames.length === total - skips.length, `${passedNames.length} ok results in TAP`)
      const reasons = [...new Set(skips.map((s) => s.reason))].join('; ')
      return `${tap.pass} passed, ${tap.fail} failed, ${tap.skipped} skipped (${reasons || 'none'}) of ${total} cases`
    },
  },
]

/** True when `child` is `parent` or below it. */
export function isInside(child, parent) {
  const c = realpathSync(child)
  const p = realpathSync(parent)
  return c === p || c.startsWith(p + sep)
}
