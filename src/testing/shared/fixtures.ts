import type {
  FactorKind,
  IdentifierKind,
  JsonValue,
  ProfileAttributes,
  UserRecord,
  UserStatus,
} from '../../domain/records.js'
import { Secret } from '../../domain/secret.js'
import { normalizeIdentifier } from '../../domain/validation.js'
import { commitUserChange } from '../../store/change-user.js'
import type { UserEngineStore } from '../../store/store.js'
import type { UnitOfWork } from '../../store/unit-of-work.js'
import { freshId } from './context.js'
import { assert } from './expect.js'

export interface SeedUserOptions {
  readonly userId?: string
  readonly status?: UserStatus
  /** Raw values; stored normalized, as the engine would. */
  readonly email?: string
  readonly username?: string
  readonly attributes?: ProfileAttributes
  readonly factor?: {
    readonly id?: string
    readonly kind?: FactorKind
    readonly secret: { readonly [key: string]: JsonValue }
    readonly state?: { readonly [key: string]: JsonValue }
  }
  /** Events enqueued about the user in the creating commit. Default 1. */
  readonly events?: number
  /** Audit records appended in the creating commit. Default 1. */
  readonly audits?: number
}

export interface SeededUser {
  readonly userId: string
  readonly emailId: string | null
  readonly email: string | null
  readonly usernameId: string | null
  readonly username: string | null
  readonly factorId: string | null
}

/** Creates a user with whatever records are asked for, in one commit, the way the engine's sign-up would. */
export async function seedUser(
  store: UserEngineStore,
  tenantId: string,
  options: SeedUserOptions = {},
): Promise<SeededUser> {
  const userId = options.userId ?? freshId('u')
  const email = options.email === undefined ? null : normalizeIdentifier('email', options.email)
  const username = options.username === undefined ? null : normalizeIdentifier('username', options.username)
  const emailId = email === null ? null : freshId('idn')
  const usernameId = username === null ? null : freshId('idn')
  const factorId = options.factor ? (options.factor.id ?? freshId('fac')) : null
  await store.transaction(tenantId, async (tx) => {
    tx.putUser({ id: userId, status: options.status ?? 'active' }, { mustNotExist: true })
    if (emailId && email) putIdentifier(tx, emailId, userId, 'email', email)
    if (usernameId && username) putIdentifier(tx, usernameId, userId, 'username', username)
    if (options.attributes) tx.putProfile({ userId, attributes: options.attributes }, { mustNotExist: true })
    if (options.factor && factorId) {
      tx.putFactor(
        {
          id: factorId,
          userId,
          kind: options.factor.kind ?? 'password',
          secret: new Secret(options.factor.secret),
          state: options.factor.state ?? {},
        },
        { mustNotExist: true },
      )
    }
    for (let i = 0; i < (options.audits ?? 1); i++)
      tx.appendAudit({ action: 'user.created', userId, data: { i } })
    for (let i = 0; i < (options.events ?? 1); i++)
      tx.enqueue({ type: 'user.created', userId, payload: { i } })
  })
  return { userId, emailId, email, usernameId, username, factorId }
}

export function putIdentifier(
  tx: UnitOfWork,
  id: string,
  userId: string,
  kind: IdentifierKind,
  value: string,
): void {
  tx.putIdentifier({ id, userId, kind, value, verified: false }, { mustNotExist: true })
}

/**
 * One commit that bumps an existing user (rule 5) after `fn` buffered its writes: the store kit's
 * commitUserChange, which reads the user inside the unit, so the precondition is the version this unit saw.
 */
export async function changeUser(
  store: UserEngineStore,
  tenantId: string,
  userId: string,
  fn: (tx: UnitOfWork, user: UserRecord) => void | Promise<void> = () => {},
  status?: UserStatus,
): Promise<void> {
  await commitUserChange(store, tenantId, userId, {
    write: fn,
    status,
    notFound: () => new Error(`conformance fixture: user ${userId} not found in tenant ${tenantId}`),
  })
}

/** Every page of a keyset listing, following cursors; fails instead of looping on a cursor that repeats. */
export async function allPages<T>(
  fetch: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
  maxPages = 1000,
): Promise<T[][]> {
  const pages: T[][] = []
  const seen = new Set<string>()
  let cursor: string | undefined
  for (let i = 0; i < maxPages; i++) {
    const page = await fetch(cursor)
    pages.push(page.items)
    if (page.nextCursor === null) return pages
    if (seen.has(page.nextCursor)) assert.fail('a listing returned the same cursor twice')
    seen.add(page.nextCursor)
    cursor = page.nextCursor
  }
  assert.fail(`a listing did not end within ${maxPages} pages`)
}
