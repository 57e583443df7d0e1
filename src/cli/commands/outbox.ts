import { ErrorCode, isUserEngineError } from '../../domain/errors.js'
import type { OutboxEntry } from '../../domain/records.js'
import { assertId } from '../../domain/validation.js'
import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { UsageError } from '../shared/usage-error.js'

/** The outbox command's own flags. */
export const OUTBOX_OPTIONS = {
  event: { type: 'string' },
  dead: { type: 'boolean' },
  pending: { type: 'boolean' },
  tenant: { type: 'string' },
  user: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
} as const

function idFlag(value: unknown, flag: string): string | undefined {
  if (value === undefined) return undefined
  try {
    assertId(value, flag)
  } catch {
    throw new UsageError(`--${flag} is not a valid id`)
  }
  return value
}

/** An event as an operator sees it: ids, place, delivery state. Never the payload (it may hold personal data). */
function view(e: OutboxEntry) {
  return {
    id: e.id,
    tenantId: e.tenantId,
    aggregateType: e.aggregateType,
    aggregateId: e.aggregateId,
    sequence: e.sequence,
    position: e.position,
    type: e.type,
    status: e.status,
    attempts: e.attempts,
    occurredAt: e.occurredAt,
    availableAt: e.availableAt,
    leaseOwner: e.leaseOwner,
    leaseUntil: e.leaseUntil,
    lastError: e.lastError,
  }
}

/**
 * `outbox list --dead|--pending [--tenant ID] [--user ID] [--limit N] [--cursor C]`: find the events an
 * operator acts on. `outbox retry|discard --event ID`: the way out for a dead event blocking its user.
 */
export async function outboxCommand({ store, flags, positionals, out }: CommandContext): Promise<ExitCode> {
  const [action, ...extra] = positionals
  // Not echoed: a stray argument may be a pasted secret.
  if (extra.length > 0)
    throw new UsageError(
      `outbox takes one action (list, retry or discard), not ${positionals.length} arguments`,
    )
  if (action === 'list') return list({ store, flags, out })
  if (action !== 'retry' && action !== 'discard') throw new UsageError('outbox needs list, retry or discard')
  const eventId = flags.event
  if (typeof eventId !== 'string') throw new UsageError(`outbox ${action} needs --event ID`)
  idFlag(eventId, 'event')
  const done =
    action === 'retry' ? await store.outbox.retryDead(eventId) : await store.outbox.discardDead(eventId)
  const text = done
    ? `event ${eventId} ${action === 'retry' ? 'is pending again' : 'is discarded; its user sequence moves on'}`
    : `no dead event ${eventId}`
  out.result({ eventId, action, changed: done }, text)
  return done ? ExitCode.OK : ExitCode.FAILURE
}

async function list({
  store,
  flags,
  out,
}: Pick<CommandContext, 'store' | 'flags' | 'out'>): Promise<ExitCode> {
  if (flags.dead === flags.pending)
    throw new UsageError('outbox list needs exactly one of --dead or --pending')
  const status = flags.dead ? 'dead' : 'pending'
  const tenantId = idFlag(flags.tenant, 'tenant')
  const aggregateId = idFlag(flags.user, 'user')
  let limit: number | undefined
  if (flags.limit !== undefined) {
    limit = Number(flags.limit)
    if (!/^\d+$/.test(String(flags.limit)) || limit < 1 || limit > 1000) {
      throw new UsageError('--limit must be an integer from 1 to 1000')
    }
  }
  const cursor = typeof flags.cursor === 'string' ? flags.cursor : undefined
  const page = await store.outbox
    .list({
      status,
      ...(tenantId === undefined ? {} : { tenantId }),
      ...(aggregateId === undefined ? {} : { aggregateId }),
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
    })
    .catch((error: unknown) => {
      // Every other argument is checked above: a VALIDATION here is the cursor, and a usage error.
      if (isUserEngineError(error, ErrorCode.VALIDATION)) {
        throw new UsageError('--cursor is not a cursor this listing gave (copy it from a "more:" line)')
      }
      throw error
    })
  const items = page.items.map(view)
  const lines = items.map(
    (e) =>
      `${e.id}  tenant ${e.tenantId}  ${e.aggregateType} ${e.aggregateId}  #${e.sequence}.${e.position}  ${e.type}  ` +
      `attempts ${e.attempts}${e.lastError ? `  last error: ${e.lastError}` : ''}`,
  )
  const more = page.nextCursor === null ? '' : `\nmore: --cursor ${page.nextCursor}`
  const text =
    items.length === 0
      ? `no ${status} events`
      : `${lines.join('\n')}${more}${status === 'dead' ? '\nact on one: user-engine outbox retry|discard --event ID' : ''}`
  out.result({ status, items, nextCursor: page.nextCursor }, text)
  return ExitCode.OK
}
