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
  return selectSuites(options.suites).flatMap((s) => s.cases.map((def) => makeCase(s, def, options)))
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
  const { test, skipTest } = options
  for (const c of conformanceCases(options)) {
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
  const results: ConformanceResult[] = []
  for (const c of conformanceCases(options)) {
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
