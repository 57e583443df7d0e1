/**
 * The logger hook the relay and the CLI write through (and the engine may). One method, so any logging
 * library fits in a line: `{ log: (level, message, fields) => pino[level](fields ?? {}, message) }`.
 *
 * Messages and fields hold ids, counts, codes and durations only: never a payload, identifier value, secret,
 * connection string or broker URL with credentials.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export type LogFields = Readonly<Record<string, string | number | boolean | null>>

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void
}

/** Discards everything. */
export const silentLogger: Logger = { log: () => {} }

const LEVELS: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 }

/** A logger that passes on entries at `minimum` or above. */
export function atLeast(minimum: LogLevel, logger: Logger): Logger {
  return {
    log(level, message, fields) {
      if (LEVELS[level] >= LEVELS[minimum]) logger.log(level, message, fields)
    },
  }
}

/**
 * Lines for a stream (stderr): `text` is `<ISO time> <level> <message> key=value ...`; `json` is one JSON
 * object per line with `time`, `level`, `msg` and the fields.
 */
export function lineLogger(format: 'text' | 'json', write: (line: string) => void): Logger {
  return {
    log(level, message, fields) {
      const time = new Date().toISOString()
      if (format === 'json') {
        write(`${JSON.stringify({ time, level, msg: message, ...fields })}\n`)
        return
      }
      const extra = Object.entries(fields ?? {})
        .map(([k, v]) => ` ${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`)
        .join('')
      write(`${time} ${level.padEnd(5)} ${message}${extra}\n`)
    },
  }
}
