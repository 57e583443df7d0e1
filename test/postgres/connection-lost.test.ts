// node-postgres emits 'error' on a client whose connection ends unexpectedly (a crashed server) even while a
// query holds it, after failing that query; a pool listens only to idle clients. The driver must take that
// event, or it crashes the host process. A fake pool stands in for the crash, so this runs without a server
// (test/faults/postgres-crash.test.ts crashes a real one).
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { isConnectionError } from '../../src/store/postgres/driver/errors.js'
import { createNodePostgresDriver } from '../../src/store/postgres/driver/node-postgres-driver.js'

/** A checked-out client whose connection dies during its next query: 'error' emitted, the query rejected. */
function dyingClient() {
  const client = new EventEmitter() as EventEmitter & {
    processID: undefined
    released: Array<boolean | Error | undefined>
    query(): Promise<never>
    release(destroy?: boolean | Error): void
  }
  client.processID = undefined
  client.released = []
  client.query = () => {
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), {})
    // As pg's Client does on an unexpected end: the active query fails, and 'error' is emitted at once.
    const failed = Promise.reject(lost)
    client.emit('error', lost)
    return failed
  }
  client.release = (destroy) => void client.released.push(destroy)
  return client
}

test('a connection lost under a running statement: a connection error, no unhandled event, the client destroyed', async () => {
  const clients: ReturnType<typeof dyingClient>[] = []
  const pool = {
    query: () => Promise.reject(new Error('not used')),
    connect: async () => {
      const c = dyingClient()
      clients.push(c)
      return c
    },
    end: async () => {},
  }
  const driver = await createNodePostgresDriver({ pool: pool as never, preparedStatements: false })
  // Here a missing listener would make EventEmitter throw out of client.query; in node-postgres the event
  // comes from a socket callback, where it crashes the process. So the listener itself is asserted below.
  for (const call of [() => driver.query('SELECT 1', [1]), () => driver.exec('SELECT 1')]) {
    // The driver passes the connection error on (the store types it STORE_UNAVAILABLE).
    await assert.rejects(call(), (error: unknown) => {
      assert.ok(isConnectionError(error), String(error))
      return true
    })
  }
  assert.equal(clients.length, 2)
  for (const c of clients) {
    assert.ok(c.listenerCount('error') >= 1, 'no error listener on the checked-out client')
    assert.deepEqual(c.released, [true], 'a broken client must be destroyed, not returned to the pool')
  }
  await driver.close()
})

test('a connection that dies as the pool hands it out (FATAL in the same read as ReadyForQuery): no unhandled event', async () => {
  // pg-pool emits 'connect' and drops its idle listener synchronously, then resolves connect() a microtask
  // later; a terminated backend's FATAL read in the same chunk is emitted in between. So the fake pool emits
  // 'error' right after 'connect', before its promise settles: EventEmitter throws if nothing listens.
  const pool = Object.assign(new EventEmitter(), {
    query: () => Promise.reject(new Error('not used')),
    connect: () => {
      const c = dyingClient()
      pool.emit('connect', c)
      c.emit('error', new Error('terminating connection due to administrator command'))
      return Promise.resolve(c)
    },
    end: async () => {},
  })
  const driver = await createNodePostgresDriver({ pool: pool as never, preparedStatements: false })
  await assert.rejects(driver.query('SELECT 1', [1]), (error: unknown) => {
    assert.ok(isConnectionError(error), String(error))
    return true
  })
  await driver.close()
})

test("a caller's pool: an idle connection's 'error' has a listener while the store uses the pool, and none after close", async () => {
  const pool = Object.assign(new EventEmitter(), {
    query: () => Promise.reject(new Error('not used')),
    connect: async () => dyingClient(),
    end: async () => {},
  })
  assert.equal(pool.listenerCount('error'), 0)
  const driver = await createNodePostgresDriver({ pool: pool as never, preparedStatements: false })
  // pg-pool emits an idle client's error on the pool: with no listener, EventEmitter throws (a crash in pg).
  assert.doesNotThrow(() =>
    pool.emit('error', new Error('terminating connection due to administrator command')),
  )
  await driver.close()
  assert.equal(pool.listenerCount('error'), 0, "close() leaves the caller's pool as it found it")
})
