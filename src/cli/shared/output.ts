/** Where the CLI writes and what it reads from its environment: the process's, or a test's. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown }
  readonly stderr: { write(text: string): unknown }
  /** Read for DATABASE_URL. */
  readonly env: Readonly<Record<string, string | undefined>>
}

/** The running process's streams and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env }
}

/** stdout carries results (one JSON document with --json); stderr carries progress and errors. */
export interface Output {
  readonly json: boolean
  result(value: unknown, text: string): void
  /** A plain line on stdout (the demo's walkthrough). */
  print(line: string): void
  progress(line: string): void
  error(line: string): void
}

export function createOutput(json: boolean, io: CliIo = processIo()): Output {
  return {
    json,
    result(value, text) {
      io.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`)
    },
    print(line) {
      io.stdout.write(`${line}\n`)
    },
    progress(line) {
      io.stderr.write(`${line}\n`)
    },
    error(line) {
      io.stderr.write(`user-engine: ${line}\n`)
    },
  }
}
