import type { AuditRecord } from '../domain/records.js'
import { assertId, optionsObject } from '../domain/validation.js'
import type { ListAuditQuery, Page } from '../store/store.js'
import { type EngineContext, tenantNotFound } from './context.js'

export interface ListAuditOptions {
  /** Only the records about this user. */
  readonly userId?: string
  /** 1 to 500; default 50. */
  readonly limit?: number
  /** The previous page's `nextCursor`, from a listing of the same tenant. */
  readonly cursor?: string
}

/** A tenant's audit trail, oldest first, keyset-paginated; an unknown tenant is NOT_FOUND. */
export async function listAudit(
  ctx: EngineContext,
  tenantId: string,
  options: ListAuditOptions,
): Promise<Page<AuditRecord>> {
  assertId(tenantId, 'tenantId')
  const o = optionsObject(options, 'listAudit options', ['userId', 'limit', 'cursor'])
  const query: ListAuditQuery = {
    ...(o.userId === undefined ? {} : { userId: o.userId as string }),
    ...(o.limit === undefined ? {} : { limit: o.limit as number }),
    ...(o.cursor === undefined ? {} : { cursor: o.cursor as string }),
  }
  // Records exist only in a registered tenant: a page with records proves it, so only an empty one reads it.
  const page = await ctx.store.listAudit(tenantId, query)
  if (page.items.length === 0 && !(await ctx.store.getTenant(tenantId))) throw tenantNotFound(tenantId)
  return page
}
