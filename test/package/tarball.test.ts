import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CONFORMANCE_SUITES } from '../../src/testing/index.js'
import { createTestDatabase, postgresSkip } from '../support/services.js'
import { cleanupPacked, installedProject, USER_ENV } from './packed.js'
import { describeRun, installedPackages, run, SMOKE_STEPS, type SmokeStep } from './smoke.mjs'

// The package as users get it: `npm pack` once, installed into fresh projects outside the repository (see
// packed.ts). One project with the peers npm installs by default, one with every peer omitted plus `pg`.
// scripts/node-versions-smoke.mjs runs the same SMOKE_STEPS on Node 22 and 24.

const pgSkip = await postgresSkip()
after(cleanupPacked)

const DEV_ONLY = ['tsx', 'typescript', 'vitest', '@biomejs/biome', '@types/node', '@types/pg', 'vite']
const NATS = ['@nats-io/jetstream', '@nats-io/transport-node']
const PGLITE = '@electric-sql/pglite'
const LONG = { timeout: 600_000 }

/** The repository's case count: the installed harness must build exactly these. */
const CONFORMANCE_CASES = CONFORMANCE_SUITES.reduce((n, s) => n + s.cases.length, 0)

function smokeTest(step: SmokeStep, dir: () => string): void {
  test(step.name, LONG, async (t) => {
    const summary = await step.run({ dir: dir(), env: USER_ENV, conformanceCases: CONFORMANCE_CASES })
    t.diagnostic(summary)
  })
}

// Both projects install at once (one tarball, packed once): the installs wait on npm and the disk, not on
// each other. The rejection is observed here so that an early failure is not "unhandled"; each block's
// `before` awaits its own project and fails with the install's error.
const projects = {
  full: installedProject('full'),
  nopeer: installedProject('nopeer', ['--omit=peer']),
}
for (const p of Object.values(projects)) p.catch(() => undefined)

/** Writes `source` into the project as an ES module and runs it with the Node under test. */
async function runScript(dir: string, file: string, source: string, env: NodeJS.ProcessEnv = USER_ENV) {
  writeFileSync(join(dir, file), source)
  return run('node', [file], { cwd: dir, env })
}

describe('installed with the peers npm installs by default (npm install --omit=dev <tarball>)', () => {
  let dir = ''
  before(async () => {
    dir = (await projects.full).dir
  })

  test('npm installed the dependencies and the required peer, no devDependency and no optional peer', () => {
    const installed = installedPackages(dir)
    for (const name of ['user-engine', '@node-rs/argon2', 'otpauth', 'fast-check', PGLITE]) {
      assert.ok(installed.includes(name), `${name} missing from ${installed.join(', ')}`)
    }
    for (const name of [...DEV_ONLY, ...NATS, 'pg']) {
      assert.ok(!installed.includes(name), `${name} was installed: ${installed.join(', ')}`)
    }
  })

  test('the exports map and the bin point at files in the tarball; no sources, tests or source maps', () => {
    const pkgDir = join(dir, 'node_modules', 'user-engine')
    const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
    const targets: string[] = []
    for (const target of Object.values(manifest.exports as Record<string, string | Record<string, string>>)) {
      targets.push(...(typeof target === 'string' ? [target] : Object.values(target)))
    }
    // Exactly the files the repository's package.json names (two per subpath: types and code).
    const repoExports = JSON.parse(readFileSync('package.json', 'utf8')).exports as Record<
      string,
      string | Record<string, string>
    >
    const repoTargets = Object.values(repoExports).flatMap((t) =>
      typeof t === 'string' ? [t] : Object.values(t),
    )
    assert.deepEqual(targets, repoTargets)
    assert.ok(targets.length >= 12, `exports name ${targets.length} files`)
    const bin = Object.values(manifest.bin as Record<string, string>)
    for (const file of [...targets, ...bin]) {
      assert.ok(existsSync(join(pkgDir, file)), `${file} (named in package.json) is not in the tarball`)
    }
    for (const file of bin) {
      assert.match(readFileSync(join(pkgDir, file), 'utf8'), /^#!\/usr\/bin\/env node\n/, `${file} shebang`)
    }
    assert.ok(existsSync(join(dir, 'node_modules', '.bin', 'user-engine')), 'npm linked no user-engine bin')
    const files = readdirSync(pkgDir, { recursive: true }).map(String)
    const stray = files.filter(
      (f) =>
        f.endsWith('.map') ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')) ||
        /^(src|test|bench|scripts|node_modules)(\/|$)/.test(f),
    )
    assert.deepEqual(stray, [], 'the tarball carries files users do not need')
    assert.ok(
      existsSync(join(pkgDir, 'migrations', 'postgres', 'schema.sql')),
      'migrations/postgres/schema.sql',
    )
    assert.ok(existsSync(join(pkgDir, 'README.md')), 'README.md')
  })

  for (const step of SMOKE_STEPS) smokeTest(step, () => dir)

  test('a broken provider store fails the harness there too', LONG, async () => {
    writeFileSync(
      join(dir, 'broken.test.mjs'),
      `import { test } from 'node:test'
import { registerConformanceTests } from 'user-engine/testing'
import { InMemoryUserEngineStore } from 'user-engine/memory'
// Reads ignore the tenant: another tenant's user becomes visible.
class LeakyStore extends InMemoryUserEngineStore {
  async getUser(_tenantId, userId) { for (const t of seen) { const u = await super.getUser(t, userId); if (u) return u } return null }
  async transaction(tenantId, fn) { seen.add(tenantId); return super.transaction(tenantId, fn) }
}
const seen = new Set()
registerConformanceTests({ createStore: async () => new LeakyStore(), test, suites: ['tenant-isolation'] })
`,
    )
    const r = await run('node', ['--test', '--test-reporter=tap', 'broken.test.mjs'], {
      cwd: dir,
      env: USER_ENV,
    })
    assert.notEqual(r.code, 0, describeRun('a tenant leak must fail the tenant-isolation suite', r))
    assert.match(r.stdout, /^not ok .*tenant-isolation/m)
  })

  test(
    'createPgliteStore() (in memory) migrates and is ready; createNodePostgresStore is exported',
    LONG,
    async () => {
      const r = await runScript(
        dir,
        'pglite-memory.mjs',
        `import { createPgliteStore } from 'user-engine/pglite'
import { createNodePostgresStore } from 'user-engine/postgres'
const store = await createPgliteStore()
try {
  await store.migrate()
  console.log(JSON.stringify({ ready: (await store.readiness()).ready, pg: typeof createNodePostgresStore }))
} finally {
  await store.close()
}
`,
      )
      assert.equal(r.code, 0, describeRun('pglite-memory.mjs', r))
      assert.deepEqual(JSON.parse(r.stdout), { ready: true, pg: 'function' })
    },
  )
})

describe('installed with the peers omitted (npm install --omit=dev --omit=peer <tarball>; npm i --omit=peer pg)', () => {
  let dir = ''
  let afterTarball: string[] = []
  let afterPg: string[] = []
  before(async () => {
    dir = (await projects.nopeer).dir
    afterTarball = installedPackages(dir)
    // --omit=peer again: a plain `npm i pg` re-resolves the tree and installs the required peer PGlite.
    const r = await run('npm', ['install', '--omit=peer', '--no-audit', '--no-fund', 'pg'], {
      cwd: dir,
      env: USER_ENV,
    })
    assert.equal(r.code, 0, describeRun('npm install --omit=peer pg', r))
    afterPg = installedPackages(dir)
  })

  test('npm left out PGlite and the NATS client, and kept them out when pg was added', () => {
    for (const name of [PGLITE, ...NATS, 'pg', ...DEV_ONLY]) {
      assert.ok(
        !afterTarball.includes(name),
        `${name} installed with --omit=peer: ${afterTarball.join(', ')}`,
      )
    }
    assert.ok(afterPg.includes('pg'), `pg missing: ${afterPg.join(', ')}`)
    for (const name of [PGLITE, ...NATS]) {
      assert.ok(!afterPg.includes(name), `${name} installed with pg: ${afterPg.join(', ')}`)
    }
  })

  // Nothing at import time needs a peer; the CLI starts without them.
  for (const step of SMOKE_STEPS.filter((s) =>
    ['node', 'isolation', 'imports', 'help', 'status'].includes(s.id),
  )) {
    smokeTest(step, () => dir)
  }

  test(`createPgliteStore() without ${PGLITE} fails with DEPENDENCY_MISSING naming it`, LONG, async () => {
    const r = await runScript(
      dir,
      'pglite-missing.mjs',
      `import { UserEngineError } from 'user-engine'
const { createPgliteStore } = await import('user-engine/pglite')
let out
try {
  const store = await createPgliteStore()
  await store.close()
  out = { opened: true }
} catch (error) {
  out = { userEngineError: error instanceof UserEngineError, name: error.name, code: error.code, message: error.message }
}
console.log(JSON.stringify(out))
`,
    )
    assert.equal(r.code, 0, describeRun('pglite-missing.mjs', r))
    const out = JSON.parse(r.stdout)
    assert.equal(out.code, 'DEPENDENCY_MISSING', r.stdout)
    assert.equal(out.userEngineError, true, r.stdout)
    assert.ok(String(out.message).includes(PGLITE), r.stdout)
  })

  test(`user-engine demo on the default PGlite store fails (exit 1) naming ${PGLITE}`, LONG, async () => {
    const r = await run('npx', ['--no', '--', 'user-engine', 'demo'], { cwd: dir, env: USER_ENV })
    assert.equal(r.code, 1, describeRun('npx user-engine demo without PGlite', r))
    assert.ok(r.stderr.includes(PGLITE), describeRun('the error names the missing package', r))
  })

  test('against PostgreSQL: migrate, register through UserEngine, read back', {
    ...LONG,
    skip: pgSkip,
  }, async () => {
    const db = await createTestDatabase('ue_pkg')
    try {
      const env = { ...USER_ENV, UE_PKG_DATABASE_URL: db.url }
      const r = await runScript(
        dir,
        'postgres.mjs',
        `import { createKeyring, generateKey, UserEngine } from 'user-engine'
import { createNodePostgresStore } from 'user-engine/postgres'
const connectionString = process.env.UE_PKG_DATABASE_URL
const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } })
const passwordHashing = { memoryCost: 1024, timeCost: 1, parallelism: 1 }
const store = await createNodePostgresStore({ connectionString })
let tenant, user
try {
  await store.migrate()
  const engine = new UserEngine({ store, keyring, passwordHashing })
  tenant = await engine.createTenant('Acme')
  user = await engine.registerUser(tenant.id, { email: 'Ann@Example.com', password: 'correct horse battery' })
} finally {
  await store.close()
}
// Read back through a second store: what was registered is in the database.
const reader = await createNodePostgresStore({ connectionString })
try {
  const engine = new UserEngine({ store: reader, keyring, passwordHashing })
  const read = await engine.getUser(tenant.id, user.id)
  const byEmail = await engine.findUserByEmail(tenant.id, 'ann@example.com')
  const password = await engine.verifyPassword(tenant.id, { email: 'ann@example.com' }, 'correct horse battery')
  console.log(JSON.stringify({ same: read.id === user.id && byEmail?.id === user.id, status: read.status, password }))
} finally {
  await reader.close()
}
`,
        env,
      )
      assert.equal(r.code, 0, describeRun('postgres.mjs', r))
      assert.deepEqual(JSON.parse(r.stdout), { same: true, status: 'active', password: true })
      const status = await run('npx', ['--no', '--', 'user-engine', 'status', '--database-url', db.url], {
        cwd: dir,
        env: USER_ENV,
      })
      assert.equal(status.code, 0, describeRun('user-engine status on the migrated database', status))
    } finally {
      await db.drop()
    }
  })
})
