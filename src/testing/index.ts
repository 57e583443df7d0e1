/**
 * `user-engine/testing`: the store conformance harness. Providers run it against their store factory to
 * check the rules of the store contract; it is composed of named suites with typed skips.
 */

export { RULE_CASES } from './rules.js'
export { CONFORMANCE_SUITES, conformanceCases, registerConformanceTests, runConformance } from './run.js'
export { type Canaries, type CanaryKind, leakedCanaries, makeCanaries } from './shared/canaries.js'
export {
  type Capability,
  type ConformanceCase,
  type ConformanceOptions,
  type ConformanceReport,
  type ConformanceResult,
  ConformanceSkip,
  type ConformanceStatus,
  type DifferentialOptions,
  type PlantedSchemaVersion,
  type RegisterConformanceTestsOptions,
  type RowRefusal,
  type RunConformanceOptions,
  type StoreFactoryContext,
  type TestRegistrar,
} from './shared/types.js'
