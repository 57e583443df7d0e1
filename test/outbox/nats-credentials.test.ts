// NATS credentials: taken from server URLs (user:pass@, token@), and never carried by an error the publisher
// or the relay raises or reports, down its cause chain (util.inspect prints causes whole).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { inspect } from 'node:util'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { isUserEngineError } from '../../src/domain/errors.js'
import type { LogFields } from '../../src/domain/logger.js'
import { redactCredentials } from '../../src/domain/redact-credentials.js'
import { describeError, redactedError } from '../../src/outbox/describe-error.js'
import { OutboxRelay } from '../../src/outbox/index.js'
import { isNatsUnreachable, JetStreamPublisher } from '../../src/outbox/nats/index.js'
import { isBrokerUnreachable } from '../../src/outbox/publisher.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'
import { freePort } from '../support/services.js'
import { AuthNatsServer, natsServerSkip } from './auth-nats-server.js'
import { commitEvents, waitFor } from './helpers.js'

const SECRET = 'S3cretNats'

/** Everything an error shows anywhere: message, JSON, stack, and util.inspect with its whole cause chain. */
const everything = (error: unknown) =>
  [
    String(error),
    JSON.stringify(error),
    (error as Error | null)?.stack ?? '',
    inspect(error, { depth: 20, showHidden: true }),
  ].join('\n')

const assertNoSecret = (error: unknown, secret = SECRET) =>
  assert.ok(!everything(error).includes(secret), everything(error))

async function oneEvent() {
  const store = new InMemoryUserEngineStore({ migrated: true })
  await commitEvents(store, 't1', 'u1')
  const [event] = await store.outbox.listForAggregate('t1', 'u1')
  return { store, event: event! }
}

describe('server URLs: credentials and malformed URLs', () => {
  test('a URL the NATS client could not read is VALIDATION at construction, naming its index only', () => {
    for (const servers of [
      `http://natsuser:${SECRET}@[bad`,
      `nats://natsuser:${SECRET}@[bad`,
      `nats://natsuser:${SECRET}@host:99999`,
      ['nats://127.0.0.1:4222', `nats://natsuser:${SECRET}@[bad`],
      `nats://%zz:${SECRET}@127.0.0.1:4222`,
      '',
      [],
    ]) {
      assert.throws(
        () => new JetStreamPublisher({ servers }),
        (e: unknown) => {
          assert.ok(isUserEngineError(e, 'VALIDATION'), String(e))
          assert.equal(e.details.field, 'servers')
          assert.equal((e as Error).cause, undefined)
          assertNoSecret(e)
          return true
        },
        String(servers),
      )
    }
    const indexed = (() => {
      try {
        new JetStreamPublisher({ servers: ['nats://127.0.0.1:4222', 'nats://u:p@[bad'] })
      } catch (e) {
        return e
      }
    })()
    assert.ok(isUserEngineError(indexed, 'VALIDATION'))
    assert.equal(indexed.details.index, 1)
  })

  test('one set of credentials: servers that disagree, or credentials also in connection, are refused', () => {
    assert.throws(
      () => new JetStreamPublisher({ servers: [`nats://a:${SECRET}@h1:4222`, 'nats://b:other@h2:4222'] }),
      (e: unknown) => isUserEngineError(e, 'VALIDATION') && !everything(e).includes(SECRET),
    )
    assert.throws(
      () => new JetStreamPublisher({ servers: `nats://a:${SECRET}@h1`, connection: { token: 'x' } }),
      (e: unknown) => isUserEngineError(e, 'VALIDATION') && !everything(e).includes(SECRET),
    )
    // The same credentials on every server, or on some only, are one set.
    new JetStreamPublisher({ servers: [`nats://a:${SECRET}@h1`, `nats://a:${SECRET}@h2`, 'h3:4222'] })
    // IPv6, a bare host, a scheme-less host:port: as the NATS client reads them.
    new JetStreamPublisher({ servers: ['[::1]:4222', '::1', 'localhost', `u:${SECRET}@127.0.0.1:4222`] })
  })
})

describe('redaction helpers', () => {
  test('redactCredentials masks URL user information, secret parameters and the given secrets', () => {
    const text = `nats://u:${SECRET}@h:1 tls://tok${SECRET}@h u:${SECRET}@h:4222 x?password=${SECRET}&a=1 ${SECRET}`
    const out = redactCredentials(text, [SECRET])
    assert.ok(!out.includes(SECRET), out)
    assert.match(out, /nats:\/\/\*\*\*@h:1/)
    assert.match(out, /a=1/)
  })

  test('redactedError keeps name, code and message, drops raw inputs, and redacts the whole cause chain', () => {
    let urlError: unknown
    try {
      new URL(`nats://natsuser:${SECRET}@[bad`)
    } catch (e) {
      urlError = e
    }
    assert.ok(inspect(urlError).includes(SECRET), 'the raw TypeError holds the URL (its input)')
    const chain = new Error(`outer for nats://u:${SECRET}@h`, { cause: urlError })
    const copy = redactedError(chain, ['unused']) as Error
    assertNoSecret(copy)
    assert.equal((copy.cause as Error).name, 'TypeError')
    assert.equal((copy.cause as { code?: string }).code, 'ERR_INVALID_URL')
    // Literal secrets too, wherever they are (a message that quotes a password alone).
    const literal = redactedError(new Error(`refused ${SECRET}`), [SECRET])
    assertNoSecret(literal)
    // What the relay keeps as lastError and logs.
    assert.ok(!describeError(new Error(`nats://u:${SECRET}@h`)).includes(SECRET))
    // isNatsUnreachable still reads a copy.
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    assert.ok(isNatsUnreachable(redactedError(new Error('x', { cause: refused }))))
  })
})

describe('publisher and relay errors never carry the credentials', () => {
  test('an unreachable server given with credentials: message, JSON, stack and cause chain are clean', async () => {
    const port = await freePort()
    for (const servers of [
      `nats://natsuser:${SECRET}@127.0.0.1:${port}`,
      `nats://${SECRET}@127.0.0.1:${port}`,
    ]) {
      const publisher = new JetStreamPublisher({ servers, timeoutMs: 500 })
      try {
        const error = await publisher.connect().then(
          () => assert.fail('connected to a closed port'),
          (e: unknown) => e,
        )
        assert.ok(isBrokerUnreachable(error), String(error))
        assert.ok((error as Error).cause !== undefined, 'the cause is kept, redacted')
        assertNoSecret(error)
        const { event } = await oneEvent()
        const publishError = await publisher.publish(event).then(
          () => assert.fail('published to a closed port'),
          (e: unknown) => e,
        )
        assertNoSecret(publishError)
      } finally {
        await publisher.close()
      }
    }
  })

  test('what the relay reports of it (onError, logger, lastError) is clean too', async () => {
    const port = await freePort()
    const publisher = new JetStreamPublisher({ servers: `nats://natsuser:${SECRET}@127.0.0.1:${port}` })
    const { store, event } = await oneEvent()
    const reported: unknown[] = []
    const logged: LogFields[] = []
    const relay = new OutboxRelay({
      outbox: store.outbox,
      publisher,
      onError: (e) => reported.push(e),
      logger: { log: (_level, message, fields) => logged.push({ message, ...fields }) },
      brokerRetry: { baseMs: 10, maxMs: 20 },
      metrics: false,
    })
    relay.start()
    try {
      await waitFor(() => reported.length > 0, 10_000, 'the outage reported to onError')
    } finally {
      await relay.close()
    }
    for (const e of reported) assertNoSecret(e)
    assert.ok(!JSON.stringify(logged).includes(SECRET), JSON.stringify(logged))
    assert.ok(!(await store.outbox.get(event.id))?.lastError?.includes(SECRET))
  })
})

const serverSkip = natsServerSkip()

describe('credentials in the server URL authenticate (own nats-server)', { skip: serverSkip }, () => {
  // '@' and ':' in the password: percent-encoded in the URL, decoded for the connection.
  const pass = `pw:${SECRET}@x`
  const encoded = encodeURIComponent(pass)
  const token = `tok-${SECRET}`
  let withPassword: AuthNatsServer
  let withToken: AuthNatsServer

  before(async () => {
    ;[withPassword, withToken] = await Promise.all([
      AuthNatsServer.start({ user: 'natsuser', pass }),
      AuthNatsServer.start({ token }),
    ])
  })
  after(async () => {
    await Promise.all([withPassword?.stop(), withToken?.stop()])
  })

  async function publishesThrough(server: AuthNatsServer, servers: string | string[]) {
    const run = randomBytes(4).toString('hex')
    const stream = `UE_AUTH_${run}`
    const publisher = new JetStreamPublisher({ servers, stream, subjectPrefix: `ue-auth-${run}` })
    try {
      const { event } = await oneEvent()
      await publisher.publish(event)
      const nc = await connect({ servers: server.hostPort, ...server.auth })
      try {
        const info = await (await jetstreamManager(nc)).streams.info(stream)
        assert.equal(info.state.messages, 1)
      } finally {
        await nc.close()
      }
    } finally {
      await publisher.close()
    }
  }

  test('user:pass@ (with and without a scheme) and token@ connect and publish', async () => {
    await publishesThrough(withPassword, `nats://natsuser:${encoded}@${withPassword.hostPort}`)
    await publishesThrough(withPassword, `natsuser:${encoded}@${withPassword.hostPort}`)
    await publishesThrough(withToken, [`nats://${token}@${withToken.hostPort}`])
    // Credentials given as connection options still work as before.
    const viaOptions = new JetStreamPublisher({
      servers: `nats://${withPassword.hostPort}`,
      connection: { user: 'natsuser', pass },
      ensureStream: false,
    })
    try {
      await viaOptions.connect()
    } finally {
      await viaOptions.close()
    }
  })

  test('a wrong password fails at once (not as unreachable), and nothing shows the credentials', async () => {
    const wrong = `wrong-${SECRET}`
    const publisher = new JetStreamPublisher({ servers: `nats://natsuser:${wrong}@${withPassword.hostPort}` })
    try {
      const error = await publisher.connect().then(
        () => assert.fail('connected with a wrong password'),
        (e: unknown) => e,
      )
      assert.ok(isUserEngineError(error, 'PUBLISH_FAILED'), String(error))
      assert.ok(!isBrokerUnreachable(error), 'a refused login is not an outage')
      assert.match((error as Error).message, /Authorization/)
      assertNoSecret(error, wrong)
      assertNoSecret(error, SECRET)
    } finally {
      await publisher.close()
    }
  })

  test('a cause quoting the password (a subject function that throws) is redacted', async () => {
    const publisher = new JetStreamPublisher({
      servers: `nats://natsuser:${encoded}@${withPassword.hostPort}`,
      subject: () => {
        throw new Error(`no route for nats://natsuser:${encoded}@host, password ${pass}`)
      },
      ensureStream: false,
    })
    try {
      const { event } = await oneEvent()
      const error = await publisher.publish(event).then(
        () => assert.fail('published without a subject'),
        (e: unknown) => e,
      )
      assert.ok(isUserEngineError(error, 'PUBLISH_FAILED'), String(error))
      assert.match(inspect(error), /no route for/)
      assertNoSecret(error, pass)
      assertNoSecret(error, SECRET)
    } finally {
      await publisher.close()
    }
  })
})
