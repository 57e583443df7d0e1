#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ErrorCode, UserEngineError } from '../domain/errors.js'
import type { UserEngineStore } from '../store/store.js'
import type { CommandContext } from './command.js'
import { demoCommand } from './commands/demo.js'
import { diagnosticsCommand } from './commands/diagnostics.js'
import { migrateCommand } from './commands/migrate.js'
import { planCommand } from './commands/plan.js'
import { statusCommand } from './commands/status.js'
import { ExitCode } from './exit-codes.js'
import { openStore, parseStoreLocation, redactUrl, resolveDatabaseUrl } from './open-store.js'
import { createOutput } from './output.js'
import { UsageError } from './usage-error.js'

const USAGE = `usage: user-engine <command> [options]

  migrate      [--database-url URL] [--json]   apply pending migrations
  status       [--database-url URL] [--json]   schema version, pending migrations, drift (exit 3: pending)
  plan         [--database-url URL]            print the SQL migrate would run
  diagnostics  [--database-url URL] [--json]   counts only, and outbox lag
  demo         [--database-url URL]            a walkthrough: tenant, users, factors, audit, outbox

URL: postgres://... | postgresql://... | pglite:PATH | pglite:memory | memory:
     default: $DATABASE_URL, else pglite:./.user-engine/data
exit: 0 ok, 1 failure, 2 usage, 3 pending migrations, 4 schema drift or database newer than code`

type StoreCommand = (ctx: CommandContext) => Promise<ExitCode>

const STORE_COMMANDS: Record<string, StoreCommand> = {
  migrate: migrateCommand,
  status: statusCommand,
  plan: planCommand,
  diagnostics: diagnosticsCommand,
  demo: demoCommand,
}

const OPTIONS = {
  'database-url': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

export async function main(argv: readonly string[]): Promise<ExitCode> {
  const json = argv.includes('--json')
  const out = createOutput(json)
  let store: UserEngineStore | undefined
  try {
    const [name, ...rest] = argv
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      process.stdout.write(`${USAGE}\n`)
      return name === undefined ? ExitCode.USAGE : ExitCode.OK
    }
    const command = STORE_COMMANDS[name]
    if (!command) throw new UsageError(`unknown command: ${name}`)
    const { values, positionals } = parseArgs({ args: [...rest], options: OPTIONS, allowPositionals: true, strict: true })
    if (values.help) {
      process.stdout.write(`${USAGE}\n`)
      return ExitCode.OK
    }
    const databaseUrl = resolveDatabaseUrl(values['database-url'])
    store = await openStore(parseStoreLocation(databaseUrl))
    return await command({ store, databaseUrl, flags: values, positionals, out })
  } catch (error) {
    return reportError(error, out)
  } finally {
    await store?.close().catch(() => undefined)
  }
}

function reportError(error: unknown, out: ReturnType<typeof createOutput>): ExitCode {
  if (error instanceof UsageError || (error as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS')) {
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
  // An unexpected error: its message may quote a connection string, so redact URLs before printing.
  const message = error instanceof Error ? error.message : String(error)
  out.error(message.replace(/\b(postgres(?:ql)?|nats):\/\/\S+/g, (m) => redactUrl(m)))
  return ExitCode.FAILURE
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
