import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { ServerProcess } from '../support/server-process.js'
import { answersSelect, freePort } from '../support/services.js'
import { sleep } from './nats-servers.js'

/** Where Debian keeps the server binaries; USER_ENGINE_PG_BIN overrides. */
export const PG_BIN = process.env.USER_ENGINE_PG_BIN ?? '/usr/lib/postgresql/15/bin'

// The server refuses to run as root: as root, it runs as this user (Debian's package creates it).
const RUN_AS = 'postgres'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export function postgresServerSkip(): string | false {
  if (existsSync(join(PG_BIN, 'postgres')) && existsSync(join(PG_BIN, 'initdb'))) return false
  const reason = `no PostgreSQL server binaries in ${PG_BIN} (set USER_ENGINE_PG_BIN)`
  if (process.env.CI === 'true') throw new Error(`CI=true requires ${reason}`)
  return reason
}

const asRoot = process.getuid?.() === 0
const command = (bin: string, args: string[]): [string, string[]] =>
  asRoot ? ['runuser', ['-u', RUN_AS, '--', join(PG_BIN, bin), ...args]] : [join(PG_BIN, bin), args]

/**
 * A PostgreSQL server of the test's own (never the shared one on 5432): initdb into a temporary directory, a
 * spare port, trust auth on loopback. `crash()` kills the postmaster with SIGKILL, as an OOM kill or a power
 * loss would; `start()` again runs crash recovery on the same directory.
 */
export class PostgresServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'ue-faults-pg-'))
  readonly data = join(this.dir, 'data')
  port = 0
  readonly #process = new ServerProcess('postgres')

  get log(): string {
    return this.#process.log
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }

  async init(): Promise<void> {
    chmodSync(this.dir, 0o777)
    const [bin, args] = command('initdb', ['-D', this.data, '-U', 'postgres', '-A', 'trust', '--no-sync'])
    const r = spawnSync(bin, args, { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr}`)
    this.port = await freePort()
  }

  /** Starts the postmaster and waits until it accepts connections. */
  start(): Promise<void> {
    const [bin, args] = command('postgres', [
      '-D',
      this.data,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${this.dir}`,
      '-c',
      'fsync=on',
    ])
    return this.#process.start(bin, args, () => answersSelect(this.url), 30_000)
  }

  /**
   * SIGKILL to the postmaster and every backend at once (as an OOM kill of the whole server or a power loss):
   * nothing is flushed or shut down; the next start recovers from the WAL.
   */
  async crash(): Promise<void> {
    if (!this.#process.running) return
    const pidFile = join(this.data, 'postmaster.pid')
    const postmaster = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : NaN
    if (Number.isInteger(postmaster)) {
      const backends = spawnSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter((line) => /^\d+$/.test(line))
        .map(Number)
      for (const pid of [postmaster, ...backends]) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // gone already
        }
      }
      const deadline = Date.now() + 10_000
      while ([postmaster, ...backends].some(alive) && Date.now() < deadline) await sleep(50)
    }
    // The spawned process (runuser, or the postmaster itself when not root).
    await this.#process.stop('SIGKILL')
  }

  /** pg_terminate_backend on every client connection but its own; returns how many it cut. */
  async terminateClients(): Promise<number> {
    const client = new pg.Client({ connectionString: this.url })
    client.on('error', () => undefined)
    await client.connect()
    try {
      const r = await client.query(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      )
      return Number(r.rows[0].n)
    } finally {
      await client.end()
    }
  }

  async dispose(): Promise<void> {
    await this.crash()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
