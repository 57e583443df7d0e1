import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { openStore, parseStoreLocation } from '../../src/cli/shared/open-store.js'
import { createKeyring, generateKey, UserEngine } from '../../src/engine/index.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import type { UserEngineStore } from '../../src/store/store.js'
import { codeFor, FAST_HASHING, T0 } from '../engine/support.js'
import { ADAPTERS } from '../support/adapters.js'
import { dataDirFromImage } from '../support/images.js'
import { createTestDatabase, postgresSkip } from '../support/services.js'
import { cliCommand, runCli } from './run-cli.js'

const K1 = generateKey()
const K2 = generateKey()
const OLD = { USER_ENGINE_KEYS: `k1:${K1}`, USER_ENGINE_CURRENT_KEY: '' }
const ROTATED = { USER_ENGINE_KEYS: `k2:${K2},k1:${K1}`, USER_ENGINE_CURRENT_KEY: 'k2' }
const ONLY_NEW = { USER_ENGINE_KEYS: `k2:${K2}`, USER_ENGINE_CURRENT_KEY: '' }

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** Runs `fn` with an engine (keyring k1, the clock at T0) over the migrated database at `url`, then closes it. */
async function withEngine<T>(url: string, fn: (engine: UserEngine) => Promise<T>): Promise<T> {
  const store = await openStore(parseStoreLocation(url))
  try {
    await store.migrate()
    const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: K1 } })
    return await fn(new UserEngine({ store, keyring, passwordHashing: FAST_HASHING, clock: () => T0 }))
  } finally {
    await store.close()
  }
}

/** `count` users with confirmed TOTP under k1 in the database at `url`; returns what verifying needs. */
async function seed(url: string, count: number) {
  return withEngine(url, async (engine) => {
    const t = (await engine.createTenant('Keys')).id
    const users: { u: string; uri: string }[] = []
    for (let i = 0; i < count; i++) {
      const u = (await engine.registerUser(t, { email: `u${i}@example.com` })).id
      const { uri } = await engine.enrollTotp(t, u)
      assert.equal(await engine.verifyTotp(t, u, codeFor(uri, T0)), true)
      users.push({ u, uri })
    }
    return { t, users }
  })
}

/** Every seed verifies with the rotated keyring minus the old key. */
async function verifyAllWithNewKeyOnly(url: string, t: string, users: readonly { u: string; uri: string }[]) {
  const store: UserEngineStore = await openStore(parseStoreLocation(url))
  try {
    const engine = new UserEngine({
      store,
      keyring: createKeyring({ currentKeyId: 'k2', keys: { k2: K2 } }),
      clock: () => T0 + 30_000,
    })
    for (const { u, uri } of users) {
      assert.equal(await engine.verifyTotp(t, u, codeFor(uri, T0 + 30_000)), true)
    }
  } finally {
    await store.close()
  }
}

describe('keys status and keys reseal (in process, PGlite)', () => {
  test('status counts seeds per key; reseal in bounded batches resumes and ends at 0 under the old key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ue-keys-'))
    dirs.push(dir)
    // Migrated from the image: these tests are about keys, not initdb.
    const url = `pglite:${await dataDirFromImage(join(dir, 'db'))}`
    const { t, users } = await seed(url, 5)

    const diagnostics = await runCli(['diagnostics', '--database-url', url])
    assert.match(diagnostics.stdout, /sealed under k1: 5/)
    assert.deepEqual(
      JSON.parse((await runCli(['diagnostics', '--database-url', url, '--json'])).stdout).sealedByKeyId,
      {
        k1: 5,
      },
    )
    const status = await runCli(['keys', 'status', '--database-url', url, '--json'], ROTATED)
    assert.equal(status.code, 0, status.stderr)
    assert.deepEqual(
      JSON.parse(status.stdout).keys.map((k: { keyId: string; sealed: number }) => [k.keyId, k.sealed]),
      [
        ['k1', 5],
        ['k2', 0],
      ],
    )

    const first = await runCli(
      ['keys', 'reseal', '--database-url', url, '--batch-size', '2', '--max-batches', '1', '--json'],
      ROTATED,
    )
    assert.equal(first.code, 1, 'stopped early: not done yet')
    assert.match(first.stderr, /keys reseal: batch 1, 2 re-sealed, 0 failed/)
    const partial = JSON.parse(first.stdout)
    assert.deepEqual([partial.resealed, partial.complete], [2, false])

    const rest = await runCli(['keys', 'reseal', '--database-url', url, '--batch-size', '2'], ROTATED)
    assert.equal(rest.code, 0, rest.stderr)
    assert.match(rest.stdout, /3 re-sealed, 0 failed, complete/)
    assert.match(rest.stdout, /k1\s+0 sealed {2}\(unused: can be removed\)/)
    await verifyAllWithNewKeyOnly(url, t, users)
    const after = await runCli(['keys', 'status', '--database-url', url, '--json'], ONLY_NEW)
    assert.deepEqual(JSON.parse(after.stdout).keys, [
      { keyId: 'k2', sealed: 5, inKeyring: true, current: true },
    ])
  })

  test('usage errors: no action, an unknown action, a bad batch size; no keyring is KEY_NOT_FOUND', async () => {
    for (const args of [
      ['keys'],
      ['keys', 'rotate'],
      ['keys', 'reseal', '--batch-size', '0'],
      ['keys', 'status', 'x'],
    ]) {
      const r = await runCli([...args, '--database-url', 'memory:'], OLD)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    }
    const none = await runCli(['keys', 'status', '--database-url', 'memory:'], { USER_ENGINE_KEYS: '' })
    assert.equal(none.code, 1)
    assert.match(none.stderr, /KEY_NOT_FOUND/)
  })
})

describe('purge (in process)', () => {
  test('deletes expired sessions and tokens once and reports counts; --interval is checked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ue-purge-'))
    dirs.push(dir)
    // Migrated from the image: these tests are about keys, not initdb.
    const url = `pglite:${await dataDirFromImage(join(dir, 'db'))}`
    await withEngine(url, async (engine) => {
      const t = (await engine.createTenant('Purge')).id
      for (const email of ['a@example.com', 'b@example.com']) {
        const u = await engine.registerUser(t, { email, password: 'correct horse battery' })
        await engine.authenticate(t, { email, password: 'correct horse battery' })
        await engine.issueEmailVerification(t, u.id)
      }
    })
    // T0 is years ago: everything written then has expired by now.
    const r = await runCli(['purge', '--database-url', url, '--batch-size', '1', '--json'])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(
      (({ sessions, tokens, complete }) => ({ sessions, tokens, complete }))(JSON.parse(r.stdout)),
      { sessions: 2, tokens: 2, complete: true },
    )
    const bad = await runCli(['purge', '--database-url', 'memory:', '--interval', 'soon'])
    assert.equal(bad.code, 2)
  })
})

// The server, where a process can be killed mid-run and another one resume: SIGKILL after the first batch.
const serverSkip = ADAPTERS.some((a) => a.name === 'postgres')
  ? await postgresSkip()
  : 'postgres not selected'
describe('keys reseal resumes after a kill (spawned, server)', { skip: serverSkip }, () => {
  test('killed after its first batch, a second run leaves 0 seeds under the old key', async () => {
    const db = await createTestDatabase('ue_keys', LATEST_SCHEMA_VERSION)
    try {
      const { t, users } = await seed(db.url, 12)
      const killed = await new Promise<{ stderr: string; signal: NodeJS.Signals | null }>(
        (resolve, reject) => {
          const child = spawn(
            process.execPath,
            cliCommand('keys', 'reseal', '--database-url', db.url, '--batch-size', '1'),
            { env: { ...process.env, DATABASE_URL: '', ...ROTATED }, stdio: ['ignore', 'ignore', 'pipe'] },
          )
          let stderr = ''
          child.stderr.on('data', (d) => {
            stderr += d
            if (/batch 1,/.test(stderr)) child.kill('SIGKILL')
          })
          child.on('error', reject)
          child.on('close', (_code, signal) => resolve({ stderr, signal }))
        },
      )
      assert.equal(killed.signal, 'SIGKILL', killed.stderr)
      const mid = await runCli(['keys', 'status', '--database-url', db.url, '--json'], ROTATED)
      const k1 = JSON.parse(mid.stdout).keys.find((k: { keyId: string }) => k.keyId === 'k1')
      assert.ok(k1.sealed > 0 && k1.sealed < 12, `killed mid-way: ${k1.sealed} left under k1`)
      const resumed = await runCli(['keys', 'reseal', '--database-url', db.url, '--json'], ROTATED)
      assert.equal(resumed.code, 0, resumed.stderr)
      assert.equal(JSON.parse(resumed.stdout).resealed, k1.sealed, 'the second run did exactly what was left')
      await verifyAllWithNewKeyOnly(db.url, t, users)
    } finally {
      await db.drop()
    }
  })
})
