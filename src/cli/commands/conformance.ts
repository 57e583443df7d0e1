import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { inspect } from 'node:util'
import { CONFORMANCE_HOOKS, runConformance } from '../../testing/run.js'
import type { ConformanceOptions, ConformanceResult } from '../../testing/shared/types.js'
import { type ConformanceStores, conformanceStoresFor } from '../shared/conformance-stores.js'
import { ExitCode } from '../shared/exit-codes.js'
import { parseStoreLocation, resolveDatabaseUrl } from '../shared/open-store.js'
import type { Output } from '../shared/output.js'
import { UsageError } from '../shared/usage-error.js'

type Factories = Pick<
  ConformanceOptions,
  'createStore' | 'destroyStore' | 'createSharedStores' | 'plantSchemaVersion' | 'reopenStore' | 'refuseRows'
>

const SHAPE =
  'export default { createStore, ...hooks }, or export default createStore with the hooks as named exports, or a named createStore export with them'

/** The factory and the hooks `source` holds; a hook that is there but is not a function is a usage error. */
function factoriesFrom(source: Record<string, unknown>, path: string, createStore: unknown): Factories {
  if (typeof createStore !== 'function') throw new UsageError(`${path}: no store factory (${SHAPE})`)
  const factories: Record<string, unknown> = { createStore }
  for (const hook of CONFORMANCE_HOOKS) {
    const value = source[hook]
    if (value === undefined) continue
    if (typeof value !== 'function') throw new UsageError(`${path}: ${hook} is not a function`)
    factories[hook] = value
  }
  return factories as unknown as Factories
}

/**
 * `--store MODULE`, in one of three shapes: a default-exported object holding `createStore` and the hooks
 * (its named exports are not read); a default-exported factory, with the hooks as named exports; or no
 * default export and a named `createStore`, with the hooks beside it. A hook left out skips the cases that
 * need it, with the reason.
 */
async function loadStoreModule(path: string): Promise<Factories> {
  const mod = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>
  const exported = mod.default
  if (typeof exported === 'function') return factoriesFrom(mod, path, exported)
  if (exported !== undefined && exported !== null && typeof exported === 'object') {
    const object = exported as Record<string, unknown>
    return factoriesFrom(object, path, object.createStore)
  }
  return factoriesFrom(mod, path, mod.createStore)
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
    // Only the factory and its hooks: the harness refuses keys it does not know (dispose, description).
    factories = factoriesFrom(
      stores as unknown as Record<string, unknown>,
      'conformance stores',
      stores.createStore,
    )
    target = stores.description
  }
  out.progress(`conformance: ${target}`)
  if (options.storeModule !== undefined) {
    const given = CONFORMANCE_HOOKS.filter((h) => factories[h] !== undefined)
    const missing = CONFORMANCE_HOOKS.filter((h) => factories[h] === undefined)
    // destroyStore gates no case: without it the stores a case made are simply not cleaned up.
    const skipping = missing.filter((h) => h !== 'destroyStore')
    const absent = [
      ...(skipping.length > 0 ? [`${skipping.join(', ')} (their cases are skipped)`] : []),
      ...(missing.includes('destroyStore') ? ['destroyStore (no store is cleaned up after its case)'] : []),
    ]
    out.progress(
      `conformance: hooks found: ${given.join(', ') || 'none'}${absent.length > 0 ? `; absent: ${absent.join('; ')}` : ''}`,
    )
  }
  try {
    let done = 0
    const report = await runConformance({
      ...factories,
      ...(options.suites.length > 0 ? { suites: options.suites } : {}),
      onProgress: (r: ConformanceResult) => {
        done++
        const extra =
          r.status === 'skipped' ? ` (${r.reason})` : r.status === 'failed' ? `: ${errorText(r.error)}` : ''
        out.progress(`conformance: [${done}] ${r.status} ${r.name} ${Math.round(r.durationMs)} ms${extra}`)
      },
    })
    const cases = report.results.map((r) => ({
      name: r.name,
      suite: r.suite,
      status: r.status,
      ...(r.reason === undefined ? {} : { reason: r.reason }),
      ...(r.status === 'failed' ? { error: errorText(r.error) } : {}),
      durationMs: Math.round(r.durationMs * 10) / 10,
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
