// Lists a caller hands to the store boundary and the publisher (claim cursors, settle items, event ids,
// throttle keys, NATS servers) are read by their length first and copied once: a sparse array of 2**32 - 1
// is refused at once instead of walked, a hole is not a value, and a proxy or getter of the caller's that
// throws is VALIDATION without its text. Both shipped stores share these checks (outbox-checks.ts, throttle.ts).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { UserEngineError } from '../../src/domain/errors.js'
import { natsServers } from '../../src/outbox/nats/server-urls.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'

const SECRET = 'held-by-getter-5d1a'

function sparse(): never {
  const a: unknown[] = []
  a.length = 2 ** 32 - 1
  return a as never
}
function revoked(): never {
  const { proxy, revoke } = Proxy.revocable([], {})
  revoke()
  return proxy as never
}
function throwingElement(): never {
  return Object.defineProperty([undefined], 0, {
    get() {
      throw new Error(SECRET)
    },
  }) as never
}
const withHole = (): never => Object.assign([], { 1: 'x', length: 2 }) as never

async function refused(name: string, call: () => unknown): Promise<void> {
  let caught: unknown
  try {
    await call()
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof UserEngineError, `${name}: ${String(caught)}`)
  assert.equal(caught.code, 'VALIDATION', name)
  assert.ok(!String(caught.stack).includes(SECRET) && !JSON.stringify(caught).includes(SECRET), name)
}

test('store lists: a sparse, holed, revoked or throwing list is VALIDATION at once', async () => {
  const store = new InMemoryUserEngineStore({ migrated: true })
  const owner = 'relay-1'
  const started = performance.now()
  for (const [kind, list] of [
    ['sparse', sparse],
    ['hole', withHole],
    ['revoked', revoked],
    ['throwing element', throwingElement],
  ] as const) {
    await refused(`claim continueAfter ${kind}`, () =>
      store.outbox.claim({ owner, limit: 10, leaseMs: 1000, continueAfter: list() }),
    )
    await refused(`settle items ${kind}`, () => store.outbox.settle({ owner, items: list(), maxAttempts: 3 }))
    await refused(`acknowledge ${kind}`, () => store.outbox.acknowledge(owner, list()))
    await refused(`release ${kind}`, () => store.outbox.release(owner, list()))
    await refused(`throttle clear ${kind}`, () => store.throttle.clear('tnt_1', list()))
    await refused(`natsServers ${kind}`, () => natsServers(list(), undefined as never))
  }
  await refused('settle item getter', () =>
    store.outbox.settle({
      owner,
      maxAttempts: 3,
      items: [
        Object.defineProperty({}, 'tenantId', {
          enumerable: true,
          get() {
            throw new Error(SECRET)
          },
        }),
      ] as never,
    }),
  )
  assert.ok(performance.now() - started < 2000, `took ${performance.now() - started} ms`)
  // The lists they take still work.
  assert.deepEqual(await store.outbox.claim({ owner, limit: 10, leaseMs: 1000, continueAfter: [] }), [])
  assert.deepEqual(await store.outbox.acknowledge(owner, []), [])
  assert.deepEqual(natsServers(['nats://127.0.0.1:4222'], undefined as never).servers, [
    'nats://127.0.0.1:4222',
  ])
})
