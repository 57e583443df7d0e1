import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { inspect } from 'node:util'
import type { UserEngineStore } from '../../store/store.js'
import { runConformance } from '../../testing/run.js'
import type {
  ConformanceOptions,
  ConformanceResult,
  StoreFactoryContext,
} from '../../testing/shared/types.js'
import { type ConformanceStores, conformanceStoresFor } from '../shared/conformance-stores.js'
import { ExitCode } from '../shared/exit-codes.js'
import { parseStoreLocation, resolveDatabaseUrl } from '../shared/open-store.js'
import type { Output } from '../shared/output.js'
import { UsageError } from '../shared/usage-error.js'

type Factories = Pick<
  ConformanceOptions,
  'createStore' | 'destroyStore' | 'createSharedStores' | 'plantSchemaVersion' | 'reopenStore' | 'refuseRows'
>

/** `--store MODULE`: its default export is a store factory, or an object holding `createStore` and friends. */
async function loadStoreModule(path: string): Promise<Factories> {
  const mod = (await import(pathToFileURL(resolve(path)).href)) as { default?: unknown }
  const exported = mod.default
  if (typeof exported === 'function') {
    return { createStore: exported as (ctx: StoreFactoryContext) => Promise<UserEngineStore> }
  }
  if (exported && typeof (exported as Factories).createStore === 'function') return exported as Factories
  throw new UsageError(
    `${path} must default-export a store factory: (ctx: { ownDatabase: boolean }) => Promise<UserEngineStore>`,
  )
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : inspect(error)
}

export async function conformanceCommand(options: {
  databaseUrl: string | undefined
  storeModule: string | undefined
  suites: readonly string[]
  out: Output
  env: Readonly<Record<string, string | undefined>>
}): Promise<ExitCode> {
  const { out } = options
  if (options.databaseUrl !== undefined && options.storeModule !== undefined) {
    throw new UsageError('give --database-url or --store, not both')
  }
  let factories: Factories
  let stores: ConformanceStores | undefined
  let target: string
  if (options.storeModule !== undefined) {
    factories = await loadStoreModule(options.storeModule)
    target = `store module ${options.storeModule}`
  } else {
    stores = await conformanceStoresFor(
      parseStoreLocation(resolveDatabaseUrl(options.databaseUrl, options.env, 'schema')),
      // Through a pooler, cases are created and migrated over the direct URL.
      { directUrl: options.env.USER_ENGINE_MIGRATION_URL || undefined },
    )
    factories = stores
    target = stores.description
  }
  out.progress(`conformance: ${target}`)
  try {
    let done = 0
    const report = await runConformance({
      ...factories,
      ...(options.suites.length > 0 ? { suites: options.suites } : {}),
      onProgress: (r: ConformanceResult) => {
        done++
        const extra =
          r.status === 'skipped' ? ` (${r.reason})` : r.status === 'failed' ? `: ${errorText(r.error)}` : ''
        out.progress(`conformance: [${done}] ${r.status} ${r.name} ${r.durationMs} ms${extra}`)
      },
    })
    const cases = report.results.map((r) => ({
      name: r.name,
      suite: r.suite,
      status: r.status,
      ...(r.reason === undefined ? {} : { reason: r.reason }),
      ...(r.status === 'failed' ? { error: errorText(r.error) } : {}),
      durationMs: r.durationMs,
    }))
    const summary = `${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`
    const failures = cases.filter((c) => c.status === 'failed').map((c) => `failed: ${c.name}: ${c.error}`)
    out.result(
      { target, passed: report.passed, failed: report.failed, skipped: report.skipped, cases },
      [...failures, `conformance: ${summary}`].join('\n'),
    )
    return report.failed > 0 ? ExitCode.FAILURE : ExitCode.OK
  } finally {
    await stores?.dispose()
  }
}
