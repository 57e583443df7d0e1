import type { UserEngineStore } from '../../store/store.js'
import type { Output } from './output.js'

/** What every store-backed command receives: the opened store, its flags, and where to print. */
export interface CommandContext {
  readonly store: UserEngineStore
  readonly databaseUrl: string
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>
  readonly positionals: readonly string[]
  readonly out: Output
  /** The environment (the process's, or a test's): USER_ENGINE_KEYS for commands that need the keyring. */
  readonly env: Readonly<Record<string, string | undefined>>
}
