import type { StoreLocation } from '../../src/cli/shared/open-store.js'
import { createTestDatabase, postgresSkip, type TestDatabase } from './services.js'

/**
 * Every store the project ships. Test files loop over this one list; USER_ENGINE_ADAPTERS=memory,pglite
 * narrows a run. The server adapter is skipped with the reason when Postgres is down (required under CI=true).
 */
export interface Adapter {
  readonly name: 'memory' | 'pglite' | 'postgres'
  /** False when the adapter can run here; else why not. */
  skip(): Promise<string | false>
  /** Where its stores live; `release` undoes whatever `open` created. */
  open(): Promise<{ location: StoreLocation; release(): Promise<void> }>
}

const ALL: readonly Adapter[] = [
  {
    name: 'memory',
    skip: async () => false,
    open: async () => ({ location: { kind: 'memory' }, release: async () => undefined }),
  },
  {
    name: 'pglite',
    skip: async () => false,
    open: async () => ({ location: { kind: 'pglite', dataDir: undefined }, release: async () => undefined }),
  },
  {
    name: 'postgres',
    skip: postgresSkip,
    async open() {
      const db: TestDatabase = await createTestDatabase('ue_conformance')
      return { location: { kind: 'postgres', connectionString: db.url }, release: () => db.drop() }
    },
  },
]

const only = process.env.USER_ENGINE_ADAPTERS?.split(',').map((s) => s.trim())
// A typo must not turn into "no adapter, nothing failed".
const unknown = only?.filter((name) => !ALL.some((a) => a.name === name)) ?? []
if (unknown.length > 0) throw new Error(`USER_ENGINE_ADAPTERS: unknown adapter(s) ${unknown.join(', ')}`)
export const ADAPTERS: readonly Adapter[] = only ? ALL.filter((a) => only.includes(a.name)) : ALL
