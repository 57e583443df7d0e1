import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { CONFORMANCE_SUITES, conformanceCases } from '../../src/testing/index.js'
import { openPgliteImage } from '../support/images.js'
import { runCli, spawnCli } from './run-cli.js'

const dirs: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'ue-cli-'))
  dirs.push(d)
  return d
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const all = Array.from({ length: LATEST_SCHEMA_VERSION }, (_, i) => i + 1)

// Most tests run `main` in this process; these run the bin as a user would, for what only a process shows.
describe('the bin (spawned)', () => {
  test('exits with the code main returns: 0 for --help, 2 for a usage error, 3 for pending migrations', async () => {
    const help = await spawnCli(['--help'])
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /^usage: user-engine <command>/)
    const usage = await spawnCli(['frobnicate'])
    assert.equal(usage.code, 2, usage.stderr)
    assert.match(usage.stderr, /unknown command: frobnicate/)
    const pending = await spawnCli(['status', '--database-url', 'memory:', '--json'])
    assert.equal(pending.code, 3, pending.stderr)
    assert.equal(JSON.parse(pending.stdout).currentVersion, 0)
  })
})

describe('usage', () => {
  test('no command, an unknown command, an unknown flag and a bad URL exit 2 with the usage', async () => {
    for (const args of [
      [],
      ['frobnicate'],
      ['status', '--nope'],
      ['status', '--database-url', 'mysql://x'],
    ]) {
      const r = await runCli(args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stdout + r.stderr, /usage: user-engine/)
    }
  })

  test('--help exits 0, for every command', async () => {
    for (const args of [['--help'], ['status', '--help'], ['conformance', '--help'], ['migrate', '--help']]) {
      const r = await runCli(args)
      assert.equal(r.code, 0, args.join(' '))
      assert.match(r.stdout, /conformance/)
    }
  })

  test('URLs in messages never show credentials', async () => {
    const { redactUrl, resolveDatabaseUrl, DEFAULT_DATABASE_URL } = await import(
      '../../src/cli/shared/open-store.js'
    )
    // The demo writes sample data: DATABASE_URL (a service's database) never routes it.
    const env = { DATABASE_URL: 'postgres://svc@db.internal/prod' }
    assert.equal(resolveDatabaseUrl(undefined, env, 'demo'), DEFAULT_DATABASE_URL)
    assert.equal(resolveDatabaseUrl('memory:', env, 'demo'), 'memory:')
    assert.equal(resolveDatabaseUrl(undefined, env), env.DATABASE_URL)
    assert.equal(redactUrl('nats://s3cret@127.0.0.1:4222'), 'nats://***@127.0.0.1:4222')
    assert.equal(redactUrl('nats://u:p1@h:1,nats://u:p2@h:2'), 'nats://***@h:1,nats://***@h:2')
    assert.doesNotMatch(redactUrl('postgres://app@db/x?password=hunter2'), /hunter2|app@/)
    assert.equal(redactUrl('pglite:./data'), 'pglite:./data')
  })
})

describe('status, migrate, plan on embedded PGlite', () => {
  // Nested and not yet there, like the default ./.user-engine/data on a fresh checkout.
  const url = `pglite:${join(tempDir(), 'state', 'db')}`

  test('status on a new database: exit 3, JSON with every version pending', async () => {
    const r = await runCli(['status', '--database-url', url, '--json'])
    assert.equal(r.code, 3, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), {
      currentVersion: 0,
      latestVersion: LATEST_SCHEMA_VERSION,
      pending: all,
      drift: [],
    })
    assert.equal(existsSync(url.slice('pglite:'.length)), false, 'status created nothing')
    // The other commands refuse a missing embedded database instead of creating it; plan reads it as empty.
    for (const command of [['diagnostics'], ['outbox', 'list', '--dead'], ['keys', 'status'], ['purge']]) {
      const refused = await runCli([...command, '--database-url', url])
      assert.equal(refused.code, 2, `${command.join(' ')}: ${refused.stderr}`)
      assert.match(refused.stderr, /no database at .*user-engine migrate/)
    }
    assert.equal(existsSync(url.slice('pglite:'.length)), false, 'nothing created')
  })

  test('status takes --query-timeout like the other commands that open a store', async () => {
    const r = await runCli(['status', '--database-url', 'memory:', '--query-timeout', '5s'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--query-timeout applies to postgres/)
  })

  test('plan prints the SQL without applying it', async () => {
    const r = await runCli(['plan', '--database-url', url])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /CREATE TABLE user_engine_records/)
    assert.equal(existsSync(url.slice('pglite:'.length)), false, 'plan created nothing')
    assert.equal((await runCli(['status', '--database-url', url])).code, 3)
  })

  test('migrate applies every version with timings and progress; a second run applies nothing', async () => {
    const first = await runCli(['migrate', '--database-url', url, '--json'])
    assert.equal(first.code, 0, first.stderr)
    const result = JSON.parse(first.stdout)
    assert.equal(result.fromVersion, 0)
    assert.equal(result.toVersion, LATEST_SCHEMA_VERSION)
    assert.deepEqual(
      result.applied.map((a: { version: number }) => a.version),
      all,
    )
    assert.ok(result.applied.every((a: { executionMs: number }) => typeof a.executionMs === 'number'))
    assert.match(first.stderr, /migrate: applied 1 /)
    const second = await runCli(['migrate', '--database-url', url])
    assert.equal(second.code, 0)
    assert.match(second.stdout, /nothing applied/)
    const status = await runCli(['status', '--database-url', url, '--json'])
    assert.equal(status.code, 0)
    assert.deepEqual(JSON.parse(status.stdout).pending, [])
  })

  test('diagnostics --json prints counts only', async () => {
    const r = await runCli(['diagnostics', '--database-url', url, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const d = JSON.parse(r.stdout)
    assert.equal(d.schemaVersion, LATEST_SCHEMA_VERSION)
    for (const v of Object.values(d.counts)) assert.equal(typeof v, 'number')
    assert.deepEqual(Object.keys(d.outbox).sort(), ['dead', 'oldestPendingAgeMs', 'pending'])
  })
})

describe('schema drift and a database newer than the code exit 4 from every command that opens the store', () => {
  /** A migrated data directory (written from the image), then edited behind the runner's back. */
  async function tampered(sql: string): Promise<string> {
    const dir = join(tempDir(), 'db')
    const db = await openPgliteImage(LATEST_SCHEMA_VERSION, dir)
    await db.exec(sql)
    await db.close()
    return `pglite:${dir}`
  }

  test('drift: a changed checksum', async () => {
    const url = await tampered(`UPDATE user_engine_schema_versions SET checksum = 'edited' WHERE version = 1`)
    for (const cmd of ['migrate', 'diagnostics', 'demo']) {
      const r = await runCli([cmd, '--database-url', url])
      assert.equal(r.code, 4, `${cmd}: ${r.stderr}`)
      assert.match(r.stderr, /SCHEMA_DRIFT/)
    }
    // status reports what drifted instead of only refusing.
    const status = await runCli(['status', '--database-url', url, '--json'])
    assert.equal(status.code, 4, status.stderr)
    assert.deepEqual(JSON.parse(status.stdout).drift, [
      { version: 1, name: 'user_engine_store', reason: 'checksum' },
    ])
  })

  test('newer than code: an unknown applied version', async () => {
    const url = await tampered(
      `INSERT INTO user_engine_schema_versions (version, name, checksum, execution_ms) VALUES (99, 'future', 'x', 1)`,
    )
    const r = await runCli(['migrate', '--database-url', url, '--json'])
    assert.equal(r.code, 4, r.stderr)
    assert.equal(JSON.parse(r.stdout).error.code, 'SCHEMA_NEWER_THAN_CODE')
    const status = await runCli(['status', '--database-url', url, '--json'])
    assert.equal(status.code, 4)
    assert.deepEqual(JSON.parse(status.stdout).drift, [
      { version: 99, name: 'future', reason: 'unknown_version' },
    ])
  })
})

describe('demo and conformance', () => {
  test('demo on the reference store prints the walkthrough', async () => {
    assert.equal((await runCli(['demo', '--database-url', 'memory:', '--json'])).code, 2, 'no JSON to print')
    const r = await runCli(['demo', '--database-url', 'memory:'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /Audit trail/)
    assert.match(r.stdout, /Diagnostics/)
  })

  test('conformance --store MODULE runs the harness on a provider module and reports each case', async () => {
    const dir = tempDir()
    const module = join(dir, 'store.mjs')
    const memory = new URL('../../src/store/memory/index.ts', import.meta.url).href
    writeFileSync(
      module,
      `import { InMemoryUserEngineStore } from '${memory}'\nexport default async () => new InMemoryUserEngineStore()\n`,
    )
    const r = await runCli([
      'conformance',
      '--store',
      module,
      '--suite',
      'rollback',
      '--suite',
      'migrator-race',
      '--json',
    ])
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    // Exactly the cases of the two suites; those needing several stores over one database are skipped (a
    // module's default export is a single store factory), each with its reason.
    const expected = conformanceCases({
      createStore: async () => new InMemoryUserEngineStore(),
      capabilities: new InMemoryUserEngineStore().capabilities,
      suites: ['rollback', 'migrator-race'],
    })
    const total = CONFORMANCE_SUITES.filter(
      (s) => s.name === 'rollback' || s.name === 'migrator-race',
    ).reduce((n, s) => n + s.cases.length, 0)
    assert.equal(expected.length, total)
    const expectedSkips = expected.filter((c) => c.skip !== undefined)
    assert.equal(report.failed, 0)
    assert.equal(report.passed, total - expectedSkips.length)
    assert.equal(report.skipped, expectedSkips.length)
    const skipped = report.cases.filter((c: { status: string }) => c.status === 'skipped')
    // The module passes no capabilities option: the store's own declaration is the reason given.
    const byStore = (reason: string) =>
      reason.replace(
        /^the capabilities option lacks the (\w+) capability.*$/,
        'the store lacks the $1 capability',
      )
    assert.deepEqual(
      skipped.map((c: { name: string; reason?: string }) => [c.name, c.reason]),
      expectedSkips.map((c) => [c.name, byStore(c.skip!)]),
    )
    assert.match(r.stderr, /conformance: \[1\]/)
  })

  test('conformance --store MODULE reads the hooks: a default object, or named exports beside a default or named factory', async () => {
    const dir = tempDir()
    const memory = new URL('../../src/store/memory/index.ts', import.meta.url).href
    const factory = `async () => new InMemoryUserEngineStore()`
    const hook = `async (store, refusal) => store.refuseRows(refusal)`
    const modules = {
      'default-object.mjs': `export default { createStore: ${factory}, refuseRows: ${hook} }`,
      'default-function.mjs': `export default ${factory}\nexport const refuseRows = ${hook}`,
      'named.mjs': `export const createStore = ${factory}\nexport const refuseRows = ${hook}`,
    }
    const refused =
      "rollback: a commit whose audit record or event the database refuses writes none of the unit's records, audit or events"
    for (const [file, body] of Object.entries(modules)) {
      const module = join(dir, file)
      writeFileSync(module, `import { InMemoryUserEngineStore } from '${memory}'\n${body}\n`)
      const r = await runCli(['conformance', '--store', module, '--suite', 'rollback', '--json'])
      assert.equal(r.code, 0, `${file}: ${r.stderr}`)
      const report = JSON.parse(r.stdout)
      const atomicity = report.cases.find((c: { name: string }) => c.name === refused)
      // Without the hook this case is skipped (refuseRows): here it runs.
      assert.equal(
        atomicity?.status,
        'passed',
        `${file}: the refuseRows case ${atomicity?.status} (${atomicity?.reason})`,
      )
      assert.equal(report.skipped, 0, file)
      assert.match(
        r.stderr,
        /hooks found: refuseRows; absent: createSharedStores, plantSchemaVersion, reopenStore \(their cases are skipped\); destroyStore \(no store is cleaned up after its case\)/,
        file,
      )
    }
    const wrong = join(dir, 'wrong.mjs')
    writeFileSync(
      wrong,
      `import { InMemoryUserEngineStore } from '${memory}'\nexport default ${factory}\nexport const refuseRows = true\n`,
    )
    const r = await runCli(['conformance', '--store', wrong, '--suite', 'rollback'])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /refuseRows is not a function/)
    const none = join(dir, 'none.mjs')
    writeFileSync(none, 'export const something = 1\n')
    const missing = await runCli(['conformance', '--store', none, '--suite', 'rollback'])
    assert.notEqual(missing.code, 0)
    assert.match(missing.stderr, /no store factory/)
  })

  test('conformance exits 1 when a case fails', async () => {
    const dir = tempDir()
    const module = join(dir, 'broken.mjs')
    const memory = new URL('../../src/store/memory/index.ts', import.meta.url).href
    // A store whose readiness always claims ready: the readiness suite must fail.
    writeFileSync(
      module,
      `import { InMemoryUserEngineStore } from '${memory}'
export default async () => {
  const store = new InMemoryUserEngineStore()
  store.readiness = async () => ({ ready: true, schemaVersion: 3, latestVersion: 3, reason: null })
  return store
}\n`,
    )
    const r = await runCli(['conformance', '--store', module, '--suite', 'readiness'])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stdout, /failed: readiness/)
  })
})
