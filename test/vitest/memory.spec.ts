import { test } from 'vitest'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { registerConformanceTests } from '../../src/testing/index.js'

// The same harness under vitest: capabilities are found while running, so the concurrentInstances cases skip
// themselves through vitest's test context and are reported skipped with the reason.
registerConformanceTests({ createStore: async () => new InMemoryUserEngineStore(), test })
