import type {
  AuditRecord,
  FactorRecord,
  IdentifierKind,
  IdentifierRecord,
  TenantRecord,
  UserRecord,
} from '../../src/domain/records.js'
import type {
  CountUsersQuery,
  Diagnostics,
  ListAuditQuery,
  ListedUser,
  ListSealedFactorsQuery,
  ListTenantsQuery,
  ListUsersQuery,
  MigrateResult,
  OutboxAccess,
  Page,
  PurgeExpiredQuery,
  PurgeExpiredResult,
  Readiness,
  SessionLookup,
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
  listTenants(query?: ListTenantsQuery): Promise<Page<TenantRecord>> {
    return this.inner.listTenants(query)
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
  listUsers(tenantId: string, query?: ListUsersQuery): Promise<Page<ListedUser>> {
    return this.inner.listUsers(tenantId, query)
  }
  countUsers(tenantId: string, query?: CountUsersQuery): Promise<number> {
    return this.inner.countUsers(tenantId, query)
  }
  listAudit(tenantId: string, query?: ListAuditQuery): Promise<Page<AuditRecord>> {
    return this.inner.listAudit(tenantId, query)
  }
  findSession(tenantId: string, sessionId: string): Promise<SessionLookup | null> {
    return this.inner.findSession(tenantId, sessionId)
  }
  purgeExpired(tenantId: string, query: PurgeExpiredQuery): Promise<PurgeExpiredResult> {
    return this.inner.purgeExpired(tenantId, query)
  }
  listSealedFactors(tenantId: string, query: ListSealedFactorsQuery): Promise<FactorRecord[]> {
    return this.inner.listSealedFactors(tenantId, query)
  }
  diagnostics(): Promise<Diagnostics> {
    return this.inner.diagnostics()
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}
