// How a NATS client error reads for the relay: unreachable (the relay pauses), no responders (asked further
// by the publisher), or the event's failed attempt; as PUBLISH_FAILED without the broker's own text.
import { ErrorCode, UserEngineError } from '../../domain/errors.js'
import { redactCredentials } from '../../domain/redact-credentials.js'
import { redactedError } from '../describe-error.js'
import { brokerUnreachable } from '../publisher.js'

/** NATS client errors that mean the broker (or the stream's leader) could not be reached, not the event's fault. */
const UNREACHABLE_ERRORS: ReadonlySet<string> = new Set([
  'ClosedConnectionError',
  'ConnectionError',
  'DrainingConnectionError',
  'NoRespondersError',
  'TimeoutError',
  'JetStreamNotEnabled',
])

/**
 * True when `error` (or a cause of it) says NATS could not be reached: no connection, no server or stream
 * leader answering (no responders, 503), or no acknowledgement in time (a stream without a leader while a
 * cluster elects one). A timeout is counted here on purpose: it is the broker's state, and a relay that
 * counted it against the event would kill events during a long election. From the error alone, no responders
 * cannot be told from a subject that no stream covers; `JetStreamPublisher.publish` asks the server which
 * it was (see isNoResponders).
 */
export function isNatsUnreachable(error: unknown): boolean {
  return someCause(error, (e) => {
    if (UNREACHABLE_ERRORS.has(e.name) || UNREACHABLE_ERRORS.has(e.constructor.name)) return true
    if (requestNoResponders(e)) return true
    const status = statusCode(e)
    if (status === 503 || status === 408) return true
    const code = (e as { code?: unknown }).code
    return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE'
  })
}

/** True when `error` (or a cause of it) is a request nobody answered: no responders, or a 503 status. */
export function isNoResponders(error: unknown): boolean {
  return someCause(
    error,
    (e) =>
      e.name === 'JetStreamNotEnabled' ||
      e.name === 'NoResponders' ||
      e.name === 'NoRespondersError' ||
      e.constructor.name === 'NoRespondersError' ||
      requestNoResponders(e) ||
      statusCode(e) === 503,
  )
}

/** True when `test` holds for `error` or one of its causes (5 deep). */
function someCause(error: unknown, test: (e: Error) => boolean): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (test(e)) return true
  }
  return false
}

const requestNoResponders = (e: Error) => e.name === 'RequestError' && /no responders/i.test(e.message)

/** The status of a JetStream API or status error (503: no responders, 408: timed out); else undefined. */
const statusCode = (e: Error): unknown =>
  e.name === 'JetStreamApiError' || e.name === 'JetStreamStatusError'
    ? (e as { code?: unknown }).code
    : undefined

/**
 * A broker error as PUBLISH_FAILED: with `details.reason` 'unreachable' when NATS could not be reached (the
 * relay then pauses instead of counting an attempt). The message names the broker's error class and code,
 * never its text: NATS messages can carry server URLs (with credentials) and subjects.
 */
export function publishFailed(what: string, cause: unknown, secrets: readonly string[]): UserEngineError {
  if (cause instanceof UserEngineError) return cause
  const name = cause instanceof Error ? cause.name : typeof cause
  const code = (cause as { code?: unknown } | null)?.code
  const kind = redactCredentials(
    typeof code === 'string' || typeof code === 'number' ? `${name} ${code}` : name,
    secrets,
  )
  // The cause is kept for diagnosis, as a copy without what util.inspect would print of the raw one.
  const kept = redactedError(cause, secrets)
  if (isNatsUnreachable(cause)) return brokerUnreachable(`${what}: NATS unreachable (${kind})`, kept)
  return new UserEngineError(ErrorCode.PUBLISH_FAILED, `${what} (${kind})`, { cause: kept })
}
