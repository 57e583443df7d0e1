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
