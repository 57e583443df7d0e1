import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, test } from 'node:test'

// A separate project depending on the built package, as a provider team would: it imports only the public
// subpath exports and runs the harness on its own store factory under node:test.
const root = resolve(import.meta.dirname, '../..')
const project = mkdtempSync(join(tmpdir(), 'ue-consumer-'))

before(() => {
  const build = spawnSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  )
  assert.equal(build.status, 0, build.stdout + build.stderr)
  mkdirSync(join(project, 'node_modules'))
  // A link, as `npm link` makes: the package resolves through its exports map, its dependencies from its own tree.
  symlinkSync(root, join(project, 'node_modules', 'user-engine'), 'dir')
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'provider', type: 'module', private: true }),
  )
})
after(() => rmSync(project, { recursive: true, force: true }))

function run(file: string, source: string) {
  writeFileSync(join(project, file), source)
  // Without NODE_TEST_CONTEXT the child reports as a top-level run (TAP with its own summary).
  const { NODE_TEST_CONTEXT: _, ...env } = process.env
  return spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], {
    cwd: project,
    encoding: 'utf8',
    timeout: 120_000,
    env,
  })
}

test('a provider project runs the harness from user-engine/testing on its own store factory under node:test', () => {
  const r = run(
    'provider.test.mjs',
    `import { test } from 'node:test'
import { runStoreConformance, CONFORMANCE_SUITES } from 'user-engine/testing'
import { InMemoryUserEngineStore } from 'user-engine/memory'
import { LATEST_SCHEMA_VERSION, UserEngine } from 'user-engine'
if (!LATEST_SCHEMA_VERSION || !UserEngine || CONFORMANCE_SUITES.length < 10) throw new Error('exports missing')
// The provider's store: here a subclass of the reference store, standing in for their own.
class ProviderStore extends InMemoryUserEngineStore {}
runStoreConformance({
  createStore: async () => new ProviderStore(),
  test,
  skipTest: (name, reason) => test(name, { skip: reason }, () => {}),
})
`,
  )
  assert.equal(r.status, 0, r.stdout + r.stderr)
  const pass = Number(/^# pass (\d+)/m.exec(r.stdout)?.[1])
  const skipped = Number(/^# skipped (\d+)/m.exec(r.stdout)?.[1])
  assert.ok(pass >= 60, `expected the whole harness to pass, got ${pass}`)
  assert.ok(skipped >= 1, 'the multiProcess cases are reported as skipped, not passed')
  assert.match(r.stdout, /# SKIP the store lacks the multiProcess capability/)
})

test('a broken provider store fails the harness there too', () => {
  const r = run(
    'broken.test.mjs',
    `import { test } from 'node:test'
import { runStoreConformance } from 'user-engine/testing'
import { InMemoryUserEngineStore } from 'user-engine/memory'
class LeakyStore extends InMemoryUserEngineStore {
  // Reads ignore the tenant: another tenant's user becomes visible.
  async getUser(_tenantId, userId) { for (const t of seen) { const u = await super.getUser(t, userId); if (u) return u } return null }
  async transaction(tenantId, fn) { seen.add(tenantId); return super.transaction(tenantId, fn) }
}
const seen = new Set()
runStoreConformance({ createStore: async () => new LeakyStore(), test, suites: ['tenant-isolation'] })
`,
  )
  assert.notEqual(r.status, 0, 'a tenant leak must fail the tenant-isolation suite')
  assert.match(r.stdout, /^not ok .*tenant-isolation/m)
})

test('the embedded and server stores are reachable through their subpath exports', () => {
  const r = run(
    'exports.test.mjs',
    `import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createPgliteStore } from 'user-engine/pglite'
import { createNodePostgresStore } from 'user-engine/postgres'
test('exports', async () => {
  assert.equal(typeof createNodePostgresStore, 'function')
  const store = await createPgliteStore()
  await store.migrate()
  assert.equal((await store.readiness()).ready, true)
  await store.close()
})
`,
  )
  assert.equal(r.status, 0, r.stdout + r.stderr)
})
