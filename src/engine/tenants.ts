import { assertDisplayName } from '../domain/display-name.js'
import { newId } from '../domain/ids.js'
import { LIMITS } from '../domain/limits.js'
import type { TenantRecord, TenantStatus } from '../domain/records.js'
import { assertId, validateListTenantsQuery } from '../domain/validation.js'
import type { ListTenantsQuery, Page } from '../store/store.js'
import type { UnitOfWork } from '../store/unit-of-work.js'
import { type EngineContext, requireTenant, tenantNotFound } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'

export async function createTenant(ctx: EngineContext, name: string): Promise<TenantRecord> {
  assertDisplayName(name, 'name', LIMITS.tenantNameLength)
  const tenantId = newId('ten')
  return ctx.unit(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name, status: 'active' }, { mustNotExist: true })
    tx.appendAudit({ action: AUDIT_ACTIONS.tenantCreated, data: { tenantId } })
    tx.enqueue({ type: EVENT_TYPES.tenantCreated, payload: { tenantId } })
    return (await tx.getTenant())!
  })
}

export async function getTenant(ctx: EngineContext, tenantId: string): Promise<TenantRecord> {
  assertId(tenantId, 'tenantId')
  const tenant = await ctx.store.getTenant(tenantId)
  if (!tenant) throw tenantNotFound(tenantId)
  return tenant
}

export async function listTenants(
  ctx: EngineContext,
  query: ListTenantsQuery = {},
): Promise<Page<TenantRecord>> {
  validateListTenantsQuery(query)
  return ctx.store.listTenants(query)
}

/**
 * One change to the tenant record: written with the version read as precondition (so the tenant's version
 * is its events' sequence), with its audit record and event. The same values again write nothing.
 */
async function changeTenant(
  ctx: EngineContext,
  tenantId: string,
  change: { name?: string; status?: TenantStatus },
  what: { audit: string; event: string },
): Promise<TenantRecord> {
  return ctx.unit(tenantId, async (tx: UnitOfWork) => {
    const tenant = await requireTenant(tx)
    const next = { ...tenant, ...change }
    if (next.name === tenant.name && next.status === tenant.status) return tenant
    tx.putTenant({ id: tenantId, name: next.name, status: next.status }, { expectedVersion: tenant.version })
    tx.appendAudit({ action: what.audit, data: { tenantId } })
    tx.enqueue({ type: what.event, payload: { tenantId } })
    return { ...(await tx.getTenant())!, createdAt: tenant.createdAt }
  })
}

export async function renameTenant(
  ctx: EngineContext,
  tenantId: string,
  name: string,
): Promise<TenantRecord> {
  assertId(tenantId, 'tenantId')
  assertDisplayName(name, 'name', LIMITS.tenantNameLength)
  return changeTenant(
    ctx,
    tenantId,
    { name },
    { audit: AUDIT_ACTIONS.tenantRenamed, event: EVENT_TYPES.tenantRenamed },
  )
}

export async function setTenantStatus(
  ctx: EngineContext,
  tenantId: string,
  status: TenantStatus,
): Promise<TenantRecord> {
  assertId(tenantId, 'tenantId')
  const suspended = status === 'suspended'
  return changeTenant(
    ctx,
    tenantId,
    { status },
    suspended
      ? { audit: AUDIT_ACTIONS.tenantSuspended, event: EVENT_TYPES.tenantSuspended }
      : { audit: AUDIT_ACTIONS.tenantReactivated, event: EVENT_TYPES.tenantReactivated },
  )
}
