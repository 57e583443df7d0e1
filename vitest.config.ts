import { defineConfig } from 'vitest/config'

// vitest runs only the files that prove the harness works under vitest; node:test runs the rest.
export default defineConfig({ test: { include: ['test/vitest/**/*.spec.ts'], testTimeout: 60_000 } })
