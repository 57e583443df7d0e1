// PGlite is single-process: the driver's data-directory lock, dataDir validation, and the optional-import
// helper that turns a missing package into DEPENDENCY_MISSING. Run as a child process (UE_GUARD_CHILD set),
// this file is instead the other process holding a data directory.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import { type ErrorCode, isUserEngineError, type UserEngineError } from '../../src/domain/errors.js'
import { importOptional } from '../../src/domain/optional-import.js'
import { createKeyring, generateKey } from '../../src/engine/keyring.js'
import { UserEngine } from '../../src/engine/user-engine.js'
import { PGLITE_LOCK_FILE } from '../../src/store/postgres/driver/data-dir-lock.js'
import { createPgliteStore } from '../../src/store/postgres/pglite.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { openPgliteImage } from '../support/images.js'

const newEngine = (store: Awaited<ReturnType<typeof createPgliteStore>>) =>
  new UserEngine({ store, keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }) })

/** The child: opens the store, says `ready <pid>`, then obeys `register` and `close` lines on stdin. */
async function runChild(dataDir: string): Promise<void> {
  const say = (line: string) => process.stdout.write(`${line}\n`)
  let store: Awaited<ReturnType<typeof createPgliteStore>>
  try {
    store = await createPgliteStore({ dataDir })
  } catch (error) {
    say(`refused ${(error as UserEngineError).code} ${(error as UserEngineError).details?.pid}`)
    process.exitCode = 3
    return
  }
  await store.migrate()
  const engine = newEngine(store)
  const tenant = await engine.createTenant('Guard')
  say(`ready ${process.pid}`)
  let n = 0
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'register') {
      const user = await engine.registerUser(tenant.id, { email: `child${n++}@example.com` })
      const read = await engine.getUser(tenant.id, user.id)
      say(`registered ${tenant.id} ${read.id}`)
    } else if (line === 'exit') {
      // No close(): the exit hook is what removes the lock.
      process.exit(0)
    } else if (line === 'close') {
      await store.close()
      say('closed')
      // Nothing else may keep the process alive: it exits by itself once stdin lets go.
      process.stdin.destroy()
      return
    }
  }
  // The parent went away without a word.
  await store.close()
}

if (process.env.UE_GUARD_CHILD !== undefined) {
  await runChild(process.env.UE_GUARD_CHILD)
} else {
  registerTests()
}

interface Child {
  readonly proc: ChildProcess
  readonly pid: number
  /** The next stdout line (fails after 90 s, or if the child exits first). */
  line(): Promise<string>
  send(command: string): void
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

async function spawnHolder(dataDir: string): Promise<Child> {
  const child = startChild(dataDir)
  assert.equal(await child.line(), `ready ${child.pid}`)
  return child
}

function startChild(dataDir: string): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, UE_GUARD_CHILD: dataDir },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stderr = ''
  proc.stderr?.on('data', (chunk) => {
    stderr += String(chunk)
  })
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]()
  const child: Child = {
    proc,
    pid: proc.pid!,
    async line() {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`child: no answer in 90 s\n${stderr}`)), 90_000)
      })
      try {
        const next = await Promise.race([lines.next(), timeout])
        if (next.done) throw new Error(`child exited early: ${stderr}`)
        return next.value
      } finally {
        clearTimeout(timer)
      }
    },
    send: (command) => proc.stdin!.write(`${command}\n`),
    exited: () =>
      Promise.race([
        exit,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`child did not exit\n${stderr}`)), 30_000).unref(),
        ),
      ]),
  }
  return child
}

async function failure(fn: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now()
  try {
    const value = await fn()
    await (value as { close?: () => Promise<void> } | undefined)?.close?.()
  } catch (error) {
    return { error, ms: performance.now() - started }
  }
  return assert.fail('expected an error')
}

function assertCode(error: unknown, code: ErrorCode, pattern: RegExp): asserts error is UserEngineError {
  assert.ok(isUserEngineError(error), `not a UserEngineError: ${inspect(error)}`)
  assert.equal(error.code, code, error.message)
  assert.match(error.message, pattern)
}

function registerTests(): void {
  const root = mkdtempSync(join(tmpdir(), 'ue-pglite-guard-'))
  /** One migrated database most tests share (a new one would run initdb: seconds each). */
  const shared = join(root, 'shared')
  const lockFile = join(shared, PGLITE_LOCK_FILE)
  const children: Child[] = []
  const holder = async (dir: string) => {
    const child = await spawnHolder(dir)
    children.push(child)
    return child
  }

  before(async () => {
    // Written from the process's migrated image: no initdb, no migrations.
    const db = await openPgliteImage(LATEST_SCHEMA_VERSION, shared)
    await db.close()
  })
  after(() => {
    for (const c of children)
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
  })

  const LONG = { timeout: 180_000 }

  describe('one data directory, one process', () => {
    test(
      'a second process gets STORE_LOCKED at once, naming the holder; the holder is unharmed',
      LONG,
      async () => {
        const child = await holder(shared)
        const { error, ms } = await failure(() => createPgliteStore({ dataDir: shared }))
        assertCode(error, 'STORE_LOCKED', new RegExp(`in use by process ${child.pid}\\b`))
        assert.match(error.message, /single-process/)
        assert.match(error.message, /PostgreSQL server store/)
        assert.equal(error.details.pid, child.pid)
        assert.ok(ms < 2_000, `refused after ${Math.round(ms)} ms, not at once`)
        // The refused opener neither removed nor rewrote the holder's lock.
        assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, child.pid)

        child.send('register')
        const [word, tenantId, userId] = (await child.line()).split(' ')
        assert.equal(word, 'registered')
        child.send('close')
        assert.equal(await child.line(), 'closed')
        assert.deepEqual(await child.exited(), { code: 0, signal: null })
        assert.ok(!existsSync(lockFile), 'close() left the lock file')

        const store = await createPgliteStore({ dataDir: shared })
        try {
          assert.equal((await store.getUser(tenantId!, userId!))?.id, userId)
        } finally {
          await store.close()
        }
      },
    )

    test('a lock left by a killed process is stale: the next open recovers it', LONG, async () => {
      const child = await holder(shared)
      child.send('register')
      const [, tenantId, userId] = (await child.line()).split(' ')
      child.proc.kill('SIGKILL')
      assert.equal((await child.exited()).signal, 'SIGKILL')
      assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, child.pid, 'SIGKILL runs no cleanup')

      const store = await createPgliteStore({ dataDir: shared })
      try {
        assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid)
        assert.equal((await store.getUser(tenantId!, userId!))?.id, userId)
      } finally {
        await store.close()
      }
      assert.ok(!existsSync(lockFile))
    })

    test(
      'process.exit without close() removes the lock (best effort: a signal or a crash leaves it stale)',
      LONG,
      async () => {
        const child = await holder(shared)
        assert.ok(existsSync(lockFile))
        child.send('exit')
        assert.deepEqual(await child.exited(), { code: 0, signal: null })
        assert.ok(!existsSync(lockFile), 'the exit hook left the lock file')
      },
    )

    test('two processes opening over one stale lock at once: exactly one gets it', LONG, async () => {
      const dead = spawnSync(process.execPath, ['-e', '']).pid
      writeFileSync(
        lockFile,
        JSON.stringify({ pid: dead, hostname: hostname(), started: new Date().toISOString(), token: 'dead' }),
      )
      const pair = [startChild(shared), startChild(shared)]
      children.push(...pair)
      const first = await Promise.all(pair.map((c) => c.line()))
      const winner = pair[first.findIndex((l) => l.startsWith('ready'))]
      const loser = pair[first.findIndex((l) => l.startsWith('refused'))]
      assert.ok(winner !== undefined && loser !== undefined, first.join(' / '))
      assert.equal(first[pair.indexOf(loser)], `refused STORE_LOCKED ${winner.pid}`)
      assert.equal((await loser.exited()).code, 3)
      winner.send('close')
      assert.equal(await winner.line(), 'closed')
      assert.equal((await winner.exited()).code, 0)
      assert.ok(!existsSync(lockFile))
    })

    test(
      'this process: a second open of an open directory, by any spelling, is STORE_LOCKED; close releases it',
      LONG,
      async () => {
        const first = await createPgliteStore({ dataDir: shared })
        const link = join(root, 'link')
        symlinkSync(shared, link)
        try {
          for (const spelling of [shared, `${shared}/`, relative(process.cwd(), shared), link]) {
            const { error, ms } = await failure(() => createPgliteStore({ dataDir: spelling }))
            assertCode(error, 'STORE_LOCKED', /already open in this process/)
            assert.equal(error.details.pid, process.pid)
            assert.ok(ms < 2_000, `refused after ${Math.round(ms)} ms`)
          }
        } finally {
          await first.close()
          rmSync(link)
        }
        assert.ok(!existsSync(lockFile), 'close() left the lock file')
        const again = await createPgliteStore({ dataDir: shared })
        await again.close()
        await again.close() // idempotent, and never removes a lock it no longer holds
        assert.ok(!existsSync(lockFile))
      },
    )

    test(
      'a lock from another host counts while it is refreshed, and is stale a minute after',
      LONG,
      async () => {
        const foreign = {
          pid: 4242,
          hostname: `not-${hostname()}`,
          started: new Date().toISOString(),
          token: 'x',
        }
        writeFileSync(lockFile, JSON.stringify(foreign))
        try {
          const { error } = await failure(() => createPgliteStore({ dataDir: shared }))
          assertCode(error, 'STORE_LOCKED', /in use by process 4242 on host not-/)
          assert.equal(error.details.pid, 4242)
          const old = new Date(Date.now() - 120_000)
          utimesSync(lockFile, old, old)
          const store = await createPgliteStore({ dataDir: shared })
          await store.close()
        } finally {
          rmSync(lockFile, { force: true })
        }
      },
    )

    test(
      'a lock naming this pid from an earlier process (a restarted container) is stale',
      LONG,
      async () => {
        const earlier = {
          pid: process.pid,
          hostname: hostname(),
          startTicks: 1,
          started: '2000-01-01T00:00:00.000Z',
        }
        writeFileSync(lockFile, JSON.stringify({ ...earlier, token: 'earlier' }))
        const store = await createPgliteStore({ dataDir: shared })
        assert.notEqual(JSON.parse(readFileSync(lockFile, 'utf8')).token, 'earlier')
        await store.close()
        assert.ok(!existsSync(lockFile))
      },
    )

    test(
      'an unreadable lock file (a crash between create and write) is stale once it is not new',
      LONG,
      async () => {
        writeFileSync(lockFile, '')
        const old = new Date(Date.now() - 10_000)
        utimesSync(lockFile, old, old)
        const store = await createPgliteStore({ dataDir: shared })
        await store.close()
        assert.ok(!existsSync(lockFile))
      },
    )

    test('an in-memory database takes no lock: two at once are fine', LONG, async () => {
      const [a, b] = await Promise.all([createPgliteStore(), createPgliteStore()])
      await Promise.all([a.close(), b.close()])
    })
  })

  describe('dataDir is checked before PGlite loads', () => {
    test('an existing file is VALIDATION at once', async () => {
      const file = join(root, 'a-file')
      writeFileSync(file, 'not a database')
      const { error, ms } = await failure(() => createPgliteStore({ dataDir: file }))
      assertCode(error, 'VALIDATION', /exists and is not a directory/)
      assert.ok(error.message.includes(file), error.message)
      assert.ok(ms < 1_000, `took ${Math.round(ms)} ms`)
      assert.equal(readFileSync(file, 'utf8'), 'not a database')
      const under = await failure(() => createPgliteStore({ dataDir: join(file, 'db') }))
      assertCode(under.error, 'VALIDATION', /a parent of it is a file/)
    })

    test('not a string, empty, a URL: VALIDATION without echoing the value', async () => {
      for (const [dataDir, pattern] of [
        [42, /dataDir must be a string/],
        [null, /dataDir must be a string/],
        [{ path: '/x' }, /dataDir must be a string/],
        ['', /dataDir is empty/],
        ['   ', /dataDir is empty/],
        ['memory://secret-ish', /not a URL/],
        ['a\0b', /NUL/],
        ['a\nb', /control character/],
        ['a\u009bb', /control character/],
        ['a\ud800b', /lone surrogate/],
      ] as Array<[unknown, RegExp]>) {
        const { error } = await failure(() => createPgliteStore({ dataDir: dataDir as string }))
        assertCode(error, 'VALIDATION', pattern)
        assert.doesNotMatch(error.message, /secret-ish/)
      }
      assertCode(
        (await failure(() => createPgliteStore(7 as never))).error,
        'VALIDATION',
        /must be an object/,
      )
      assertCode(
        (await failure(() => createPgliteStore({ datadir: '/x' } as never))).error,
        'VALIDATION',
        /unknown key "datadir"/,
      )
    })

    test('a non-empty directory holding no database is refused and left as it was', async () => {
      const dir = join(root, 'project')
      mkdirSync(dir)
      writeFileSync(join(dir, 'notes.txt'), 'mine')
      const { error } = await failure(() => createPgliteStore({ dataDir: dir }))
      assertCode(error, 'VALIDATION', /not empty and holds no PGlite database/)
      assert.deepEqual(readdirSync(dir), ['notes.txt'])
    })

    test(
      'an existing data directory open to other users is restricted to its owner (0700)',
      LONG,
      async () => {
        // PGlite writes its files 0666 whatever the umask: the directory alone keeps other users out.
        const dir = join(root, 'made-by-a-deploy-script')
        mkdirSync(dir, { mode: 0o755 })
        chmodSync(dir, 0o755)
        const store = await createPgliteStore({ dataDir: dir })
        await store.close()
        assert.equal(statSync(dir).mode & 0o777, 0o700)
        // A directory the store creates is 0700 from the start, its new parents as the umask makes them.
        const nested = join(root, 'new-parent', 'db')
        await (await createPgliteStore({ dataDir: nested })).close()
        assert.equal(statSync(nested).mode & 0o777, 0o700)
      },
    )

    test('a path Node cannot make recursively (/proc) fails at once, typed', {
      skip: process.platform !== 'linux' ? '/proc is Linux-only' : false,
    }, async () => {
      const { error } = await failure(() => createPgliteStore({ dataDir: '/proc/user-engine-nope/db' }))
      assertCode(error, 'STORE_UNAVAILABLE', /cannot create the PGlite data directory/)
    })

    test('a directory this process may not create is STORE_UNAVAILABLE saying so', {
      skip: process.getuid?.() === 0 ? 'root may write anywhere' : false,
    }, async () => {
      const locked = join(root, 'read-only')
      mkdirSync(locked, { mode: 0o500 })
      try {
        const { error } = await failure(() => createPgliteStore({ dataDir: join(locked, 'db') }))
        assertCode(
          error,
          'STORE_UNAVAILABLE',
          /cannot create the PGlite data directory .*\(EACCES\).*permissions/,
        )
      } finally {
        chmodSync(locked, 0o700)
      }
    })
  })

  describe('importOptional', () => {
    test('a package that is not installed is DEPENDENCY_MISSING naming npm i <package>', async () => {
      const name = 'user-engine-no-such-package'
      for (const specifier of [name, `${name}/sub`]) {
        const { error } = await failure(() => importOptional(() => import(specifier), name, 'the test store'))
        assertCode(
          error,
          'DEPENDENCY_MISSING',
          new RegExp(`the test store needs the package ${name}.*npm i ${name}$`),
        )
        assert.equal(error.details.package, name)
        assert.equal((error.cause as { code?: string }).code, 'ERR_MODULE_NOT_FOUND')
      }
    })

    test('an installed package loads; any other failure is rethrown as it was', async () => {
      const assertModule = await importOptional(() => import('node:assert'), 'node:assert', 'the test')
      assert.equal(typeof assertModule.strict, 'function')
      // A dependency of the package is missing: installing the package itself would not help.
      const transitive = Object.assign(
        new Error("Cannot find package 'left-pad' imported from /app/node_modules/some-pkg/index.js"),
        { code: 'ERR_MODULE_NOT_FOUND' },
      )
      const broken = new SyntaxError('Unexpected token')
      for (const original of [transitive, broken]) {
        const { error } = await failure(() =>
          importOptional(() => Promise.reject(original), 'some-pkg', 'the test'),
        )
        assert.equal(error, original)
      }
    })
  })
}
