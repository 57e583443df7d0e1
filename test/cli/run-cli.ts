import { type ChildProcess, spawn } from 'node:child_process'
import { main } from '../../src/cli/main.js'

export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a command line in this process through the CLI's `main`, with its output captured and, as for a
 * spawned one, a clean DATABASE_URL unless `env` gives one.
 */
export async function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, {
    stdout: {
      write: (text: string) => {
        stdout += text
      },
    },
    stderr: {
      write: (text: string) => {
        stderr += text
      },
    },
    env: { ...process.env, DATABASE_URL: '', ...env },
  })
  return { code, stdout, stderr }
}

/**
 * How to start the bin in a child process: the bundle scripts/run-tests.mjs built for this run
 * (USER_ENGINE_TEST_CLI: plain node, a fifth of tsx's start-up), else the source through tsx (a file run by
 * hand). Arguments for `process.execPath`.
 */
export function cliCommand(...args: readonly string[]): string[] {
  const bundled = process.env.USER_ENGINE_TEST_CLI
  return [...(bundled ? [bundled] : ['--import', 'tsx', 'src/cli/bin.ts']), ...args]
}

/**
 * Starts the bin in a child process, as a user would (exit codes, signals): `output()` is what it printed so
 * far, `done` its exit code and output once it has closed.
 */
export function startCli(
  args: readonly string[],
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => CliRun; done: Promise<CliRun> } {
  const child = spawn(process.execPath, cliCommand(...args), {
    env: { ...process.env, DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d) => {
    stdout += d
  })
  child.stderr?.on('data', (d) => {
    stderr += d
  })
  const done = new Promise<CliRun>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  )
  return { child, output: () => ({ code: child.exitCode, stdout, stderr }), done }
}

/** `startCli`, bounded: the child is killed and the run rejected past `timeoutMs`. */
export function spawnCli(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<CliRun> {
  const { child, output, done } = startCli(args, env)
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(`user-engine ${args.join(' ')} did not exit within ${timeoutMs} ms\n${output().stderr}`),
      )
    }, timeoutMs)
  })
  return Promise.race([done, timedOut]).finally(() => clearTimeout(timer))
}
