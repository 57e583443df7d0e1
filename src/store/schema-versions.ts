import { ValidationError } from '../domain/errors.js'
import type { RecordType } from '../domain/records.js'

/**
 * A logical schema version: what the store holds at that version, whatever the database. Every provider's
 * schema history records these versions; the Postgres store's migration manifest implements each one with
 * one SQL file, and another database implements it its own way.
 */
export interface SchemaVersion {
  /** Consecutive from 1. */
  readonly version: number
  readonly name: string
  /** The logical record types whose storage this version creates or changes. */
  readonly recordTypes: readonly RecordType[]
  /** Why the version exists, for providers implementing it. */
  readonly purpose: string
}

/** The ordered logical schema versions. Append only: a released version never changes. */
export const SCHEMA_VERSIONS: readonly SchemaVersion[] = Object.freeze([
  {
    version: 1,
    name: 'user_engine_store',
    recordTypes: ['tenant', 'user', 'identifier', 'profile', 'factor'],
    purpose:
      'The generic store: schema history, records, audit, outbox, and the one-statement commit function.',
  },
  {
    version: 2,
    name: 'identifier_unique_and_keyset_indexes',
    recordTypes: ['identifier', 'user'],
    purpose:
      'Race-proof per-tenant identifier uniqueness; indexes for user, status, audit and outbox queries.',
  },
  {
    version: 3,
    name: 'outbox_claim_index',
    recordTypes: [],
    purpose: "The relay's claim index on due pending events.",
  },
  {
    version: 4,
    name: 'outbox_id_index_and_db_clock',
    recordTypes: [],
    purpose:
      'An index of leased and dead outbox events for the id-only relay and operator statements; user_engine_commit sets available_at from the database clock.',
  },
  {
    version: 5,
    name: 'outbox_due_order_index',
    recordTypes: [],
    purpose:
      "The relay claim's due-order index (the one index not led by tenant_id: claims span tenants); drops 0003's index.",
  },
  {
    version: 6,
    name: 'commit_checks_by_primary_key',
    recordTypes: ['identifier'],
    purpose:
      'user_engine_commit decides existence by primary key (ON CONFLICT) and checks identifier values after the write.',
  },
  {
    version: 7,
    name: 'sign_in_throttle_and_tenant_index',
    recordTypes: ['tenant'],
    purpose:
      'Failed sign-in counts and lockouts per tenant and opaque key (ThrottleAccess), updated atomically outside units of work; an index for listTenants.',
  },
  {
    version: 8,
    name: 'identifier_prefix_and_audit_context',
    recordTypes: ['identifier'],
    purpose:
      'Identifier prefix search within a tenant (an index in code-point order); audit records keep the request context (request id, client IP and user agent) and are listed from a cursor naming the last record instead of a sequence shared by all tenants.',
  },
  {
    version: 9,
    name: 'sessions_tokens_and_key_ids',
    recordTypes: ['session', 'token', 'factor'],
    purpose:
      "Session and single-use token records (store rules 10 and 11: one-read lookup, bounded purge of expired ones by a tenant-led expiry index); every factor's keyId set from its sealed secret, so seeds can be counted and re-sealed per key.",
  },
  {
    version: 10,
    name: 'outbox_pending_aggregate_index',
    recordTypes: [],
    purpose:
      "An index of pending and dead outbox events by aggregate (replacing 0002's), so the relay's head check and prefix claims never read published events; a dead-events index replacing 0004's leased-or-dead one and room on each page, so claims are HOT updates.",
  },
  {
    version: 11,
    name: 'group_commit',
    recordTypes: [],
    purpose:
      'user_engine_commit_batch: several units of work in one statement and one transaction, each in a subtransaction of its own, reporting each failure as user_engine_commit raised it (group commit).',
  },
  {
    version: 12,
    name: 'group_commit_set_based',
    recordTypes: [],
    purpose:
      'user_engine_commit_batch applies a batch set-based first (a statement per table for all units, one subtransaction), and one unit at a time as before when anything in it fails.',
  },
  {
    version: 13,
    name: 'group_commit_refuses_suspended_tenant',
    recordTypes: [],
    purpose:
      'user_engine_commit_batch refuses a unit that asks it (refuseSuspendedTenant) when its tenant is suspended, reporting UE005, so the store sends the batch without a wrapping read of each tenant.',
  },
])

/** The schema version this code needs: the last logical version. Every store's readiness compares with it. */
export const LATEST_SCHEMA_VERSION: number = SCHEMA_VERSIONS[SCHEMA_VERSIONS.length - 1]!.version

/** The logical version `version`; throws for a version this code does not know. */
export function schemaVersion(version: number): SchemaVersion {
  const found = SCHEMA_VERSIONS[version - 1]
  if (found?.version !== version) {
    throw new ValidationError(`unknown schema version ${version}`, { details: { version } })
  }
  return found
}

/** The keys every store's `diagnostics().counts` carries. Counts only: never a value. */
export const DIAGNOSTIC_COUNT_KEYS = [
  'tenants',
  'users',
  'identifiers',
  'profiles',
  'factors',
  'sessions',
  'tokens',
  'audit_records',
  'outbox_pending',
  'outbox_published',
  'outbox_dead',
  'outbox_discarded',
] as const
export type DiagnosticCountKey = (typeof DIAGNOSTIC_COUNT_KEYS)[number]
