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
  isNatsUnreachable,
  JetStreamPublisher,
  type JetStreamPublisherOptions,
} from './jetstream-publisher.js'

export type JetStreamRelayOptions = Omit<RelayOptions, 'outbox' | 'publisher'> & {
  readonly outbox: OutboxAccess
  readonly jetstream: JetStreamPublisherOptions
}

/**
 * A relay with a JetStreamPublisher it creates, connects (failing fast on a bad server or stream) and owns:
 * `relay.close()` closes the publisher too.
 */
export async function createJetStreamRelay(options: JetStreamRelayOptions): Promise<OutboxRelay> {
  const { jetstream, ...rest } = options
  const owned = new JetStreamPublisher(jetstream)
  await owned.connect()
  try {
    return new OutboxRelay({ ...rest, publisher: owned })
  } catch (error) {
    await owned.close()
    throw error
  }
}
