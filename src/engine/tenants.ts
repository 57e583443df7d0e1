import { newId } from '../domain/ids.js'
import { LIMITS } from '../domain/limits.js'
import type { TenantRecord } from '../domain/records.js'
import { assertString } from '../domain/validation.js'
import type { EngineContext } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'

export async function createTenant(ctx: EngineContext, name: string): Promise<TenantRecord> {
  assertString(name, 'name', LIMITS.tenantNameLength)
  const tenantId = newId('ten')
  return ctx.unit(tenantId, async (tx) => {
    tx.putTenant({ id: tenantId, name, status: 'active' }, { mustNotExist: true })
    tx.appendAudit({ action: AUDIT_ACTIONS.tenantCreated, data: { tenantId } })
    tx.enqueue({ type: EVENT_TYPES.tenantCreated, payload: { tenantId } })
    return (await tx.getTenant())!
  })
}
