import type {
  AuditRecord,
  IdentifierKind,
  IdentifierRecord,
  TenantRecord,
  UserRecord,
} from '../../src/domain/records.js'
import type {
  Diagnostics,
  ListAuditQuery,
  ListUsersQuery,
  MigrateResult,
  OutboxAccess,
  Page,
  Readiness,
  StoreCapabilities,
  ThrottleAccess,
  UnitOfWork,
  UserEngineStore,
} from '../../src/store/index.js'
import { InMemoryUserEngineStore } from '../../src/store/memory/index.js'

/** Forwards everything to a correct store; each broken store overrides the one rule it breaks. */
export class DelegatingStore implements UserEngineStore {
  readonly kind: string = 'delegating'
  constructor(readonly inner: UserEngineStore = new InMemoryUserEngineStore()) {}
  get capabilities(): StoreCapabilities {
    return this.inner.capabilities
  }
  get outbox(): OutboxAccess {
    return this.inner.outbox
  }
  get throttle(): ThrottleAccess {
    return this.inner.throttle
  }
  readiness(): Promise<Readiness> {
    return this.inner.readiness()
  }
  migrate(): Promise<MigrateResult> {
    return this.inner.migrate()
  }
  transaction<T>(tenantId: string, fn: (tx: UnitOfWork) => Promise<T>): Promise<T> {
    return this.inner.transaction(tenantId, fn)
  }
  getTenant(tenantId: string): Promise<TenantRecord | null> {
    return this.inner.getTenant(tenantId)
  }
  getUser(tenantId: string, userId: string): Promise<UserRecord | null> {
    return this.inner.getUser(tenantId, userId)
  }
  findUserByIdentifier(tenantId: string, kind: IdentifierKind, value: string): Promise<UserRecord | null> {
    return this.inner.findUserByIdentifier(tenantId, kind, value)
  }
  getIdentifier(tenantId: string, kind: IdentifierKind, value: string): Promise<IdentifierRecord | null> {
    return this.inner.getIdentifier(tenantId, kind, value)
  }
  listUsers(tenantId: string, query?: ListUsersQuery): Promise<Page<UserRecord>> {
    return this.inner.listUsers(tenantId, query)
  }
  listAudit(tenantId: string, query?: ListAuditQuery): Promise<Page<AuditRecord>> {
    return this.inner.listAudit(tenantId, query)
  }
  diagnostics(): Promise<Diagnostics> {
    return this.inner.diagnostics()
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}
