import { assertId } from '../../domain/validation.js'
import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { UsageError } from '../shared/usage-error.js'

/** `outbox retry|discard --event ID`: an operator's way out for a dead event blocking its user's sequence. */
export async function outboxCommand({ store, flags, positionals, out }: CommandContext): Promise<ExitCode> {
  const action = positionals[0]
  if (action !== 'retry' && action !== 'discard') throw new UsageError('outbox needs retry or discard')
  const eventId = flags.event
  if (typeof eventId !== 'string') throw new UsageError(`outbox ${action} needs --event ID`)
  try {
    assertId(eventId, 'event')
  } catch {
    throw new UsageError('--event is not a valid event id')
  }
  const done =
    action === 'retry' ? await store.outbox.retryDead(eventId) : await store.outbox.discardDead(eventId)
  const text = done
    ? `event ${eventId} ${action === 'retry' ? 'is pending again' : 'is discarded; its user sequence moves on'}`
    : `no dead event ${eventId}`
  out.result({ eventId, action, changed: done }, text)
  return done ? ExitCode.OK : ExitCode.FAILURE
}
