export { type MeterLike, RELAY_METRICS } from './metrics.js'
export {
  type BrokerUnreachableReason,
  brokerUnreachable,
  InProcessPublisher,
  isBrokerUnreachable,
  type PublishedEvent,
  type Publisher,
  toPublishedEvent,
} from './publisher.js'
export {
  type BackoffOptions,
  backoffDelay,
  type DrainResult,
  describeError,
  OutboxRelay,
  type RelayOptions,
  type RelayProgress,
} from './relay.js'
