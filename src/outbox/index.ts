import type { OutboxAccess } from '../store/store.js'
import { JetStreamPublisher, type JetStreamPublisherOptions } from './jetstream-publisher.js'
import type { Publisher } from './publisher.js'
import { OutboxRelay, type RelayOptions } from './relay.js'

export { EVENT_HEADERS, JetStreamPublisher, type JetStreamPublisherOptions } from './jetstream-publisher.js'
export { InProcessPublisher, type PublishedEvent, type Publisher, toPublishedEvent } from './publisher.js'
export {
  type BackoffOptions,
  backoffDelay,
  type DrainResult,
  describeError,
  OutboxRelay,
  type RelayOptions,
  type RelayProgress,
} from './relay.js'

export type RelayFromOptions = Omit<RelayOptions, 'outbox' | 'publisher'> & {
  readonly outbox: OutboxAccess
} & (
    | { readonly publisher: Publisher; readonly jetstream?: undefined }
    | { readonly jetstream: JetStreamPublisherOptions; readonly publisher?: undefined }
  )

/**
 * Builds a relay for the CLI and services: either around a given publisher, or with a JetStreamPublisher it
 * creates, connects (failing fast on a bad server or stream) and owns: `relay.close()` closes it.
 */
export async function relayFromOptions(options: RelayFromOptions): Promise<OutboxRelay> {
  const { jetstream, publisher, ...rest } = options
  if (publisher) return new OutboxRelay({ ...rest, publisher })
  if (!jetstream) throw new TypeError('relayFromOptions needs a publisher or jetstream options')
  const owned = new JetStreamPublisher(jetstream)
  await owned.connect()
  try {
    return new OutboxRelay({ ...rest, publisher: owned })
  } catch (error) {
    await owned.close()
    throw error
  }
}
