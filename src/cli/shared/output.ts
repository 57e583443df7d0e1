/** stdout carries results (one JSON document with --json); stderr carries progress and errors. */
export interface Output {
  readonly json: boolean
  result(value: unknown, text: string): void
  progress(line: string): void
  error(line: string): void
}

export function createOutput(json: boolean): Output {
  return {
    json,
    result(value, text) {
      process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`)
    },
    progress(line) {
      process.stderr.write(`${line}\n`)
    },
    error(line) {
      process.stderr.write(`user-engine: ${line}\n`)
    },
  }
}
