import { parseArgs } from 'node:util'
import { ErrorCode, UserEngineError } from '../domain/errors.js'
import { redactCredentials } from '../domain/redact-credentials.js'
import { demoCommand } from './commands/demo.js'
import { diagnosticsCommand } from './commands/diagnostics.js'
import { keysCommand } from './commands/keys.js'
import { migrateCommand } from './commands/migrate.js'
import { OUTBOX_OPTIONS, outboxCommand } from './commands/outbox.js'
import { planCommand } from './commands/plan.js'
import { purgeCommand } from './commands/purge.js'
import { relayCommand } from './commands/relay.js'
import { RELAY_OPTIONS } from './commands/relay-settings.js'
import { statusCommand } from './commands/status.js'
import type { CommandContext } from './shared/command.js'
import { ExitCode } from './shared/exit-codes.js'
import { durationFlag, queryTimeoutFlag } from './shared/flags.js'
import {
  EMPTY_EMBEDDED,
  missingDataDir,
  openStore,
  parseStoreLocation,
  resolveDatabaseUrl,
  type StoreLocation,
} from './shared/open-store.js'
import { type CliIo, createOutput, type Output, processIo } from './shared/output.js'
import { UsageError } from './shared/usage-error.js'

const USAGE = `usage: user-engine <command> [options]

  migrate      [--database-url URL] [--lock-timeout D] [--json]
                                               apply pending migrations; --lock-timeout (or
                                               $USER_ENGINE_MIGRATION_LOCK_TIMEOUT): how long to wait for
                                               another migrator's lock (default 60s)
  status       [--database-url URL] [--json]   schema version, pending migrations, drift (exit 3: pending)
  plan         [--database-url URL]            print the SQL migrate would run
  diagnostics  [--database-url URL] [--json]   counts only, and outbox lag
  conformance  [--database-url URL | --store MODULE] [--suite NAME]... [--json]
                                               run the store conformance harness
  demo         [--database-url URL]            a walkthrough: tenant, users, factors, audit, outbox
                                               (only the flag: DATABASE_URL is not read)
  relay        [--database-url URL] --nats URL [--stream NAME] [--subject-prefix P] [--once] [--json]
               [--log-format text|json] [--batch-size N] [--per-aggregate N] [--publish-concurrency N]
               [--lease D] [--max-attempts N] [--backoff-base D] [--backoff-max D] [--poll-interval D]
               [--wake notify|poll] [--retention D] [--purge-batch-size N] [--purge-interval D]
               [--progress-interval D] [--idle-progress-interval D] [--broker-retry-base D]
               [--broker-retry-max D] [--replicas N] [--duplicate-window D] [--publish-timeout D] [--owner ID]
                                               publish outbox events to NATS JetStream; every flag is also
                                               USER_ENGINE_RELAY_<FLAG> (e.g. USER_ENGINE_RELAY_BATCH_SIZE);
                                               D: milliseconds, or 500ms, 30s, 5m, 2h, 7d
  outbox       list --dead|--pending [--tenant ID] [--user ID] [--limit N] [--cursor C]
               [--database-url URL] [--json]   find pending or dead outbox events (never their payloads)
  outbox       retry|discard --event ID [--database-url URL] [--json]
                                               act on a dead outbox event (exit 1, nothing changed, when
                                               the event is unknown or not dead)
  keys         status|reseal [--database-url URL] [--batch-size N] [--max-batches N] [--json]
                                               TOTP seeds per key id; re-seal them under the current key
                                               (keyring from USER_ENGINE_KEYS, USER_ENGINE_CURRENT_KEY)
  purge        [--database-url URL] [--batch-size N] [--interval DURATION] [--json]
                                               delete expired sessions and tokens (once, or every interval)

MODULE (conformance --store): export default { createStore, ...hooks }; or export default createStore
     with the hooks (plantSchemaVersion, reopenStore, refuseRows, ...) as named exports; or a named
     createStore with them
URL: postgres://... | postgresql://... | pglite:PATH | pglite:memory | memory:
     default: $DATABASE_URL, else pglite:./.user-engine/data; migrate, status, plan and conformance
     prefer $USER_ENGINE_MIGRATION_URL (a direct connection: not through a transaction-mode pooler)
     --query-timeout DURATION|off (or $USER_ENGINE_QUERY_TIMEOUT): on postgres:// URLs, how long each
     statement may wait for an answer before it fails (default 30s; commands that open a store)
exit: 0 ok, 1 failure, 2 usage, 3 pending migrations, 4 schema drift or database newer than code`

type StoreCommand = (ctx: CommandContext) => Promise<ExitCode>
type Flags = CommandContext['flags']
type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>

interface CommandSpec {
  /** The command's own flags besides --database-url, --json and --help: any other flag is a usage error. */
  readonly options: OptionSpec
  readonly positionals?: boolean
  run(args: { flags: Flags; positionals: readonly string[]; out: Output; io: CliIo }): Promise<ExitCode>
}

const COMMON = {
  'database-url': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

/** --query-timeout, else USER_ENGINE_QUERY_TIMEOUT: the bound on each statement's wait on a server. */
function queryTimeoutOf(
  flags: Flags,
  location: StoreLocation,
  env: Readonly<Record<string, string | undefined>>,
): number | undefined {
  const flag = flags['query-timeout'] as string | undefined
  // The flag on a store without a server is a mistake; the variable, set for a whole deployment, is not.
  if (flag !== undefined && location.kind !== 'postgres') {
    throw new UsageError('--query-timeout applies to postgres:// and postgresql:// URLs only')
  }
  return queryTimeoutFlag(
    flag ?? (env.USER_ENGINE_QUERY_TIMEOUT || undefined),
    flag === undefined ? 'USER_ENGINE_QUERY_TIMEOUT' : '--query-timeout',
  )
}

/** migrate's --lock-timeout, else USER_ENGINE_MIGRATION_LOCK_TIMEOUT: how long to wait for another migrator. */
function lockTimeoutOf(flags: Flags, env: Readonly<Record<string, string | undefined>>): number | undefined {
  const flag = flags['lock-timeout'] as string | undefined
  return durationFlag(
    flag ?? (env.USER_ENGINE_MIGRATION_LOCK_TIMEOUT || undefined),
    flag === undefined ? 'USER_ENGINE_MIGRATION_LOCK_TIMEOUT' : '--lock-timeout',
  )
}

interface StoreCommandSpec {
  /** The command's own flags (besides the common ones and --query-timeout). */
  readonly options?: OptionSpec
  readonly positionals?: boolean
  /** Which variables name the database (resolveDatabaseUrl). */
  readonly purpose?: 'service' | 'schema' | 'demo'
  /** True for the commands that may create an embedded database (migrate, demo); the rest refuse a missing one. */
  readonly creates?: boolean
}

/** Opens the store the flags name, runs the command on it, and closes it whatever happens. */
function withStore(
  run: StoreCommand,
  { options = {}, positionals = false, purpose = 'service', creates = false }: StoreCommandSpec = {},
): CommandSpec {
  return {
    options: { ...options, 'query-timeout': { type: 'string' } },
    positionals,
    async run({ flags, positionals: args, out, io }) {
      const databaseUrl = resolveDatabaseUrl(flags['database-url'] as string | undefined, io.env, purpose)
      const location = parseStoreLocation(databaseUrl)
      const queryTimeoutMs = queryTimeoutOf(flags, location, io.env)
      // Opening an embedded database creates it: only a command meant to may do that (not a look, not a
      // typo'd path, not a command run where DATABASE_URL is unset). `plan` reads a missing one as empty.
      const missing = creates ? undefined : missingDataDir(location)
      if (missing !== undefined && purpose !== 'schema') {
        throw new UsageError(
          `no database at ${missing}: name one with --database-url or DATABASE_URL, or create this one with user-engine migrate`,
        )
      }
      const migrationLockTimeoutMs = 'lock-timeout' in options ? lockTimeoutOf(flags, io.env) : undefined
      const store = await openStore(missing === undefined ? location : EMPTY_EMBEDDED, {
        queryTimeoutMs,
        migrationLockTimeoutMs,
      })
      try {
        return await run({ store, databaseUrl, flags, positionals: args, out, env: io.env })
      } finally {
        await store.close().catch(() => undefined)
      }
    },
  }
}

const COMMANDS: Record<string, CommandSpec> = {
  migrate: withStore(migrateCommand, {
    options: { 'lock-timeout': { type: 'string' } },
    purpose: 'schema',
    creates: true,
  }),
  // Reads the schema history without opening a store, so it can report drift instead of refusing it.
  status: {
    options: { 'query-timeout': { type: 'string' } },
    run: ({ flags, out, io }) => {
      const location = parseStoreLocation(
        resolveDatabaseUrl(flags['database-url'] as string | undefined, io.env, 'schema'),
      )
      return statusCommand(location, out, { queryTimeoutMs: queryTimeoutOf(flags, location, io.env) })
    },
  },
  plan: withStore(planCommand, { purpose: 'schema' }),
  diagnostics: withStore(diagnosticsCommand),
  // Creates its own stores (a schema or database per case), never the one the URL names.
  conformance: {
    options: { store: { type: 'string' }, suite: { type: 'string', multiple: true } },
    run: async ({ flags, out, io }) => {
      // The harness (and fast-check) load only for this command.
      const [{ CONFORMANCE_SUITES }, { conformanceCommand }] = await Promise.all([
        import('../testing/run.js'),
        import('./commands/conformance.js'),
      ])
      const suites = (flags.suite as string[] | undefined) ?? []
      const unknown = suites.filter((s) => !CONFORMANCE_SUITES.some((k) => k.name === s))
      if (unknown.length > 0) {
        throw new UsageError(
          `unknown suite ${unknown.join(', ')}; known: ${CONFORMANCE_SUITES.map((k) => k.name).join(', ')}`,
        )
      }
      return conformanceCommand({
        databaseUrl: flags['database-url'] as string | undefined,
        storeModule: flags.store as string | undefined,
        suites,
        out,
        env: io.env,
      })
    },
  },
  demo: withStore(demoCommand, { purpose: 'demo', creates: true }),
  relay: withStore(relayCommand, { options: RELAY_OPTIONS }),
  outbox: withStore(outboxCommand, { options: OUTBOX_OPTIONS, positionals: true }),
  keys: withStore(keysCommand, {
    options: { 'batch-size': { type: 'string' }, 'max-batches': { type: 'string' } },
    positionals: true,
  }),
  purge: withStore(purgeCommand, {
    options: { 'batch-size': { type: 'string' }, interval: { type: 'string' } },
  }),
}

/**
 * Runs one command line (without the program name) and resolves with its exit code; never throws and never
 * exits the process. `io` replaces the process's stdout, stderr and environment (tests run it in process).
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<ExitCode> {
  const out = createOutput(argv.includes('--json'), io)
  try {
    const [name, ...rest] = argv
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      io.stdout.write(`${USAGE}\n`)
      return name === undefined ? ExitCode.USAGE : ExitCode.OK
    }
    const command = COMMANDS[name]
    if (!command) throw new UsageError(`unknown command: ${name}`)
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: { ...COMMON, ...command.options },
      allowPositionals: command.positionals ?? false,
      strict: true,
    })
    if (values.help) {
      io.stdout.write(`${USAGE}\n`)
      return ExitCode.OK
    }
    return await command.run({ flags: values as Flags, positionals, out, io })
  } catch (error) {
    return reportError(error, out, io)
  }
}

function reportError(error: unknown, out: Output, io: CliIo): ExitCode {
  const code = (error as { code?: unknown } | null)?.code
  if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
    out.error((error as Error).message)
    io.stderr.write(`${USAGE}\n`)
    if (out.json)
      io.stdout.write(`${JSON.stringify({ error: { code: 'USAGE', message: (error as Error).message } })}\n`)
    return ExitCode.USAGE
  }
  if (
    error instanceof UserEngineError &&
    error.code === ErrorCode.VALIDATION &&
    error.details.field === 'connectionString'
  ) {
    // The URL came from the command line or DATABASE_URL: a usage error, and never echoed (it may hold a password).
    const message =
      '--database-url (or DATABASE_URL) is not a valid postgres:// URL; percent-encode special characters in the user and password'
    out.error(message)
    if (out.json) io.stdout.write(`${JSON.stringify({ error: { code: 'USAGE', message } })}\n`)
    return ExitCode.USAGE
  }
  if (error instanceof UserEngineError) {
    out.error(`${error.code}: ${error.message}`)
    if (out.json) io.stdout.write(`${JSON.stringify({ error: error.toJSON() })}\n`)
    return error.code === ErrorCode.SCHEMA_DRIFT || error.code === ErrorCode.SCHEMA_NEWER_THAN_CODE
      ? ExitCode.SCHEMA_MISMATCH
      : ExitCode.FAILURE
  }
  // Not ours (a driver's, a broker's): its message may quote a URL with a password.
  const message = redactCredentials(error instanceof Error ? error.message : String(error))
  out.error(message)
  if (out.json) io.stdout.write(`${JSON.stringify({ error: { code: 'FAILURE', message } })}\n`)
  return ExitCode.FAILURE
}
