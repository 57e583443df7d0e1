import type {
  FactorRecord,
  IdentifierRecord,
  JsonValue,
  ProfileRecord,
  RecordType,
  SessionRecord,
  SignInMethod,
  TenantRecord,
  TokenRecord,
  UserRecord,
} from '../domain/records.js'
import { Secret } from '../domain/secret.js'

/**
 * The storage shape of every record: the columns of `user_engine_records`. Stores keep rows; the codec
 * below turns them into records. Keeping one codec means every store returns identical records.
 *
 * `fromRow` does not copy: the record shares the row's payload objects (attributes, factor state, the
 * value inside a factor secret). A store whose rows come fresh from a driver needs nothing more; a store
 * that keeps rows in memory must hand `fromRow` (and a `RowSource` must return) copies, or a caller that
 * changes a returned record changes the stored one.
 */
export interface StoredRow {
  readonly type: RecordType
  readonly id: string
  readonly userId: string | null
  readonly version: number
  readonly payload: { readonly [key: string]: JsonValue }
  readonly createdAt: string
  readonly updatedAt: string
}

export const recordCodec = {
  tenant: {
    toPayload: (t: { name: string; status: string }): StoredRow['payload'] => ({
      name: t.name,
      status: t.status,
    }),
    fromRow: (tenantId: string, r: StoredRow): TenantRecord => ({
      id: r.id,
      tenantId,
      name: r.payload.name as string,
      status: r.payload.status as TenantRecord['status'],
      version: r.version,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    }),
  },
  user: {
    toPayload: (u: { status: string }): StoredRow['payload'] => ({ status: u.status }),
    fromRow: (tenantId: string, r: StoredRow): UserRecord => ({
      id: r.id,
      tenantId,
      status: r.payload.status as UserRecord['status'],
      version: r.version,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    }),
  },
  identifier: {
    toPayload: (i: { kind: string; value: string; verified: boolean }): StoredRow['payload'] => ({
      kind: i.kind,
      value: i.value,
      verified: i.verified,
    }),
    fromRow: (tenantId: string, r: StoredRow): IdentifierRecord => ({
      id: r.id,
      tenantId,
      userId: r.userId!,
      kind: r.payload.kind as IdentifierRecord['kind'],
      value: r.payload.value as string,
      verified: r.payload.verified as boolean,
      version: r.version,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    }),
  },
  profile: {
    toPayload: (p: { attributes: ProfileRecord['attributes'] }): StoredRow['payload'] => ({
      attributes: { ...p.attributes },
    }),
    fromRow: (tenantId: string, r: StoredRow): ProfileRecord => ({
      userId: r.id,
      tenantId,
      attributes: Object.freeze({ ...(r.payload.attributes as ProfileRecord['attributes']) }),
      version: r.version,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    }),
  },
  factor: {
    toPayload: (
      f: Pick<FactorRecord, 'kind' | 'secret' | 'state'> & { keyId?: string | null },
    ): StoredRow['payload'] => ({
      kind: f.kind,
      secret: f.secret.reveal(),
      state: f.state,
      keyId: f.keyId ?? null,
    }),
    fromRow: (tenantId: string, r: StoredRow): FactorRecord => ({
      id: r.id,
      tenantId,
      userId: r.userId!,
      kind: r.payload.kind as FactorRecord['kind'],
      secret: new Secret(r.payload.secret as { [key: string]: JsonValue }),
      state: r.payload.state as FactorRecord['state'],
      keyId: typeof r.payload.keyId === 'string' ? r.payload.keyId : null,
      version: r.version,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    }),
  },
  session: {
    toPayload: (
      s: Pick<SessionRecord, 'tokenHash' | 'methods' | 'lastSeenAt' | 'expiresAt' | 'absoluteExpiresAt'>,
    ): StoredRow['payload'] => ({
      tokenHash: s.tokenHash.reveal(),
      methods: [...s.methods],
      lastSeenAt: s.lastSeenAt,
      expiresAt: s.expiresAt,
      absoluteExpiresAt: s.absoluteExpiresAt,
    }),
    fromRow: (tenantId: string, r: StoredRow): SessionRecord => ({
      id: r.id,
      tenantId,
      userId: r.userId!,
      tokenHash: new Secret(r.payload.tokenHash as string),
      methods: Object.freeze([...(r.payload.methods as SignInMethod[])]),
      lastSeenAt: r.payload.lastSeenAt as string,
      expiresAt: r.payload.expiresAt as string,
      absoluteExpiresAt: r.payload.absoluteExpiresAt as string,
      version: r.version,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    }),
  },
  token: {
    toPayload: (
      t: Pick<TokenRecord, 'purpose' | 'tokenHash' | 'expiresAt' | 'data'>,
    ): StoredRow['payload'] => ({
      purpose: t.purpose,
      tokenHash: t.tokenHash.reveal(),
      expiresAt: t.expiresAt,
      data: { ...t.data },
    }),
    fromRow: (tenantId: string, r: StoredRow): TokenRecord => ({
      id: r.id,
      tenantId,
      userId: r.userId!,
      purpose: r.payload.purpose as TokenRecord['purpose'],
      tokenHash: new Secret(r.payload.tokenHash as string),
      expiresAt: r.payload.expiresAt as string,
      data: r.payload.data as TokenRecord['data'],
      version: r.version,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    }),
  },
} as const
