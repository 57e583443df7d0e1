// What the CLI prints. Database and NATS URLs never show a password, whatever shape the operator typed: a
// missing slash ('postgres:/u:pw@h/db') or no scheme at all ('user:pw@host:4222', which the NATS client
// accepts) parse as URLs without a host, with the password in their path. And a refusal under --json is a
// JSON error with its code, the relay's included.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseStoreLocation, redactUrl } from '../../src/cli/shared/open-store.js'
import { UsageError } from '../../src/cli/shared/usage-error.js'

test('redactUrl masks user information in every shape', () => {
  const cases: Array<[string, string]> = [
    ['postgres://u:HUNTER2pw@h/db?password=x', 'postgres://***@h/db?password=***'],
    ['postgres:/u:HUNTER2pw@h/db', '***@h/db'],
    ['u:HUNTER2pw@h:5432/db', '***@h:5432/db'],
    ['natsuser:HUNTER2pw@127.0.0.1:4222', '***@127.0.0.1:4222'],
    ['nats://a:HUNTER2pw@h:4222,natsuser:HUNTER2pw@h2:4222', 'nats://***@h:4222,***@h2:4222'],
    ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4222'],
    ['pglite:./data', 'pglite:./data'],
  ]
  for (const [given, shown] of cases) {
    assert.equal(redactUrl(given), shown)
    assert.ok(!redactUrl(given).includes('HUNTER2'))
  }
})

test('a database URL of no supported scheme is refused without repeating any of it', async () => {
  const { runCli } = await import('./run-cli.js')
  const values = [
    'host=127.0.0.1 user=postgres password=HUNTER2pw dbname=x',
    'HUNTER2pw',
    'mysql://u:HUNTER2pw@h/db',
    'HUNTER2pw:rest',
  ]
  for (const value of values) {
    assert.throws(() => parseStoreLocation(value), UsageError)
    for (const env of [{ DATABASE_URL: value }, {} as Record<string, string>]) {
      const args = env.DATABASE_URL ? ['status', '--json'] : ['status', '--json', '--database-url', value]
      const r = await runCli(args, env)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.ok(!`${r.stdout}${r.stderr}`.includes('HUNTER2'), `printed: ${r.stdout}${r.stderr}`)
      assert.match(r.stdout, /"code":"USAGE"/)
    }
  }
  assert.match(
    (() => {
      try {
        parseStoreLocation('mysql://u:HUNTER2pw@h/db')
        return ''
      } catch (error) {
        return (error as Error).message
      }
    })(),
    /\(mysql:\)/,
  )
})

test('database URL schemes are case-insensitive', () => {
  assert.deepEqual(parseStoreLocation('POSTGRES://u@h/db'), {
    kind: 'postgres',
    connectionString: 'postgres://u@h/db',
  })
  assert.deepEqual(parseStoreLocation('Memory:'), { kind: 'memory' })
  assert.equal(parseStoreLocation('PGlite:memory').kind, 'pglite')
})

test('relay on a database whose schema is not ready: a JSON SCHEMA_NOT_READY error, exit 1', async () => {
  const { runCli } = await import('./run-cli.js')
  const r = await runCli([
    'relay',
    '--once',
    '--json',
    '--nats',
    'nats://127.0.0.1:1',
    '--database-url',
    'memory:',
  ])
  assert.equal(r.code, 1)
  const printed = JSON.parse(r.stdout.trim()) as { error?: { code?: string } }
  assert.equal(printed.error?.code, 'SCHEMA_NOT_READY')
})
