/** The command's exit codes: part of its interface, scripts branch on them. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  PENDING_MIGRATIONS: 3,
  SCHEMA_MISMATCH: 4,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]
