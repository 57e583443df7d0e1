// A second process for test/engine/sign-in-processes.test.ts: opens its own node-postgres store on the
// database in argv and makes sign-in attempts. Prints one JSON line: the outcome of each attempt.
import { createKeyring, generateKey, UserEngine } from '../../../src/engine/index.js'
import { createNodePostgresStore } from '../../../src/store/postgres/node-postgres.js'

interface Plan {
  url: string
  tenantId: string
  email: string
  passwords: string[]
  throttle: { lockAfter: number; baseLockMs: number; maxLockMs: number }
}

const plan = JSON.parse(process.argv[2] ?? '{}') as Plan
const store = await createNodePostgresStore({ connectionString: plan.url })
try {
  const engine = new UserEngine({
    store,
    keyring: createKeyring({ currentKeyId: 'k1', keys: { k1: generateKey() } }),
    passwordHashing: { memoryCost: 64, timeCost: 1, parallelism: 1 },
    throttle: plan.throttle,
  })
  const outcomes = await Promise.all(
    plan.passwords.map((password) =>
      engine.authenticate(plan.tenantId, { email: plan.email, password }).then(
        (r) => ({ status: r.status }),
        (e: { code?: string; details?: unknown }) => ({ code: e.code ?? 'UNTYPED', details: e.details }),
      ),
    ),
  )
  process.stdout.write(`${JSON.stringify(outcomes)}\n`)
} finally {
  await store.close()
}
