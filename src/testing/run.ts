import { performance } from 'node:perf_hooks'
import { ValidationError } from '../domain/errors.js'
import {
  CaseContext,
  type CaseDefinition,
  hasGuarantee,
  optionGuaranteeSkip,
  ROW_REFUSAL_SKIP,
  SCHEMA_PLANTING_SKIP,
  type SuiteDefinition,
} from './shared/context.js'
import {
  type ConformanceCase,
  type ConformanceOptions,
  type ConformanceReport,
  type ConformanceResult,
  ConformanceSkip,
  type RegisterConformanceTestsOptions,
  type RunConformanceOptions,
} from './shared/types.js'
import { SUITES } from './suites/index.js'

/** The suites and their case names, in run order (for `--suite` options and documentation). */
export const CONFORMANCE_SUITES: ReadonlyArray<{
  readonly name: string
  readonly description: string
  readonly cases: readonly string[]
}> = SUITES.map((s) => ({ name: s.name, description: s.description, cases: s.cases.map((c) => c.name) }))

function selectSuites(names: readonly string[] | undefined): readonly SuiteDefinition[] {
  if (names === undefined) return SUITES
  // Nothing selected must not turn into "0 cases, all passed" either.
  if (names.length === 0) {
    throw new ValidationError(
      `no conformance suite selected (suites: []); leave suites out to run all, or name some of: ${SUITES.map((s) => s.name).join(', ')}`,
      { details: { field: 'suites' } },
    )
  }
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n))
  // A typo must not turn into "0 cases, all passed".
  if (unknown.length > 0) {
    throw new ValidationError(
      `unknown conformance suite(s): ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}`,
      { details: { field: 'suites' } },
    )
  }
  return SUITES.filter((s) => names.includes(s.name))
}

/**
 * A skip known before running: only when the caller passed `capabilities` (for runners that cannot skip a
 * running test). The option can only narrow what runs: a guarantee it claims is checked against the store's
 * own declaration when the case runs (CaseContext.checkRequirements).
 */
function staticSkip(def: CaseDefinition, options: ConformanceOptions): string | undefined {
  const capabilities = options.capabilities
  if (!capabilities) return undefined
  for (const capability of def.requires ?? []) {
    if (!hasGuarantee(capabilities, capability)) return optionGuaranteeSkip(capability)
  }
  if (def.needsSharedStores && !options.createSharedStores) {
    return 'the store factory cannot open several stores over one database (createSharedStores)'
  }
  if (def.needsSchemaPlanting && !(options.plantSchemaVersion && options.reopenStore))
    return SCHEMA_PLANTING_SKIP
  if (def.needsRowRefusal && !options.refuseRows) return ROW_REFUSAL_SKIP
  return undefined
}

async function withTimeout(work: Promise<void>, ms: number, name: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`conformance case "${name}" did not finish within ${ms} ms`)),
      ms,
    )
  })
  try {
    await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function makeCase(suite: SuiteDefinition, def: CaseDefinition, options: ConformanceOptions): ConformanceCase {
  const name = `${suite.name}: ${def.name}`
  const skip = staticSkip(def, options)
  const run = async (): Promise<void> => {
    if (skip !== undefined) throw new ConformanceSkip(skip)
    const ctx = new CaseContext(options)
    const body = (async () => {
      await ctx.checkRequirements(def)
      await def.run(ctx)
    })()
    try {
      await withTimeout(body, options.caseTimeoutMs ?? 60_000, name)
    } catch (error) {
      // The case's own error is the one to report; a failing close after it is noise.
      await ctx.dispose().catch(() => {})
      throw error
    }
    await ctx.dispose()
  }
  return skip === undefined ? { name, suite: suite.name, run } : { name, suite: suite.name, skip, run }
}

/**
 * The conformance cases for a store factory, runner-independent. Each case creates its own stores and tenants
 * and closes what it created.
 */
export function conformanceCases(options: ConformanceOptions): ConformanceCase[] {
  checkOptions(options, [])
  return casesFor(options)
}

function casesFor(options: ConformanceOptions): ConformanceCase[] {
  return selectSuites(options.suites).flatMap((s) => s.cases.map((def) => makeCase(s, def, options)))
}

const OPTION_KEYS = [
  'createStore',
  'destroyStore',
  'createSharedStores',
  'plantSchemaVersion',
  'reopenStore',
  'refuseRows',
  'suites',
  'capabilities',
  'differential',
  'leaseMs',
  'caseTimeoutMs',
] as const
/** The optional factory hooks of `ConformanceOptions` (the CLI reads the same names from a module). */
export const CONFORMANCE_HOOKS = [
  'destroyStore',
  'createSharedStores',
  'plantSchemaVersion',
  'reopenStore',
  'refuseRows',
] as const satisfies readonly (keyof ConformanceOptions)[]

/**
 * Checks the options before any case is built: a missing `createStore` or a misspelt hook would otherwise
 * fail (or skip) every case with a TypeError instead of saying what is wrong. Own keys are checked, so a
 * factory object whose methods live on its prototype (a class instance) is fine. Never copies the options.
 */
function checkOptions(options: unknown, extraKeys: readonly string[]): void {
  const invalid = (message: string, field: string) =>
    new ValidationError(`conformance options: ${message}`, { details: { field } })
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('pass an object with createStore', 'options')
  }
  const o = options as Record<string, unknown>
  const known: readonly string[] = [...OPTION_KEYS, ...extraKeys]
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) {
      const name = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/.test(key) ? `"${key}"` : '(not a name)'
      throw invalid(`unknown key ${name}; known keys: ${known.join(', ')}`, key)
    }
  }
  if (typeof o.createStore !== 'function') throw invalid('createStore must be a function', 'createStore')
  for (const hook of [...CONFORMANCE_HOOKS, ...extraKeys.filter((k) => k !== 'test')]) {
    if (o[hook] !== undefined && typeof o[hook] !== 'function') {
      throw invalid(`${hook} must be a function`, hook)
    }
  }
  for (const [key, max] of [
    ['leaseMs', 600_000],
    ['caseTimeoutMs', 86_400_000],
  ] as const) {
    const v = o[key]
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)) {
      throw invalid(`${key} must be an integer from 1 to ${max}`, key)
    }
  }
  for (const key of ['capabilities', 'differential'] as const) {
    if (o[key] !== undefined && (typeof o[key] !== 'object' || o[key] === null)) {
      throw invalid(`${key} must be an object`, key)
    }
  }
  if (o.suites !== undefined && !(Array.isArray(o.suites) && o.suites.every((n) => typeof n === 'string'))) {
    throw invalid('suites must be an array of suite names', 'suites')
  }
}

/** Marks the running test skipped through the runner's context (node:test `t.skip`, vitest `ctx.skip`). */
function skipAtRunTime(context: unknown, reason: string): void {
  const skip = (context as { skip?: unknown } | null | undefined)?.skip
  if (typeof skip === 'function') {
    // node:test returns and reports the test skipped; vitest throws its own skip signal.
    skip.call(context, reason)
    return
  }
  // Never report a case that did not run as passed.
  throw new ValidationError(
    `conformance case skipped: ${reason}. This runner cannot skip a running test; pass \`capabilities\` so skips are decided up front`,
  )
}

/**
 * Registers every case with a `test(name, fn)` function (node:test, vitest, jest). Skips known up front go
 * through `skipTest`, else `test.skip`; skips found while running use the runner's test context.
 */
export function registerConformanceTests(options: RegisterConformanceTestsOptions): void {
  checkOptions(options, ['test', 'skipTest'])
  const { test, skipTest } = options
  if (typeof test !== 'function') {
    throw new ValidationError('conformance options: test must be a test function (node:test, vitest, jest)', {
      details: { field: 'test' },
    })
  }
  for (const c of casesFor(options)) {
    if (c.skip !== undefined) {
      const reason = c.skip
      if (skipTest) skipTest(c.name, reason)
      else if (typeof test.skip === 'function') {
        ;(test.skip as (name: string, fn: () => void) => unknown)(`${c.name} [skipped: ${reason}]`, () => {})
      } else test(c.name, async (...args: unknown[]) => skipAtRunTime(args[0], reason))
      continue
    }
    // Rest parameters keep fn.length 0, so jest does not take the context for a `done` callback.
    test(c.name, async (...args: unknown[]) => {
      try {
        await c.run()
      } catch (error) {
        if (error instanceof ConformanceSkip) return skipAtRunTime(args[0], error.reason)
        throw error
      }
    })
  }
}

/** Runs the cases one after another and reports each; never throws for a failing case. */
export async function runConformance(options: RunConformanceOptions): Promise<ConformanceReport> {
  checkOptions(options, ['onProgress'])
  const results: ConformanceResult[] = []
  for (const c of casesFor(options)) {
    const started = performance.now()
    let result: ConformanceResult
    try {
      await c.run()
      result = { name: c.name, suite: c.suite, status: 'passed', durationMs: performance.now() - started }
    } catch (error) {
      const durationMs = performance.now() - started
      result =
        error instanceof ConformanceSkip
          ? { name: c.name, suite: c.suite, status: 'skipped', reason: error.reason, durationMs }
          : { name: c.name, suite: c.suite, status: 'failed', error, durationMs }
    }
    results.push(result)
    options.onProgress?.(result)
  }
  const count = (status: ConformanceResult['status']) => results.filter((r) => r.status === status).length
  return { results, passed: count('passed'), failed: count('failed'), skipped: count('skipped') }
}
