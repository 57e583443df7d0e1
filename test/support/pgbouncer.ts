import { execFileSync } from 'node:child_process'
import { accessSync, chmodSync, chownSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { delimiter, join } from 'node:path'
import { ServerProcess } from './server-process.js'
import { answersSelect, freePort, POSTGRES_ADMIN_URL, postgresSkip, SERVICES_REQUIRED } from './services.js'

/**
 * A PgBouncer of the test's own in transaction pooling mode, in front of the test server: the pooled
 * connection a service would use. Started per test file, stopped by pid in `after`.
 */

function findBinary(): string | null {
  const explicit = process.env.USER_ENGINE_PGBOUNCER
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']
  for (const candidate of explicit ? [explicit] : dirs.map((d) => join(d, 'pgbouncer'))) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return null
}

export const PGBOUNCER_BIN = findBinary()

/** "1.18.0" from `pgbouncer --version`, or null when there is no binary. */
export function pgbouncerVersion(): string | null {
  if (PGBOUNCER_BIN === null) return null
  const out = execFileSync(PGBOUNCER_BIN, ['--version'], { encoding: 'utf8' })
  return /PgBouncer (\d+\.\d+\.\d+)/.exec(out)?.[1] ?? null
}

/** `skip` for node:test: false when Postgres answers and a pgbouncer binary exists; throws under CI=true. */
export async function pgbouncerSkip(): Promise<string | false> {
  const pgSkip = await postgresSkip()
  if (pgSkip) return pgSkip
  if (PGBOUNCER_BIN !== null) return false
  const reason =
    'no pgbouncer binary (apt-get install pgbouncer, or set USER_ENGINE_PGBOUNCER); pooler suite skipped'
  if (SERVICES_REQUIRED) throw new Error(`CI=true requires pgbouncer: ${reason}`)
  process.stderr.write(`# SKIP ${reason}\n`)
  return reason
}

export interface PgBouncerOptions {
  /** Server connections per database and user (default 10). */
  readonly poolSize?: number
  /** PgBouncer 1.21+: prepared statements it tracks per server connection (left out when not given). */
  readonly maxPreparedStatements?: number
  /** Seconds a client may wait for a server connection before PgBouncer gives up (default 120). */
  readonly queryWaitTimeout?: number
}

export interface PgBouncer {
  readonly port: number
  readonly pid: number
  /** The pooled URL of a database on the test server (the wildcard entry forwards any name). */
  urlFor(database: string): string
  /** What pgbouncer logged, for failure messages. */
  log(): string
  stop(): Promise<void>
}

/**
 * Starts pgbouncer (pool_mode = transaction, trust auth, a wildcard database entry pointing at the test
 * server) on a spare port and waits until it answers. PgBouncer refuses to run as root: then it runs as
 * the `postgres` user (`-u`), which must be able to read its directory.
 */
export async function startPgBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  if (PGBOUNCER_BIN === null) throw new Error('no pgbouncer binary')
  const server = new URL(POSTGRES_ADMIN_URL)
  const user = decodeURIComponent(server.username || 'postgres')
  const dir = mkdtempSync(join(tmpdir(), 'ue-pgbouncer-'))
  const port = await freePort()
  const ini = join(dir, 'pgbouncer.ini')
  writeFileSync(join(dir, 'userlist.txt'), `"${user}" ""\n`)
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize ?? 10}`,
      'max_client_conn = 500',
      // Per-test databases come and go: a server connection to a dropped one must not linger.
      'server_idle_timeout = 5',
      'ignore_startup_parameters = extra_float_digits',
      ...(options.queryWaitTimeout === undefined ? [] : [`query_wait_timeout = ${options.queryWaitTimeout}`]),
      ...(options.maxPreparedStatements === undefined
        ? []
        : [`max_prepared_statements = ${options.maxPreparedStatements}`]),
      '',
    ].join('\n'),
  )
  const asRoot = userInfo().uid === 0
  if (asRoot) {
    // The postgres user reads the config and writes nothing here (logs go to stderr).
    const ids = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()
    const gid = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()
    chownSync(dir, Number(ids), Number(gid))
    chmodSync(dir, 0o755)
  }
  const bouncer = new ServerProcess('pgbouncer')
  const stop = async () => {
    await bouncer.stop('SIGTERM', 5000)
    rmSync(dir, { recursive: true, force: true })
  }
  const urlFor = (database: string) => {
    const url = new URL(POSTGRES_ADMIN_URL)
    url.port = String(port)
    url.hostname = '127.0.0.1'
    url.pathname = `/${database}`
    return url.toString()
  }
  try {
    await bouncer.start(
      PGBOUNCER_BIN,
      [...(asRoot ? ['-u', 'postgres'] : []), ini],
      () => answersSelect(urlFor('postgres')),
      15_000,
    )
  } catch (error) {
    await stop()
    throw new Error(`pgbouncer did not start: ${String(error)}\n${bouncer.log.slice(-2000)}`)
  }
  const pid = bouncer.pid ?? 0
  return { port, pid, urlFor, log: () => bouncer.log, stop }
}
