// Every factory and option is validated and every raw error is typed: each test below is one input that
// used to raise a raw error (TypeError, a bare SQLSTATE) and now raises a UserEngineError with a message a
// person can act on, holding no password.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { inspect } from 'node:util'
import { type ErrorCode, isUserEngineError, type UserEngineError } from '../../src/domain/errors.js'
import { createKeyring } from '../../src/engine/keyring.js'
import { UserEngine } from '../../src/engine/user-engine.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import type { SqlDriver } from '../../src/store/postgres/driver/driver.js'
import { SanitizedDatabaseError } from '../../src/store/postgres/driver/errors.js'
import { createNodePostgresStore, PostgresUserEngineStore } from '../../src/store/postgres/node-postgres.js'
import { ADAPTERS } from '../support/adapters.js'
import { POSTGRES_ADMIN_URL, postgresSkip } from '../support/services.js'

const CANARY = 'Sekr1t-Canary'
const pgSkip = await postgresSkip()

/** The admin URL with another user, password and database: the server answers, the names do not exist. */
function serverUrl(parts: { user?: string; database?: string }): string {
  const url = new URL(POSTGRES_ADMIN_URL)
  if (parts.user !== undefined) url.username = parts.user
  url.password = CANARY
  if (parts.database !== undefined) url.pathname = `/${parts.database}`
  return url.toString()
}

const throwaway = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`

async function failure(promise: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    const value = typeof promise === 'function' ? promise() : await promise
    // A store that opened by mistake must not leak its pool into the next test.
    await (value as { close?: () => Promise<void> } | undefined)?.close?.()
  } catch (error) {
    return error
  }
  return assert.fail('expected an error')
}

/** The error is a UserEngineError of `code` whose message matches `pattern` and holds no password. */
function assertTyped(error: unknown, code: ErrorCode, pattern: RegExp): asserts error is UserEngineError {
  assert.ok(isUserEngineError(error), `not a UserEngineError: ${inspect(error)}`)
  assert.equal(error.code, code, error.message)
  assert.match(error.message, pattern)
  assert.doesNotMatch(error.message, /^database error|^SQLSTATE|\bSQLSTATE [0-9A-Z]{5}$/, 'a bare SQLSTATE')
  for (const [where, text] of [
    ['message', error.message],
    ['JSON', JSON.stringify(error)],
    ['cause', String(error.cause)],
    ['inspect', inspect(error, { depth: 5 })],
  ] as const) {
    assert.ok(!text.includes(CANARY), `the password leaked into the ${where}: ${text}`)
  }
}

// ---- a fake server: what PgBouncer, a full or a starting server, or a failed password sends at startup --

interface FakeServer {
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** Answers every startup packet with one ErrorResponse, then closes: the server side of a refused startup. */
async function fakePostgres(fields: { code: string; message: string; detail?: string }): Promise<FakeServer> {
  const field = (type: string, value: string) => Buffer.from(`${type}${value}\0`, 'utf8')
  const body = Buffer.concat([
    field('S', 'FATAL'),
    field('V', 'FATAL'),
    field('C', fields.code),
    field('M', fields.message),
    ...(fields.detail === undefined ? [] : [field('D', fields.detail)]),
    Buffer.from([0]),
  ])
  const header = Buffer.alloc(5)
  header.write('E', 0)
  header.writeInt32BE(body.length + 4, 1)
  const server: Server = createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => socket.end(Buffer.concat([header, body])))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `postgres://ann:${CANARY}@127.0.0.1:${port}/app`,
    port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

async function withFake(fields: { code: string; message: string; detail?: string }): Promise<{
  error: unknown
  port: number
}> {
  const fake = await fakePostgres(fields)
  try {
    return { error: await failure(createNodePostgresStore({ connectionString: fake.url })), port: fake.port }
  } finally {
    await fake.close()
  }
}

// ---- the server refuses or cannot be reached ---------------------------------------------------------

describe('createNodePostgresStore against a server that refuses the connection', { skip: pgSkip }, () => {
  test('a database that does not exist (3D000) is STORE_REFUSED naming the database', async () => {
    const database = throwaway('ue_missing')
    const error = await failure(createNodePostgresStore({ connectionString: serverUrl({ database }) }))
    assertTyped(error, 'STORE_REFUSED', new RegExp(`database "${database}" does not exist`))
    assert.match(error.message, /127\.0\.0\.1:5432|localhost:5432/)
    assert.ok(error.cause instanceof SanitizedDatabaseError)
    assert.equal(error.cause.code, '3D000')
    assert.equal(error.details.sqlState, '3D000')
  })

  test('a role that does not exist (28000) is STORE_REFUSED naming the role', async () => {
    const user = throwaway('ue_norole')
    const error = await failure(
      createNodePostgresStore({ connectionString: serverUrl({ user, database: 'postgres' }) }),
    )
    assertTyped(error, 'STORE_REFUSED', new RegExp(`role "${user}" does not exist`))
    assert.ok(error.cause instanceof SanitizedDatabaseError)
    assert.equal(error.cause.code, '28000')
  })

  test('a startup parameter the server refuses (42704 at startup) is STORE_REFUSED, not a bare SQLSTATE', async () => {
    const url = new URL(serverUrl({}))
    url.searchParams.set('options', '-c ue_no_such_setting=1')
    const error = await failure(createNodePostgresStore({ connectionString: url.toString() }))
    assertTyped(error, 'STORE_REFUSED', /unrecognized configuration parameter "ue_no_such_setting"/)
  })
})

test('failed password authentication (28P01) is STORE_REFUSED naming the user, never the password', async () => {
  // The test server trusts every connection, so the refusal comes from a fake that answers as Postgres does.
  const { error, port } = await withFake({
    code: '28P01',
    message: `password authentication failed for user "ann" (password ${CANARY})`,
  })
  assertTyped(error, 'STORE_REFUSED', /password authentication failed for user "ann"/)
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`))
  assert.match(error.message, /check the user name and password/)
  assert.ok(error.cause instanceof SanitizedDatabaseError)
  assert.equal(error.cause.code, '28P01')
})

test('a protocol refusal at startup (08P01, a pooler rejecting a parameter) is STORE_REFUSED with the server message', async () => {
  const { error } = await withFake({
    code: '08P01',
    message: 'unsupported startup parameter: search_path',
    detail: `never quoted: ${CANARY}`,
  })
  assertTyped(error, 'STORE_REFUSED', /unsupported startup parameter: search_path/)
  assert.doesNotMatch(error.message, /never quoted/)
})

test('a full server (53300) and a starting one (57P03) are STORE_UNAVAILABLE with host:port', async () => {
  for (const [code, message] of [
    ['53300', 'sorry, too many clients already'],
    ['57P03', 'the database system is starting up'],
  ] as const) {
    const { error, port } = await withFake({ code, message })
    assertTyped(error, 'STORE_UNAVAILABLE', new RegExp(`127\\.0\\.0\\.1:${port}.*${message}`))
    assert.equal(error.details.sqlState, code)
  }
})

test('an unreachable server (ECONNREFUSED) is STORE_UNAVAILABLE naming host:port, not the URL', async () => {
  const error = await failure(
    createNodePostgresStore({ connectionString: `postgres://ann:${CANARY}@127.0.0.1:1/app` }),
  )
  assertTyped(error, 'STORE_UNAVAILABLE', /127\.0\.0\.1:1\b.*connection refused/)
  assert.doesNotMatch(error.message, /postgres:\/\/|ann/)
  assert.ok(error.cause instanceof SanitizedDatabaseError)
  assert.deepEqual({ host: error.details.host, port: error.details.port }, { host: '127.0.0.1', port: '1' })
})

// ---- options that are not what they must be ----------------------------------------------------------

test('a malformed connection string is VALIDATION, without echoing it', async () => {
  for (const connectionString of [
    'postgres://%%%',
    'not a url',
    `postgres://ann:${CANARY}%zz@127.0.0.1/app`,
    `mysql://ann:${CANARY}@127.0.0.1/app`,
    '',
    // A NUL, raw or escaped, would end a startup-message string early and let the rest add settings.
    `postgres://ann:${CANARY}@127.0.0.1/app%00application_name%00injected`,
    `postgres://ann:${CANARY}@127.0.0.1/app\u0000options\u0000-c`,
    // URL parsing would trim these away (or read ' postgres://h/db' as a relative URL): refused instead.
    ` postgres://ann:${CANARY}@127.0.0.1/app`,
    `\tpostgres://ann:${CANARY}@127.0.0.1/app`,
    `postgres://ann:${CANARY}@127.0.0.1/app\n`,
    `postgres://ann:${CANARY}@127.0.0.1/a\npp`,
    // C1 controls (U+009B starts a terminal escape), raw or percent-encoded, and an encoded newline.
    `postgres://ann:${CANARY}@127.0.0.1/app\u009b2J`,
    `postgres://ann:${CANARY}@127.0.0.1/app\u0085`,
    `postgres://ann:${CANARY}%0A@127.0.0.1/app`,
    `postgres://ann:${CANARY}@127.0.0.1/app%C2%85`,
  ]) {
    const error = await failure(createNodePostgresStore({ connectionString }))
    assertTyped(
      error,
      'VALIDATION',
      /connectionString (is not a valid postgres:\/\/ URL|must start with|is empty|has surrounding whitespace, a control character or a NUL)/,
    )
    assert.ok(!error.message.includes(connectionString) || connectionString === '', error.message)
    assert.ok(!error.message.includes(CANARY) && !JSON.stringify(error).includes(CANARY), error.message)
    assert.equal(error.cause, undefined, 'the TypeError (whose input is the string) is not kept')
  }
})

test('a pool without query, connect and end is VALIDATION naming what a pool must have', async () => {
  for (const pool of [{}, { query: () => {} }, 5, null]) {
    const error = await failure(createNodePostgresStore({ pool } as never))
    assertTyped(
      error,
      'VALIDATION',
      /pool must be a pg\.Pool \(an object with query, connect and end functions\)/,
    )
  }
})

test('createNodePostgresStore options that are not an object, mistyped or unknown are VALIDATION', async () => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    ['postgres://x', /options must be an object/],
    [[], /options must be an object/],
    [{ connectionString: 5 }, /connectionString must be a string/],
    [
      { connectionstring: 'postgres://x' },
      /unknown key "connectionstring"; known keys: connectionString, pool/,
    ],
    [{ requireLatestSchema: 'no' }, /requireLatestSchema must be true or false/],
    [{ migrationLockTimeoutMs: -1 }, /migrationLockTimeoutMs must be an integer from 0/],
    [
      { connectionString: 'postgres://127.0.0.1/x', pool: { query() {}, connect() {}, end() {} } },
      /connectionString or pool, not both/,
    ],
  ]
  for (const [options, pattern] of cases) {
    assertTyped(await failure(createNodePostgresStore(options as never)), 'VALIDATION', pattern)
  }
})

test('PostgresUserEngineStore.open: a non-driver and bad options are VALIDATION; the driver is closed', async () => {
  for (const driver of [null, {}, { kind: 'mysql', query() {}, exec() {}, session() {}, close() {} }]) {
    assertTyped(
      await failure(PostgresUserEngineStore.open(driver as never)),
      'VALIDATION',
      /needs a SqlDriver .*createNodePostgresDriver or createPgliteDriver/,
    )
  }
  for (const [options, pattern] of [
    [null, /open options must be an object/],
    [{ requireLatestSchema: 1 }, /requireLatestSchema must be true or false/],
    [{ migrationLockTimeoutMs: 1.5 }, /migrationLockTimeoutMs must be an integer/],
    [{ requireLatest: false }, /unknown key "requireLatest"/],
  ] as Array<[unknown, RegExp]>) {
    let closed = false
    const driver: SqlDriver = {
      kind: 'pglite',
      query: async () => assert.fail('nothing runs before the options are checked'),
      exec: async () => assert.fail('nothing runs before the options are checked'),
      session: async () => assert.fail('nothing runs before the options are checked'),
      close: async () => {
        closed = true
      },
    }
    assertTyped(await failure(PostgresUserEngineStore.open(driver, options as never)), 'VALIDATION', pattern)
    assert.ok(closed, 'the driver is closed when opening fails')
  }
})

test('InMemoryUserEngineStore options that are not an object, mistyped or unknown are VALIDATION', async () => {
  for (const [options, pattern] of [
    [null, /InMemoryUserEngineStore options must be an object/],
    [5, /InMemoryUserEngineStore options must be an object/],
    [{ migrated: 'yes' }, /migrated must be true or false/],
    [{ migrate: true }, /unknown key "migrate"; known keys: migrated/],
  ] as Array<[unknown, RegExp]>) {
    assertTyped(await failure(() => new InMemoryUserEngineStore(options as never)), 'VALIDATION', pattern)
  }
})

test('without the pg package, the node-postgres factory is DEPENDENCY_MISSING naming npm i pg', async () => {
  // A child process whose module resolution cannot find `pg`, as in an install without the peer.
  const dir = mkdtempSync(join(tmpdir(), 'ue-no-pg-'))
  try {
    const hooks = join(dir, 'hooks.mjs')
    writeFileSync(
      hooks,
      `export async function resolve(specifier, context, next) {
  if (specifier === 'pg' || specifier.startsWith('pg/')) {
    const error = new Error(\`Cannot find package '\${specifier}' imported from \${context.parentURL}\`)
    error.code = 'ERR_MODULE_NOT_FOUND'
    throw error
  }
  return next(specifier, context)
}\n`,
    )
    const register = join(dir, 'register.mjs')
    writeFileSync(
      register,
      `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(hooks).href)})\n`,
    )
    const entry = pathToFileURL(join(import.meta.dirname, '../../src/store/postgres/node-postgres.ts')).href
    const script = `
const { createNodePostgresStore } = await import(${JSON.stringify(entry)})
try {
  await createNodePostgresStore({ connectionString: 'postgres://ann:${CANARY}@127.0.0.1:1/app' })
  console.log(JSON.stringify({ opened: true }))
} catch (error) {
  console.log(JSON.stringify({ json: JSON.stringify(error), message: String(error?.message), code: error?.code, cause: String(error?.cause) }))
}`
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          '--import',
          pathToFileURL(register).href,
          '--input-type=module',
          '--eval',
          script,
        ],
        { cwd: join(import.meta.dirname, '../..'), timeout: 60_000 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      )
    })
    const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
      code?: string
      message?: string
      json?: string
      cause?: string
    }
    assert.equal(result.code, 'DEPENDENCY_MISSING', stdout)
    assert.match(result.message ?? '', /npm i pg/)
    for (const text of [result.message, result.json, result.cause]) assert.ok(!text?.includes(CANARY))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

// ---- the engine's options ----------------------------------------------------------------------------

test('UserEngine options are checked in the constructor, not at first use', async () => {
  const store = new InMemoryUserEngineStore({ migrated: true })
  const keyring = createKeyring({ currentKeyId: 'k1', keys: { k1: new Uint8Array(32).fill(7) } })
  const cases: Array<[unknown, RegExp]> = [
    [undefined, /UserEngine options must be an object/],
    [null, /UserEngine options must be an object/],
    [{ keyring }, /options\.store must be a UserEngineStore/],
    [{ store: {}, keyring }, /options\.store must be a UserEngineStore \(it has no transaction function\)/],
    [{ store: { transaction() {} }, keyring }, /it has no getTenant function/],
    [{ store }, /options\.keyring must be a keyring/],
    [{ store, keyring: { currentKeyId: 'k1', keys: 5 } }, /keyring\.keys must be an object/],
    [{ store, keyring, clock: 5 }, /options\.clock must be a function/],
    [{ store, keyring, clock: null }, /options\.clock must be a function/],
    [{ store, keyring, passwordHashing: null }, /passwordHashing must be an object/],
    [
      { store, keyring, passwordHashing: { memoryCost: 19456 } },
      /passwordHashing\.timeCost must be an integer/,
    ],
    [
      { store, keyring, passwordHashing: { memoryCost: 19456, timeCost: 2, parallelism: 1, secret: 'x' } },
      /passwordHashing has an unknown key "secret"/,
    ],
    [{ store, keyring, passwordHashing: { memoryCost: 8, timeCost: 1, parallelism: 4 } }, /8 KiB per lane/],
    [{ store, keyring, totp: 'sha1' }, /options\.totp must be an object/],
    [{ store, keyring, totp: { digits: 4 } }, /totp\.digits must be an integer from 6 to 10/],
    [{ store, keyring, totp: { digit: 8 } }, /totp has an unknown key "digit"/],
    [{ store, keyring, recoveryCodeCount: 0 }, /recoveryCodeCount must be an integer from 1 to 50/],
    [{ store, keyring, maxAttempts: '8' }, /maxAttempts must be an integer from 1 to 100/],
    [{ store, keyring, recoveryCodeCount: null }, /recoveryCodeCount must be an integer from 1 to 50/],
    [{ store, keyring, hashing: {} }, /unknown key "hashing"/],
  ]
  for (const [options, pattern] of cases) {
    assertTyped(await failure(() => new UserEngine(options as never)), 'VALIDATION', pattern)
  }
  // A valid engine still constructs, with and without the optional options.
  new UserEngine({ store, keyring })
  new UserEngine({
    store,
    keyring,
    clock: () => 0,
    totp: { window: 0 },
    recoveryCodeCount: 5,
    maxAttempts: 1,
  })
})

// ---- store inputs: every store refuses the same bad input the same way --------------------------------

for (const adapter of ADAPTERS) {
  describe(`store inputs on ${adapter.name}`, { skip: await adapter.skip() }, () => {
    let open: Awaited<ReturnType<typeof adapter.migratedStore>>
    const tenantId = 'ten_inputs'
    before(async () => {
      open = await adapter.migratedStore()
    })
    after(async () => {
      await open?.release()
    })

    test('listUsers with a query that is null, not an object, mistyped, unknown or an unknown status is VALIDATION', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [null, /listUsers query must be an object/],
        ['active', /listUsers query must be an object/],
        [{ status: 'active\u0000' }, /status must be active, disabled or deleted/],
        [{ status: 'enabled' }, /status must be active, disabled or deleted/],
        [{ status: 5 }, /status must be active, disabled or deleted/],
        [{ limit: '10' }, /limit must be an integer/],
        [{ cursor: 5 }, /cursor is not valid/],
        [{ cursor: 'not!a!cursor' }, /cursor is not valid/],
        [{ stauts: 'active' }, /unknown key "stauts"; known keys: limit, cursor, status/],
      ]
      for (const [query, pattern] of cases) {
        const error = await failure(open.store.listUsers(tenantId, query as never))
        assertTyped(error, 'VALIDATION', pattern)
        assert.ok(!error.message.includes('\u0000') && !error.message.includes('enabled'), 'value echoed')
      }
      // A valid query still lists.
      assert.deepEqual((await open.store.listUsers(tenantId, { status: 'active', limit: 5 })).items, [])
      assert.deepEqual((await open.store.listUsers(tenantId)).items, [])
    })

    test('listAudit with a query that is null, mistyped or unknown is VALIDATION', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [null, /listAudit query must be an object/],
        [{ userId: 'u\u0000' }, /userId is not a valid id/],
        [{ userId: 5 }, /userId must be a string/],
        [{ cursor: 5 }, /cursor is not valid/],
        [{ user: 'u1' }, /unknown key "user"/],
      ]
      for (const [query, pattern] of cases) {
        assertTyped(await failure(open.store.listAudit(tenantId, query as never)), 'VALIDATION', pattern)
      }
    })

    test('transaction without a function is VALIDATION, not a TypeError', async () => {
      for (const fn of [undefined, null, 'tx => tx']) {
        assertTyped(
          await failure(open.store.transaction(tenantId, fn as never)),
          'VALIDATION',
          /fn must be a function/,
        )
      }
    })
  })
}
