export { backoffDelay } from './backoff.js'
export { describeError } from './describe-error.js'
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
export { OutboxRelay } from './relay.js'
export type { BackoffOptions, DrainResult, RelayOptions, RelayProgress } from './relay-options.js'
