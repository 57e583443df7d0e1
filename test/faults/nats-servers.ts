import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { ServerProcess } from '../support/server-process.js'
import { freePort } from '../support/services.js'

/** The nats-server binary the fault tests start and stop themselves (never the shared one on 4222). */
export const NATS_SERVER_BIN = process.env.USER_ENGINE_NATS_SERVER ?? '/usr/sbin/nats-server'

export function natsServerSkip(): string | false {
  if (existsSync(NATS_SERVER_BIN)) return false
  const reason = `no nats-server binary at ${NATS_SERVER_BIN} (set USER_ENGINE_NATS_SERVER)`
  if (process.env.CI === 'true') throw new Error(`CI=true requires ${reason}`)
  return reason
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** One nats-server process with JetStream: its own port, config and store directory under `dir`. */
export class NatsNode {
  readonly #process: ServerProcess

  constructor(
    readonly name: string,
    readonly port: number,
    readonly config: string,
  ) {
    this.#process = new ServerProcess(`nats-server ${name}`)
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.#process.running
  }

  get log(): string {
    return this.#process.log
  }

  /** Starts the process and waits until it accepts clients. */
  start(): Promise<void> {
    return this.#process.start(
      NATS_SERVER_BIN,
      ['-c', this.config],
      async () => {
        const nc = await connect({ servers: this.url, reconnect: false, timeout: 500 })
        await nc.close()
      },
      15_000,
    )
  }

  /** Stops the process by its pid: SIGTERM (a maintenance stop) or SIGKILL (a crash). */
  stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    return this.#process.stop(signal)
  }
}

/** Nodes of one test, in a temporary directory that `dispose()` removes after killing every node. */
export class NatsFixture {
  readonly dir = mkdtempSync(join(tmpdir(), 'ue-faults-nats-'))
  readonly nodes: NatsNode[] = []

  /** A single JetStream server. */
  async single(): Promise<NatsNode> {
    const port = await freePort()
    const store = join(this.dir, 'single')
    const config = join(this.dir, 'single.conf')
    writeFileSync(
      config,
      `server_name: single\nlisten: 127.0.0.1:${port}\njetstream { store_dir: ${JSON.stringify(store)} }\n`,
    )
    const node = new NatsNode('single', port, config)
    this.nodes.push(node)
    await node.start()
    return node
  }

  /** A cluster of `size` JetStream servers routed to each other on loopback; resolves once JetStream answers. */
  async cluster(size = 3): Promise<NatsNode[]> {
    const ports = await Promise.all(Array.from({ length: size }, freePort))
    const routes = await Promise.all(Array.from({ length: size }, freePort))
    const nodes: NatsNode[] = []
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`
      const config = join(this.dir, `${name}.conf`)
      const others = routes.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`)
      writeFileSync(
        config,
        [
          `server_name: ${name}`,
          `listen: 127.0.0.1:${ports[i]}`,
          `jetstream { store_dir: ${JSON.stringify(join(this.dir, name))} }`,
          `cluster { name: ue_faults, listen: 127.0.0.1:${routes[i]}, routes: [${others.join(', ')}] }`,
          '',
        ].join('\n'),
      )
      nodes.push(new NatsNode(name, ports[i]!, config))
    }
    this.nodes.push(...nodes)
    await Promise.all(nodes.map((n) => n.start()))
    // JetStream answers once the cluster elected its meta leader.
    const nc = await connect({ servers: nodes.map((n) => n.url) })
    try {
      const deadline = Date.now() + 30_000
      for (;;) {
        try {
          await (await jetstreamManager(nc, { timeout: 2000 })).getAccountInfo()
          break
        } catch (error) {
          if (Date.now() > deadline) throw error
          await sleep(250)
        }
      }
    } finally {
      await nc.close()
    }
    return nodes
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop('SIGKILL')))
    rmSync(this.dir, { recursive: true, force: true })
  }
}
