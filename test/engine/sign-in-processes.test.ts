import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { createNodePostgresStore } from '../../src/store/postgres/node-postgres.js'
import { LATEST_SCHEMA_VERSION } from '../../src/store/schema-versions.js'
import { createTestDatabase, postgresSkip, type TestDatabase } from '../support/services.js'
import { setup } from './support.js'

const run = promisify(execFile)
const skip = await postgresSkip()

/** Sign-in attempts made by another Node.js process on its own store over the same database. */
async function attemptsInAnotherProcess(
  plan: object,
): Promise<{ code?: string; status?: string; details?: { retryAfterMs?: number } }[]> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'test/engine/processes/sign-in-attempts.ts', JSON.stringify(plan)],
    { timeout: 60_000 },
  )
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]')
}

describe('sign-in throttling across processes (server)', { skip }, () => {
  let db: TestDatabase | undefined
  after(async () => {
    await db?.drop()
  })

  test('16 wrong guesses, 8 here and 8 in a second process at once, count exactly 16; the lock holds in a third', async () => {
    db = await createTestDatabase('ue_signin_procs', LATEST_SCHEMA_VERSION)
    const store = await createNodePostgresStore({ connectionString: db.url })
    try {
      // Locks at exactly 16 failures: one lost count leaves it open; a double count doubles the lock.
      const throttle = { lockAfter: 16, baseLockMs: 60_000, maxLockMs: 3_600_000 }
      const h = setup({ store, throttle, clock: Date.now })
      const tenantId = (await h.engine.createTenant('Acme')).id
      const email = 'ann@example.com'
      await h.engine.registerUser(tenantId, { email, password: 'correct horse' })
      const plan = { url: db.url, tenantId, email, throttle }

      const [here, there] = await Promise.all([
        Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            h.engine.authenticate(tenantId, { email, password: `here-${i}` }),
          ),
        ),
        attemptsInAnotherProcess({ ...plan, passwords: Array.from({ length: 8 }, (_, i) => `there-${i}`) }),
      ])
      const codes = [
        ...here.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'signed_in')),
        ...there.map((r) => r.code ?? r.status),
      ]
      assert.deepEqual(codes, Array(16).fill('INVALID_CREDENTIALS'))

      const [third] = await attemptsInAnotherProcess({ ...plan, passwords: ['correct horse'] })
      assert.equal(third?.code, 'THROTTLED', JSON.stringify(third))
      const retryAfterMs = third?.details?.retryAfterMs ?? 0
      assert.ok(
        retryAfterMs > 0 && retryAfterMs <= 60_000,
        `locked for one base period, got ${retryAfterMs} ms`,
      )
      const failures = (await store.listAudit(tenantId, { limit: 500 })).items.filter(
        (a) => a.action === 'sign_in.failed',
      )
      assert.equal(failures.length, 16, 'one audit record per failure')
    } finally {
      await store.close()
    }
  })
})
