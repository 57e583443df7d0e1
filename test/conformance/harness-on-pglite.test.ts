import { ADAPTERS } from '../support/adapters.js'
import { registerHarnessOn } from './harness-on.js'

await registerHarnessOn(ADAPTERS.filter((a) => a.name === 'pglite'))
