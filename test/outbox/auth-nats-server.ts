import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from '@nats-io/transport-node'
import { NATS_SERVER_BIN } from '../faults/nats-servers.js'
import { ServerProcess } from '../support/server-process.js'
import { freePort } from '../support/services.js'

export { natsServerSkip } from '../faults/nats-servers.js'

/** How a test's own nats-server wants clients to authenticate. */
export type NatsAuth = { readonly user: string; readonly pass: string } | { readonly token: string }

/**
 * A JetStream nats-server of the test's own (never the shared one on 4222), on a free loopback port, that
 * refuses clients without `auth`. `stop()` kills it and removes its store directory.
 */
export class AuthNatsServer {
  readonly #process = new ServerProcess('nats-server (auth)')
  readonly #dir = mkdtempSync(join(tmpdir(), 'ue-nats-auth-'))

  private constructor(
    readonly port: number,
    readonly auth: NatsAuth,
  ) {}

  /** Starts one on `port` (default: a free one) and waits until it accepts a client with `auth`. */
  static async start(auth: NatsAuth, port?: number): Promise<AuthNatsServer> {
    const server = new AuthNatsServer(port ?? (await freePort()), auth)
    const flags = 'token' in auth ? ['--auth', auth.token] : ['--user', auth.user, '--pass', auth.pass]
    const args = ['-js', '-a', '127.0.0.1', '-p', String(server.port), '-sd', server.#dir, ...flags]
    try {
      await server.#process.start(
        NATS_SERVER_BIN,
        args,
        async () => {
          const nc = await connect({ servers: server.hostPort, ...auth, reconnect: false, timeout: 500 })
          await nc.close()
        },
        15_000,
      )
    } catch (error) {
      await server.stop()
      throw error
    }
    return server
  }

  /** `127.0.0.1:<port>`, without a scheme or credentials. */
  get hostPort(): string {
    return `127.0.0.1:${this.port}`
  }

  get log(): string {
    return this.#process.log
  }

  async stop(): Promise<void> {
    await this.#process.stop('SIGKILL')
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
