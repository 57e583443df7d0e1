// @ts-check
// Input checks. The contract wants every store to refuse bad input with VALIDATION, the same way, before any
// SQL runs. The package exports the id, page-size, instant and throttle checks; the query-shape checks below
// are written here because the package does not export them (see docs/example-provider.md). Values are never
// echoed into messages: a malformed value may be anything a caller was sent.
import {
  assertId,
  IDENTIFIER_KINDS,
  isIsoInstant,
  LIMITS,
  MAX_PURGE_BATCH,
  ValidationError,
  validatePageSize,
} from 'user-engine'

/** The statuses a listing filters by (the package's own list is not exported). */
const USER_STATUSES = ['active', 'disabled', 'deleted']
/** The longest identifier value (or prefix) a lookup accepts: 4 x the email limit, as the shipped stores. */
export const MAX_VALUE_LENGTH = LIMITS.emailLength * 4
const MAX_INT4 = 2_147_483_647
/** Most events one claim may return, and one settle may name. */
const MAX_BATCH = 10_000

/** @param {string} field */
const invalid = (field, message = `${field} is not valid`) =>
  new ValidationError(message, { details: { field } })

/** Text SQLite and JSON can hold: no NUL, no unpaired surrogate. @param {string} value */
export const isStorableText = (value) => !value.includes('\u0000') && value.isWellFormed()

/**
 * An options or query argument: undefined is {}, anything but a plain object or an unknown key is VALIDATION.
 * @param {unknown} value @param {string} what @param {readonly string[]} known
 * @returns {Record<string, unknown>}
 */
export function optionsObject(value, what, known) {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(what, `${what} must be an object`)
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key))
      throw invalid(what, `${what} has an unknown key; known keys: ${known.join(', ')}`)
  }
  return /** @type {Record<string, unknown>} */ (value)
}

/** @param {unknown} value @param {string} field @param {number} min @param {number} max */
export function assertInt(value, field, min, max) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `${field} must be an integer from ${min} to ${max}`)
  }
  return value
}

/** @param {unknown} value @returns {string | undefined} */
function optionalCursor(value) {
  if (value !== undefined && typeof value !== 'string') throw invalid('cursor')
  return value
}

/** @param {unknown} value */
function status(value) {
  if (value !== undefined && !USER_STATUSES.includes(/** @type {string} */ (value))) throw invalid('status')
  return /** @type {import('user-engine').UserStatus | undefined} */ (value)
}

/** @param {unknown} value @returns {import('user-engine').IdentifierPrefix | undefined} */
function identifierPrefix(value) {
  if (value === undefined) return undefined
  const o = optionsObject(value, 'identifierPrefix', ['kind', 'prefix'])
  if (!IDENTIFIER_KINDS.includes(/** @type {import('user-engine').IdentifierKind} */ (o.kind)))
    throw invalid('identifierPrefix.kind')
  const p = o.prefix
  if (typeof p !== 'string' || p.length === 0 || p.length > MAX_VALUE_LENGTH || !isStorableText(p)) {
    throw invalid('identifierPrefix.prefix')
  }
  return { kind: /** @type {import('user-engine').IdentifierKind} */ (o.kind), prefix: p }
}

/** @param {unknown} query */
export function listUsersQuery(query) {
  const q = optionsObject(query, 'listUsers query', [
    'limit',
    'cursor',
    'status',
    'identifierPrefix',
    'includeIdentifiers',
  ])
  const limit = validatePageSize(q.limit)
  const cursor = optionalCursor(q.cursor)
  if (q.includeIdentifiers !== undefined && typeof q.includeIdentifiers !== 'boolean') {
    throw invalid('includeIdentifiers')
  }
  return {
    limit,
    cursor,
    status: status(q.status),
    identifierPrefix: identifierPrefix(q.identifierPrefix),
    includeIdentifiers: q.includeIdentifiers === true,
  }
}

/** @param {unknown} query */
export function countUsersQuery(query) {
  const q = optionsObject(query, 'countUsers query', ['status', 'identifierPrefix'])
  return { status: status(q.status), identifierPrefix: identifierPrefix(q.identifierPrefix) }
}

/** @param {unknown} query */
export function listTenantsQuery(query) {
  const q = optionsObject(query, 'listTenants query', ['limit', 'cursor'])
  return { limit: validatePageSize(q.limit), cursor: optionalCursor(q.cursor) }
}

/** @param {unknown} query */
export function listAuditQuery(query) {
  const q = optionsObject(query, 'listAudit query', ['limit', 'cursor', 'userId'])
  if (q.userId !== undefined) assertId(q.userId, 'userId')
  return {
    limit: validatePageSize(q.limit),
    cursor: optionalCursor(q.cursor),
    userId: /** @type {string | undefined} */ (q.userId),
  }
}

/** @param {unknown} query */
export function purgeExpiredQuery(query) {
  const q = optionsObject(query, 'purgeExpired query', ['before', 'limit'])
  if (!isIsoInstant(q.before)) throw invalid('before', 'before must be an ISO 8601 instant (toISOString)')
  return { before: q.before, limit: assertInt(q.limit, 'limit', 1, MAX_PURGE_BATCH) }
}

/** @param {unknown} query */
export function listSealedFactorsQuery(query) {
  const q = optionsObject(query, 'listSealedFactors query', ['excludeKeyId', 'after', 'limit'])
  assertId(q.excludeKeyId, 'excludeKeyId')
  if (q.after !== undefined) assertId(q.after, 'after')
  return {
    excludeKeyId: q.excludeKeyId,
    after: /** @type {string | undefined} */ (q.after) ?? '',
    limit: assertInt(q.limit, 'limit', 1, LIMITS.pageSizeMax),
  }
}

/** An identifier lookup: a known kind and a bounded, storable (already normalized) value. */
export function assertIdentifierLookup(/** @type {unknown} */ kind, /** @type {unknown} */ value) {
  if (!IDENTIFIER_KINDS.includes(/** @type {import('user-engine').IdentifierKind} */ (kind)))
    throw invalid('kind')
  if (typeof value !== 'string' || value.length > MAX_VALUE_LENGTH || !isStorableText(value)) {
    throw invalid('value')
  }
}

/**
 * @param {unknown} options
 * @returns {{ owner: string, limit: number, leaseMs: number, perAggregate: number, newAggregates: number,
 *   continueAfter: { tenantId: string, eventId: string }[] }}
 */
export function claimOptions(options) {
  const o = optionsObject(options, 'claim options', [
    'owner',
    'limit',
    'leaseMs',
    'perAggregate',
    'newAggregates',
    'continueAfter',
  ])
  assertId(o.owner, 'owner')
  const limit = assertInt(o.limit, 'limit', 1, MAX_BATCH)
  const leaseMs = assertInt(o.leaseMs, 'leaseMs', 1, MAX_INT4)
  const perAggregate = assertInt(o.perAggregate ?? 1, 'perAggregate', 1, MAX_BATCH)
  const newAggregates = assertInt(o.newAggregates ?? limit, 'newAggregates', 0, MAX_BATCH)
  const raw = o.continueAfter ?? []
  if (!Array.isArray(raw) || raw.length > MAX_BATCH) throw invalid('continueAfter')
  const seen = new Set()
  const continueAfter = []
  for (const c of raw) {
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
    limit,
    leaseMs,
    perAggregate,
    newAggregates: Math.min(newAggregates, limit),
    continueAfter,
  }
}

/** The longest `lastError` kept. */
export const LAST_ERROR_CHARS = 500

/**
 * @param {unknown} options
 * @returns {{ owner: string, maxAttempts: number, items: Array<{ tenantId: string, eventId: string,
 *   outcome: 'published' | 'released' | 'failed', error?: string, backoffMs?: number }> }}
 */
export function settleOptions(options) {
  const o = optionsObject(options, 'settle options', ['owner', 'items', 'maxAttempts'])
  assertId(o.owner, 'owner')
  const maxAttempts = assertInt(o.maxAttempts, 'maxAttempts', 1, MAX_INT4)
  if (!Array.isArray(o.items) || o.items.length > MAX_BATCH) throw invalid('items')
  const seen = new Set()
  const items = []
  for (const i of o.items) {
    if (typeof i !== 'object' || i === null) throw invalid('items')
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
        outcome: /** @type {const} */ ('failed'),
        error: lastErrorText(i.error),
        backoffMs: Math.min(MAX_INT4, Math.max(0, Math.floor(Number(i.backoffMs) || 0))),
      })
    } else {
      throw invalid('items.outcome')
    }
  }
  return { owner: o.owner, items, maxAttempts }
}

/**
 * A relay's error as `lastError` keeps it: cut to LAST_ERROR_CHARS, then NUL and unpaired surrogates (a cut can
 * split a pair) replaced with U+FFFD, as the provider guide asks.
 * @param {unknown} error
 */
export function lastErrorText(error) {
  return String(error)
    .slice(0, LAST_ERROR_CHARS)
    .replaceAll('\u0000', '\uFFFD')
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
}

/**
 * The outbox listing's keyset cursor: base64url JSON of the last event's (tenant, aggregate, sequence,
 * position) and of the listing it came from (status and filters), so another listing refuses it rather than
 * skip events. Opaque to callers, checked field by field when it comes back.
 * @param {{ tenantId: string, aggregateType: string, aggregateId: string, sequence: number, position: number }} k
 * @param {{ status: string, tenantId?: string, aggregateId?: string }} listing
 */
export function encodeOutboxCursor(k, listing) {
  return Buffer.from(
    JSON.stringify([k.tenantId, k.aggregateType, k.aggregateId, k.sequence, k.position, listingOf(listing)]),
  ).toString('base64url')
}

/** @param {{ status: string, tenantId?: string, aggregateId?: string }} q */
const listingOf = (q) => [q.status, q.tenantId ?? null, q.aggregateId ?? null].join(' ')

/**
 * @param {unknown} cursor
 * @param {{ status: string, tenantId?: string, aggregateId?: string }} listing
 * @returns {[string, string, string, number, number]}
 */
function decodeOutboxCursor(cursor, listing) {
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 1000) throw invalid('cursor')
  let parts
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid('cursor')
  }
  if (!Array.isArray(parts) || parts.length !== 6 || parts[5] !== listingOf(listing)) {
    throw invalid('cursor')
  }
  const [tenantId, aggregateType, aggregateId, sequence, position] = parts
  try {
    assertId(tenantId, 'cursor')
    assertId(aggregateId, 'cursor')
    assertInt(sequence, 'cursor', 0, MAX_INT4)
    assertInt(position, 'cursor', 0, MAX_INT4)
  } catch {
    throw invalid('cursor')
  }
  if (aggregateType !== 'tenant' && aggregateType !== 'user') throw invalid('cursor')
  return [tenantId, aggregateType, aggregateId, sequence, position]
}

/** @param {unknown} query */
export function listOutboxQuery(query) {
  const q = optionsObject(query, 'outbox list query', [
    'status',
    'tenantId',
    'aggregateId',
    'limit',
    'cursor',
  ])
  if (q.status !== 'pending' && q.status !== 'dead') throw invalid('status')
  if (q.tenantId !== undefined) assertId(q.tenantId, 'tenantId')
  if (q.aggregateId !== undefined) assertId(q.aggregateId, 'aggregateId')
  const listing = {
    status: q.status,
    tenantId: /** @type {string | undefined} */ (q.tenantId),
    aggregateId: /** @type {string | undefined} */ (q.aggregateId),
  }
  return {
    ...listing,
    limit: assertInt(q.limit ?? 100, 'limit', 1, 1000),
    after: q.cursor === undefined ? undefined : decodeOutboxCursor(q.cursor, listing),
  }
}
