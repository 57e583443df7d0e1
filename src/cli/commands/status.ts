import type { SchemaStatus } from '../../store/schema-admin.js'
import { ExitCode } from '../shared/exit-codes.js'
import { inspectSchema, type OpenStoreOptions, type StoreLocation } from '../shared/open-store.js'
import type { Output } from '../shared/output.js'

/**
 * Reads the schema history without opening a store, so drift and a newer database are reported (exit 4)
 * with what is wrong, rather than only refused. Exit 3 when migrations are pending.
 */
export async function statusCommand(
  location: StoreLocation,
  out: Output,
  options: OpenStoreOptions = {},
): Promise<ExitCode> {
  const status: SchemaStatus = await inspectSchema(location, options)
  const lines = [`schema version ${status.currentVersion} of ${status.latestVersion}`]
  if (status.pending.length > 0)
    lines.push(`pending: ${status.pending.join(', ')} (run: user-engine migrate)`)
  for (const d of status.drift) lines.push(`drift: version ${d.version} ${d.name}: ${d.reason}`)
  if (status.drift.length > 0) lines.push('see docs/operations.md: drift and a database newer than the code')
  out.result(status, lines.join('\n'))
  if (status.drift.length > 0) return ExitCode.SCHEMA_MISMATCH
  return status.pending.length > 0 ? ExitCode.PENDING_MIGRATIONS : ExitCode.OK
}
