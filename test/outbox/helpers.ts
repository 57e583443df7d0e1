import type { JsonValue } from '../../src/domain/records.js'
import { recordUserChange } from '../../src/store/change-user.js'
import type { UserEngineStore } from '../../src/store/store.js'

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Creates the tenant unless it exists (stores refuse commits into a missing tenant). */
export async function ensureTenant(store: UserEngineStore, tenantId: string): Promise<void> {
  if (await store.getTenant(tenantId)) return
  await store.transaction(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name: tenantId, status: 'active' }, { mustNotExist: true })
  })
}

/**
 * Commits one unit of work on a user (creating the tenant and user at first), emitting `count` events.
 * Returns the user's new version.
 */
export async function commitEvents(
  store: UserEngineStore,
  tenantId: string,
  userId: string,
  count = 1,
  payload: { readonly [key: string]: JsonValue } = {},
): Promise<number> {
  await ensureTenant(store, tenantId)
  const events = Array.from({ length: count }, () => ({ type: 'x', payload }))
  return store.transaction(tenantId, async (tx) => {
    const user = await tx.getUser(userId)
    return (await recordUserChange(tx, userId, user, { status: 'active', events })).version
  })
}

/** Polls `check` until it returns true or the timeout passes. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
  what = 'condition',
) {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** A promise with its resolver, for publishers a test holds open. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}
