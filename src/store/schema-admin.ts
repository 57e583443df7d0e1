/** One applied migration whose recorded checksum differs from the manifest, or that the manifest lacks. */
export interface SchemaDriftEntry {
  readonly version: number
  readonly name: string
  /** checksum: edited after it was applied; missing: absent below an applied version; unknown_version: newer code. */
  readonly reason: 'checksum' | 'missing' | 'unknown_version'
}

export interface SchemaStatus {
  readonly currentVersion: number
  readonly latestVersion: number
  /** Versions the manifest has and the database has not applied, in order. */
  readonly pending: readonly number[]
  readonly drift: readonly SchemaDriftEntry[]
}

/**
 * Optional administration a store may offer beyond the contract (the CLI's `status` and `plan` use it).
 * Unlike opening a store, `schemaStatus` reports drift instead of refusing it.
 */
export interface SchemaAdministration {
  schemaStatus(): Promise<SchemaStatus>
  /** The SQL `migrate()` would run, without running it; empty when nothing is pending. */
  migrationPlan(): Promise<string>
}

export function hasSchemaAdministration(store: object): store is SchemaAdministration {
  return (
    typeof (store as Partial<SchemaAdministration>).schemaStatus === 'function' &&
    typeof (store as Partial<SchemaAdministration>).migrationPlan === 'function'
  )
}
