/**
 * `user-engine/nats`: the JetStream publisher and a relay built around it. Its own entry point, so the root
 * import never loads a broker client; the NATS packages are optional peers, loaded on first connect.
 */
import type { OutboxAccess } from '../../store/store.js'
import { OutboxRelay } from '../relay.js'
import type { RelayOptions } from '../relay-options.js'
import { JetStreamPublisher, type JetStreamPublisherOptions } from './jetstream-publisher.js'

export {
  EVENT_HEADERS,
  JetStreamPublisher,
  type JetStreamPublisherOptions,
} from './jetstream-publisher.js'
export { isNatsUnreachable } from './nats-errors.js'

export type JetStreamRelayOptions = Omit<RelayOptions, 'outbox' | 'publisher'> & {
  readonly outbox: OutboxAccess
  readonly jetstream: JetStreamPublisherOptions
}

/**
 * A relay with a JetStreamPublisher it creates, connects and owns: `relay.close()` closes the publisher too.
 * Fails fast: on a bad option (before connecting), a bad server, refused credentials, a stream it cannot
 * prepare, and a broker it cannot reach (PUBLISH_FAILED, `details.reason` 'unreachable'; call again to wait).
 */
export async function createJetStreamRelay(options: JetStreamRelayOptions): Promise<OutboxRelay> {
  const { jetstream, ...rest } = options
  const owned = new JetStreamPublisher(jetstream)
  try {
    const relay = new OutboxRelay({ ...rest, publisher: owned })
    await owned.connect()
    return relay
  } catch (error) {
    await owned.close()
    throw error
  }
}
