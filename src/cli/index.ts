#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ErrorCode, UserEngineError } from '../domain/errors.js'
import type { UserEngineStore } from '../store/store.js'
import { CONFORMANCE_SUITES } from '../testing/run.js'
import type { CommandContext } from './command.js'
import { conformanceCommand } from './commands/conformance.js'
import { demoCommand } from './commands/demo.js'
import { diagnosticsCommand } from './commands/diagnostics.js'
import { migrateCommand } from './commands/migrate.js'
import { outboxCommand } from './commands/outbox.js'
import { planCommand } from './commands/plan.js'
import { relayCommand } from './commands/relay.js'
import { statusCommand } from './commands/status.js'
import { ExitCode } from './exit-codes.js'
import { openStore, parseStoreLocation, redactUrl, resolveDatabaseUrl } from './open-store.js'
import { createOutput, type Output } from './output.js'
import { UsageError } from './usage-error.js'

const USAGE = `usage: user-engine <command> [options]

  migrate      [--database-url URL] [--json]   apply pending migrations
  status       [--database-url URL] [--json]   schema version, pending migrations, drift (exit 3: pending)
  plan         [--database-url URL]            print the SQL migrate would run
  diagnostics  [--database-url URL] [--json]   counts only, and outbox lag
  conformance  [--database-url URL | --store MODULE] [--suite NAME]... [--json]
                                               run the store conformance harness
  demo         [--database-url URL]            a walkthrough: tenant, users, factors, audit, outbox
  relay        [--database-url URL] --nats URL [--stream NAME] [--subject-prefix P] [--once] [--json]
                                               publish outbox events to NATS JetStream
  outbox       retry|discard --event ID [--database-url URL] [--json]
                                               act on a dead outbox event

URL: postgres://... | postgresql://... | pglite:PATH | pglite:memory | memory:
     default: $DATABASE_URL, else pglite:./.user-engine/data
exit: 0 ok, 1 failure, 2 usage, 3 pending migrations, 4 schema drift or database newer than code`

type StoreCommand = (ctx: CommandContext) => Promise<ExitCode>

const COMMON = {
  'database-url': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

/** Each command's own flags: a flag another command takes is a usage error here. */
const STORE_COMMANDS: Record<
  string,
  { run: StoreCommand; options: Record<string, { type: 'string' | 'boolean' }> }
> = {
  migrate: { run: migrateCommand, options: {} },
  plan: { run: planCommand, options: {} },
  diagnostics: { run: diagnosticsCommand, options: {} },
  demo: { run: demoCommand, options: {} },
  relay: {
    run: relayCommand,
    options: {
      nats: { type: 'string' },
      stream: { type: 'string' },
      'subject-prefix': { type: 'string' },
      once: { type: 'boolean' },
    },
  },
  outbox: { run: outboxCommand, options: { event: { type: 'string' } } },
}

export async function main(argv: readonly string[]): Promise<ExitCode> {
  const out = createOutput(argv.includes('--json'))
  let store: UserEngineStore | undefined
  try {
    const [name, ...rest] = argv
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      process.stdout.write(`${USAGE}\n`)
      return name === undefined ? ExitCode.USAGE : ExitCode.OK
    }
    if (name === 'conformance') {
      const { values } = parseArgs({
        args: [...rest],
        options: { ...COMMON, store: { type: 'string' }, suite: { type: 'string', multiple: true } },
        strict: true,
      })
      if (values.help) {
        process.stdout.write(`${USAGE}\n`)
        return ExitCode.OK
      }
      const unknown = (values.suite ?? []).filter((s) => !CONFORMANCE_SUITES.some((k) => k.name === s))
      if (unknown.length > 0) {
        throw new UsageError(
          `unknown suite ${unknown.join(', ')}; known: ${CONFORMANCE_SUITES.map((k) => k.name).join(', ')}`,
        )
      }
      return await conformanceCommand({
        databaseUrl: values['database-url'],
        storeModule: values.store,
        suites: values.suite ?? [],
        out,
      })
    }
    if (name === 'status') {
      const { values } = parseArgs({ args: [...rest], options: COMMON, strict: true })
      if (values.help) {
        process.stdout.write(`${USAGE}\n`)
        return ExitCode.OK
      }
      return await statusCommand(parseStoreLocation(resolveDatabaseUrl(values['database-url'])), out)
    }
    const command = STORE_COMMANDS[name]
    if (!command) throw new UsageError(`unknown command: ${name}`)
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: { ...COMMON, ...command.options },
      allowPositionals: name === 'outbox',
      strict: true,
    })
    if (values.help) {
      process.stdout.write(`${USAGE}\n`)
      return ExitCode.OK
    }
    const databaseUrl = resolveDatabaseUrl(values['database-url'] as string | undefined)
    const location = parseStoreLocation(databaseUrl)
    store = await openStore(location)
    return await command.run({ store, databaseUrl, flags: values, positionals, out })
  } catch (error) {
    return reportError(error, out)
  } finally {
    await store?.close().catch(() => undefined)
  }
}

function reportError(error: unknown, out: Output): ExitCode {
  const code = (error as { code?: unknown } | null)?.code
  if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
    out.error((error as Error).message)
    process.stderr.write(`${USAGE}\n`)
    return ExitCode.USAGE
  }
  if (error instanceof UserEngineError) {
    out.error(`${error.code}: ${error.message}`)
    if (out.json) process.stdout.write(`${JSON.stringify({ error: error.toJSON() })}\n`)
    return error.code === ErrorCode.SCHEMA_DRIFT || error.code === ErrorCode.SCHEMA_NEWER_THAN_CODE
      ? ExitCode.SCHEMA_MISMATCH
      : ExitCode.FAILURE
  }
  // Not ours (a driver's, a broker's): its message may quote a URL with a password, so redact URLs.
  const message = error instanceof Error ? error.message : String(error)
  out.error(message.replace(/\b(postgres(?:ql)?|nats):\/\/\S+/g, (m) => redactUrl(m)))
  if (out.json) process.stdout.write(`${JSON.stringify({ error: { code: 'FAILURE' } })}\n`)
  return ExitCode.FAILURE
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
