import type { UserEngineStore } from '../../store/store.js'
import type { Output } from './output.js'

/** What every store-backed command receives: the opened store, its flags, and where to print. */
export interface CommandContext {
  readonly store: UserEngineStore
  readonly databaseUrl: string
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>
  readonly positionals: readonly string[]
  readonly out: Output
}
