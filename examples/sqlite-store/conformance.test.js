// @ts-check
// The whole conformance harness from user-engine/testing against the SQLite store, under node:test.
import { test } from 'node:test'
import { registerConformanceTests } from 'user-engine/testing'
import factories from './conformance.js'

registerConformanceTests({
  ...factories,
  // Declared up front, so the cases this store cannot run are registered as skipped, with the reason: one
  // sql.js database lives in the memory of one process, so neither guarantee about several processes holds.
  capabilities: { concurrentInstances: false, isolatedClaims: false },
  test,
  skipTest: (name, reason) => test(name, { skip: reason }, () => {}),
})
