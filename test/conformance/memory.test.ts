import { test } from 'node:test'
import { InMemoryUserEngineStore } from '../../src/stores/memory/index.js'
import { runStoreConformance } from '../../src/testing/index.js'

// The reference store must pass its own harness; its multiProcess cases are reported skipped with the reason.
runStoreConformance({
  createStore: async () => new InMemoryUserEngineStore(),
  test,
  skipTest: (name, reason) => test(name, { skip: reason }, () => {}),
})
