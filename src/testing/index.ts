/**
 * `user-engine/testing`: the store conformance harness. Providers run it against their store factory to
 * check every MUST rule of the store contract; it is composed of named suites with typed skips.
 */

export { CONFORMANCE_SUITES, runConformance, runStoreConformance, storeConformanceCases } from './run.js'
export { type Canaries, type CanaryKind, leakedCanaries, makeCanaries } from './shared/canaries.js'
export {
  type Capability,
  type ConformanceCase,
  type ConformanceReport,
  type ConformanceResult,
  ConformanceSkip,
  type ConformanceStatus,
  type DifferentialOptions,
  type RunConformanceOptions,
  type RunStoreConformanceOptions,
  type StoreConformanceOptions,
  type StoreFactoryContext,
  type TestRegistrar,
} from './shared/types.js'
