import { type ChildProcess, spawn } from 'node:child_process'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * A server the tests start and stop themselves (nats-server, postgres, pgbouncer): one child process at a
 * time, the tail of its output kept for error messages, restartable after it exits.
 */
export class ServerProcess {
  #child: ChildProcess | null = null
  #exited: Promise<void> = Promise.resolve()
  /** The last 20 000 characters of the process's stdout and stderr. */
  log = ''

  constructor(readonly name: string) {}

  get running(): boolean {
    return this.#child !== null
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  /**
   * Spawns `command` (unless it runs already) and calls `ready` until it resolves; throws with the log's tail
   * when the process exits first, or `ready`'s last error after `timeoutMs`.
   */
  async start(command: string, args: readonly string[], ready: () => Promise<void>, timeoutMs: number) {
    if (this.#child) return
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    const append = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-20_000)
    }
    child.stdout?.on('data', append)
    child.stderr?.on('data', append)
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()))
    void this.#exited.then(() => {
      if (this.#child === child) this.#child = null
    })
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        await ready()
        return
      } catch (error) {
        if (this.#child !== child) throw new Error(`${this.name} exited: ${this.log.slice(-2000)}`)
        if (Date.now() > deadline) throw error
        await sleep(100)
      }
    }
  }

  /** Sends `signal` to the process and waits for it to exit, with SIGKILL after `killAfterMs`. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', killAfterMs = 10_000): Promise<void> {
    const child = this.#child
    if (!child?.pid) return
    process.kill(child.pid, signal)
    const timer = setTimeout(() => {
      if (child.pid && this.#child === child) process.kill(child.pid, 'SIGKILL')
    }, killAfterMs)
    await this.#exited
    clearTimeout(timer)
  }
}
