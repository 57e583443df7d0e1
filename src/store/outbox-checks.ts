import { createHash } from 'node:crypto'
import { plainList, readingCallerValue } from '../domain/caller-values.js'
import { ValidationError } from '../domain/errors.js'
import type { AggregateType } from '../domain/records.js'
import { assertId, assertIntegerInRange, assertPositiveInt, optionsObject } from '../domain/validation.js'
import type { ClaimCursor, ClaimOptions, ListOutboxQuery, SettleItem, SettleOptions } from './store.js'

/**
 * The checks every outbox runs on its inputs, so every store refuses the same input the same way. Values are
 * never echoed: ids and errors come from a relay, but a malformed one may be anything.
 */

/** Most events one claim may return, and one aggregate may contribute. */
export const MAX_CLAIM_LIMIT = 10_000
/** Most events one settle call may name. */
export const MAX_SETTLE_ITEMS = 10_000
/** `lastError` is kept to this many characters. */
export const LAST_ERROR_CHARS = 500
const MAX_INT4 = 2_147_483_647

export interface ValidClaim {
  readonly owner: string
  readonly limit: number
  readonly leaseMs: number
  readonly perAggregate: number
  readonly newAggregates: number
  readonly continueAfter: readonly ClaimCursor[]
}

export function validateClaimOptions(options: ClaimOptions): ValidClaim {
  const o = optionsObject(options, 'claim options', [
    'owner',
    'limit',
    'leaseMs',
    'perAggregate',
    'newAggregates',
    'continueAfter',
  ])
  assertId(o.owner, 'owner')
  assertPositiveInt(o.limit, 'limit', MAX_CLAIM_LIMIT)
  assertPositiveInt(o.leaseMs, 'leaseMs', MAX_INT4)
  const perAggregate = o.perAggregate ?? 1
  assertPositiveInt(perAggregate, 'perAggregate', MAX_CLAIM_LIMIT)
  const newAggregates = o.newAggregates ?? o.limit
  assertIntegerInRange(newAggregates, 'newAggregates', 0, MAX_CLAIM_LIMIT)
  const cursors = plainList(
    o.continueAfter ?? [],
    'continueAfter',
    MAX_CLAIM_LIMIT,
    `continueAfter must be an array of at most ${MAX_CLAIM_LIMIT} cursors`,
  )
  const seen = new Set<string>()
  const continueAfter: ClaimCursor[] = []
  for (const c of cursors) {
    const k = optionsObject(c, 'continueAfter cursor', ['tenantId', 'eventId'])
    assertId(k.tenantId, 'continueAfter.tenantId')
    assertId(k.eventId, 'continueAfter.eventId')
    const key = `${k.tenantId}\u0000${k.eventId}`
    if (seen.has(key)) continue
    seen.add(key)
    continueAfter.push({ tenantId: k.tenantId, eventId: k.eventId })
  }
  return {
    owner: o.owner,
    limit: o.limit,
    leaseMs: o.leaseMs,
    perAggregate,
    newAggregates: Math.min(newAggregates, o.limit),
    continueAfter,
  }
}

export interface ValidSettle {
  readonly owner: string
  readonly items: readonly SettleItem[]
  readonly maxAttempts: number
}

/** Settle input: known outcomes, ids, bounded error text and backoff; an event named twice keeps its first. */
export function validateSettleOptions(options: SettleOptions): ValidSettle {
  const o = optionsObject(options, 'settle options', ['owner', 'items', 'maxAttempts'])
  assertId(o.owner, 'owner')
  assertPositiveInt(o.maxAttempts, 'maxAttempts', MAX_INT4)
  const given = plainList(
    o.items,
    'items',
    MAX_SETTLE_ITEMS,
    `items must be an array of at most ${MAX_SETTLE_ITEMS} events`,
  )
  const seen = new Set<string>()
  const items: SettleItem[] = []
  // An item's getter (or an error whose toString throws) is the caller's: VALIDATION, not their error.
  readingCallerValue('items', () => {
    for (const raw of given) {
      const i = raw as Partial<SettleItem> & { error?: unknown; backoffMs?: unknown }
      if (typeof i !== 'object' || i === null) {
        throw new ValidationError('a settle item must be an object', { details: { field: 'items' } })
      }
      assertId(i.tenantId, 'items.tenantId')
      assertId(i.eventId, 'items.eventId')
      if (seen.has(i.eventId)) continue
      seen.add(i.eventId)
      if (i.outcome === 'published' || i.outcome === 'released') {
        items.push({ tenantId: i.tenantId, eventId: i.eventId, outcome: i.outcome })
      } else if (i.outcome === 'failed') {
        items.push({
          tenantId: i.tenantId,
          eventId: i.eventId,
          outcome: 'failed',
          error: lastErrorText(i.error),
          backoffMs: backoffOf(i.backoffMs),
        })
      } else {
        throw new ValidationError('a settle item outcome must be published, released or failed', {
          details: { field: 'items.outcome' },
        })
      }
    }
  })
  return { owner: o.owner, items, maxAttempts: o.maxAttempts }
}

/**
 * An error's text as kept: its first LAST_ERROR_CHARS characters, well-formed, without NUL (which no Postgres
 * text column takes). It is the relay's diagnostic, so it is cleaned rather than refused.
 */
function lastErrorText(error: unknown): string {
  return String(error)
    .slice(0, LAST_ERROR_CHARS)
    .replaceAll('\u0000', '\uFFFD')
    .replace(LONE_SURROGATES, '\uFFFD')
}

/** A UTF-16 surrogate without its pair (slicing can cut a pair). */
const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** A retry delay in whole ms from 0 to the largest int4; anything else is no delay. */
function backoffOf(value: unknown): number {
  return Math.min(MAX_INT4, Math.max(0, Math.floor(Number(value) || 0)))
}

/** `acknowledge` and `release`: the lease owner and at most MAX_SETTLE_ITEMS event ids. */
export function validateHeldEvents(owner: unknown, eventIds: unknown): { owner: string; eventIds: string[] } {
  assertId(owner, 'owner')
  const ids = plainList(
    eventIds,
    'eventIds',
    MAX_SETTLE_ITEMS,
    `eventIds must be an array of at most ${MAX_SETTLE_ITEMS} event ids`,
  )
  for (const id of ids) assertId(id, 'eventIds')
  return { owner, eventIds: ids as string[] }
}

export interface ValidFail {
  readonly owner: string
  readonly eventId: string
  readonly error: string
  readonly maxAttempts: number
  readonly backoffMs: number
}

/** `fail`: as one `failed` settle item. */
export function validateFailOptions(options: unknown): ValidFail {
  const o = optionsObject(options, 'fail options', ['owner', 'eventId', 'error', 'maxAttempts', 'backoffMs'])
  assertId(o.owner, 'owner')
  assertId(o.eventId, 'eventId')
  assertPositiveInt(o.maxAttempts, 'maxAttempts', MAX_INT4)
  return {
    owner: o.owner,
    eventId: o.eventId,
    error: lastErrorText(o.error),
    maxAttempts: o.maxAttempts,
    backoffMs: backoffOf(o.backoffMs),
  }
}

/** Most `olderThanMs` a purge takes (and so a relay's `retentionMs`): about 3,000 years, well inside what a timestamp can go back. */
export const MAX_PURGE_AGE_MS = 1e14

/** `purgePublished`: an age from 0 (whole ms) and a limit of at most 100 000. */
export function validatePurgePublished(
  olderThanMs: unknown,
  limit: unknown,
): { olderThanMs: number; limit: number } {
  assertPositiveInt(limit, 'limit', 100_000)
  if (typeof olderThanMs !== 'number' || !(olderThanMs >= 0 && olderThanMs <= MAX_PURGE_AGE_MS)) {
    throw new ValidationError(`olderThanMs must be a number of ms from 0 to ${MAX_PURGE_AGE_MS}`, {
      details: { field: 'olderThanMs' },
    })
  }
  return { olderThanMs: Math.floor(olderThanMs), limit }
}

/** The keyset position of an event in `list` order: tenant, aggregate, then its place in the aggregate. */
export interface OutboxListKey {
  readonly tenantId: string
  readonly aggregateType: AggregateType
  readonly aggregateId: string
  readonly sequence: number
  readonly position: number
}

export interface ValidListOutbox {
  readonly status: 'pending' | 'dead'
  readonly tenantId: string | undefined
  readonly aggregateId: string | undefined
  readonly limit: number
  readonly after: OutboxListKey | undefined
  /** Names the listing (status and filters); its cursors carry it. */
  readonly tag: string
}

export function validateListOutboxQuery(query: ListOutboxQuery): ValidListOutbox {
  const q = optionsObject(query, 'outbox list query', [
    'status',
    'tenantId',
    'aggregateId',
    'limit',
    'cursor',
  ])
  if (q.status !== 'pending' && q.status !== 'dead') {
    throw new ValidationError('status must be pending or dead', { details: { field: 'status' } })
  }
  if (q.tenantId !== undefined) assertId(q.tenantId, 'tenantId')
  if (q.aggregateId !== undefined) assertId(q.aggregateId, 'aggregateId')
  const limit = q.limit ?? 100
  assertPositiveInt(limit, 'limit', 1000)
  const tenantId = q.tenantId as string | undefined
  const aggregateId = q.aggregateId as string | undefined
  const tag = listingTag(q.status, tenantId, aggregateId)
  return {
    status: q.status,
    tenantId,
    aggregateId,
    limit,
    after: q.cursor === undefined ? undefined : decodeListCursor(q.cursor, tag),
    tag,
  }
}

/**
 * A list cursor holds the last entry's key and a tag naming its listing (status and filters): a key alone
 * would be accepted by another listing, which would answer with a page that silently skips events.
 */
function listingTag(status: string, tenantId: string | undefined, aggregateId: string | undefined): string {
  return createHash('sha256')
    .update([status, tenantId ?? '', aggregateId ?? ''].join('\u0000'))
    .digest('hex')
    .slice(0, 12)
}

export function encodeListCursor(k: OutboxListKey, listing: ValidListOutbox): string {
  return Buffer.from(
    JSON.stringify([k.tenantId, k.aggregateType, k.aggregateId, k.sequence, k.position, listing.tag]),
  ).toString('base64url')
}

function decodeListCursor(cursor: unknown, tag: string): OutboxListKey {
  const invalid = () => new ValidationError('cursor is not valid', { details: { field: 'cursor' } })
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 1000) throw invalid()
  let parts: unknown
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  if (!Array.isArray(parts) || parts.length !== 6) throw invalid()
  if (parts[5] !== tag) {
    throw new ValidationError(
      'cursor is not valid for this listing: pass back the nextCursor of the same status and filters',
      { details: { field: 'cursor' } },
    )
  }
  const [tenantId, aggregateType, aggregateId, sequence, position] = parts as unknown[]
  try {
    assertId(tenantId, 'cursor')
    assertId(aggregateId, 'cursor')
    assertIntegerInRange(sequence, 'cursor', 0, MAX_INT4)
    assertIntegerInRange(position, 'cursor', 0, MAX_INT4)
  } catch {
    throw invalid()
  }
  if (aggregateType !== 'tenant' && aggregateType !== 'user') throw invalid()
  return { tenantId, aggregateType, aggregateId, sequence, position }
}

/** Code-point order, as SQL's COLLATE "C" sorts ids (the outbox's text columns use the database's collation: see list). */
export const cmpText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

export function compareListKeys(a: OutboxListKey, b: OutboxListKey): number {
  return (
    cmpText(a.tenantId, b.tenantId) ||
    cmpText(a.aggregateType, b.aggregateType) ||
    cmpText(a.aggregateId, b.aggregateId) ||
    a.sequence - b.sequence ||
    a.position - b.position
  )
}
