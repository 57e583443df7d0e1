import { createHash } from 'node:crypto'
import { plainList } from '../domain/caller-values.js'
import { ValidationError } from '../domain/errors.js'
import type {
  IdentifierKind,
  IdentifierRecord,
  ProfileRecord,
  UserRecord,
  UserStatus,
} from '../domain/records.js'
import { type IdentifierPrefix, normalizeIdentifierPrefix } from '../domain/user-queries.js'
import { assertId, optionsObject } from '../domain/validation.js'
import type { CountUsersQuery, ListedUser, ListUsersQuery, Page } from '../store/store.js'
import { type EngineContext, tenantNotFound, userNotFound } from './context.js'
import { type FactorSummary, summarizeFactor } from './factors.js'

/** An identifier as the engine returns it, to a caller who asked for it: its value included. */
export interface IdentifierSummary {
  readonly id: string
  readonly kind: IdentifierKind
  /** The normalized value (NFKC, lower case), as stored. */
  readonly value: string
  readonly verified: boolean
  readonly version: number
  readonly createdAt: string
  readonly updatedAt: string
}

/** Everything about one user a service shows on an account page, without any secret. */
export interface UserDetails {
  readonly user: UserRecord
  /** In id order. */
  readonly identifiers: readonly IdentifierSummary[]
  /** null when the user has none (a deleted user's was erased). */
  readonly profile: ProfileRecord | null
  readonly factors: readonly FactorSummary[]
}

/**
 * A listed user; `identifiers` (id, kind, value, verified of each) only when the listing asked for them
 * (`include: ['identifiers']`). getUserDetails has the whole identifier.
 */
export type UserListItem = ListedUser

export interface CountUsersOptions {
  readonly status?: UserStatus
  /** Only users whose email starts with this, in any letter case (normalized like an email). */
  readonly emailPrefix?: string
  /** Only users whose username starts with this (normalized like a username). */
  readonly usernamePrefix?: string
}

export interface ListUsersOptions extends CountUsersOptions {
  /** 1 to 500; default 50. */
  readonly limit?: number
  /** The previous page's `nextCursor`, from a listing of the same tenant with the same search and status. */
  readonly cursor?: string
  /** `['identifiers']`: each user carries its identifiers, read with the page (one query per page). */
  readonly include?: readonly 'identifiers'[]
}

const INCLUDABLE = ['identifiers'] as const

function summarizeIdentifier(i: IdentifierRecord): IdentifierSummary {
  return {
    id: i.id,
    kind: i.kind,
    value: i.value,
    verified: i.verified,
    version: i.version,
    createdAt: i.createdAt,
    updatedAt: i.updatedAt,
  }
}

/** The store's prefix filter from the engine's options: at most one of emailPrefix and usernamePrefix. */
function prefixOf(o: Record<string, unknown>): IdentifierPrefix | undefined {
  if (o.emailPrefix !== undefined && o.usernamePrefix !== undefined) {
    throw new ValidationError('give at most one of emailPrefix and usernamePrefix', {
      details: { field: 'usernamePrefix' },
    })
  }
  if (o.emailPrefix !== undefined) {
    return { kind: 'email', prefix: normalizeIdentifierPrefix('email', o.emailPrefix) }
  }
  if (o.usernamePrefix !== undefined) {
    return { kind: 'username', prefix: normalizeIdentifierPrefix('username', o.usernamePrefix) }
  }
  return undefined
}

/**
 * The engine's listUsers cursor is the store's behind a tag naming the listing it came from: the tenant, the
 * search (kind and prefix, or none) and the status filter. The store's cursor holds only the last id or value,
 * which another search, prefix or tenant would accept and answer with a page that silently skips users.
 * Base64url has no '.', so the tag is unambiguous.
 */
function listingTag(tenantId: string, search: IdentifierPrefix | undefined, status: unknown): string {
  const what = [
    tenantId,
    search?.kind ?? 'id',
    search?.prefix ?? '',
    typeof status === 'string' ? status : '',
  ]
  return createHash('sha256').update(what.join('\u0000')).digest('hex').slice(0, 12)
}

const otherListingCursor = () =>
  new ValidationError('cursor is not valid for this listing: pass back the nextCursor of the same search', {
    details: { field: 'cursor' },
  })

function storeCursor(cursor: unknown, tag: string): unknown {
  if (typeof cursor !== 'string') return cursor
  const dot = cursor.indexOf('.')
  if (dot === -1 || cursor.slice(0, dot) !== tag) throw otherListingCursor()
  return cursor.slice(dot + 1)
}

/**
 * The user with its identifiers, profile and factor summaries. Read in one unit of work and checked for
 * consistency: every change to a user's records bumps the user's version (store rule 5), so when the user
 * reads at the same version before and after its records, no change landed in between; otherwise it reads
 * again. Deleted users are returned as their tombstone (nothing else is left).
 */
export async function getUserDetails(
  ctx: EngineContext,
  tenantId: string,
  userId: string,
): Promise<UserDetails> {
  assertId(tenantId, 'tenantId')
  assertId(userId, 'userId')
  return ctx.unit(tenantId, async (tx) => {
    for (let attempt = 1; ; attempt++) {
      const user = await tx.getUser(userId)
      if (!user) {
        if (!(await tx.getTenant())) throw tenantNotFound(tenantId)
        throw userNotFound(userId)
      }
      const [identifiers, profile, factors] = await Promise.all([
        tx.listIdentifiers(userId),
        tx.getProfile(userId),
        tx.listFactors(userId),
      ])
      const again = await tx.getUser(userId)
      if (again?.version === user.version || attempt >= ctx.maxAttempts) {
        return {
          user,
          identifiers: identifiers.map(summarizeIdentifier),
          profile,
          factors: factors.map(summarizeFactor),
        }
      }
    }
  })
}

/**
 * A page of users: by id, or, with a prefix, by the matching email or username in code-point order (each user
 * once). `include: ['identifiers']` adds each user's identifiers from the same query as the page.
 */
export async function listUsers(
  ctx: EngineContext,
  tenantId: string,
  options: ListUsersOptions,
): Promise<Page<UserListItem>> {
  assertId(tenantId, 'tenantId')
  const o = optionsObject(options, 'listUsers options', [
    'limit',
    'cursor',
    'status',
    'include',
    'emailPrefix',
    'usernamePrefix',
  ])
  const include = plainList(
    o.include ?? [],
    'include',
    8,
    "include must be a list of 'identifiers'",
    (x): x is (typeof INCLUDABLE)[number] => INCLUDABLE.includes(x as (typeof INCLUDABLE)[number]),
  )
  const identifierPrefix = prefixOf(o)
  const tag = listingTag(tenantId, identifierPrefix, o.status)
  const query: ListUsersQuery = {
    ...(o.limit === undefined ? {} : { limit: o.limit as number }),
    ...(o.cursor === undefined ? {} : { cursor: storeCursor(o.cursor, tag) as string }),
    ...(o.status === undefined ? {} : { status: o.status as UserStatus }),
    ...(identifierPrefix ? { identifierPrefix } : {}),
    ...(include.length > 0 ? { includeIdentifiers: true } : {}),
  }
  // Users exist only under a registered tenant, and a tenant is never deleted: a page with users proves the
  // tenant, so the tenant is read only for an empty page (an unknown tenant lists nothing, and is NOT_FOUND).
  const page = await ctx.store.listUsers(tenantId, query)
  if (page.items.length === 0 && !(await ctx.store.getTenant(tenantId))) throw tenantNotFound(tenantId)
  return page.nextCursor === null ? page : { ...page, nextCursor: `${tag}.${page.nextCursor}` }
}

/** How many users `listUsers` with the same filters lists. */
export async function countUsers(
  ctx: EngineContext,
  tenantId: string,
  options: CountUsersOptions,
): Promise<number> {
  assertId(tenantId, 'tenantId')
  const o = optionsObject(options, 'countUsers options', ['status', 'emailPrefix', 'usernamePrefix'])
  const identifierPrefix = prefixOf(o)
  const query: CountUsersQuery = {
    ...(o.status === undefined ? {} : { status: o.status as UserStatus }),
    ...(identifierPrefix ? { identifierPrefix } : {}),
  }
  // As in listUsers: a count above zero proves the tenant.
  const count = await ctx.store.countUsers(tenantId, query)
  if (count === 0 && !(await ctx.store.getTenant(tenantId))) throw tenantNotFound(tenantId)
  return count
}
