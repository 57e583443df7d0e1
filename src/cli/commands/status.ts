import { LATEST_SCHEMA_VERSION } from '../../migrations/manifest.js'
import { hasSchemaAdministration, type SchemaStatus } from '../../store/schema-admin.js'
import type { CommandContext } from '../command.js'
import { ExitCode } from '../exit-codes.js'

export async function statusCommand({ store, out }: CommandContext): Promise<ExitCode> {
  let status: SchemaStatus
  if (hasSchemaAdministration(store)) {
    status = await store.schemaStatus()
  } else {
    const r = await store.readiness()
    const pending = Array.from(
      { length: LATEST_SCHEMA_VERSION - r.schemaVersion },
      (_, i) => r.schemaVersion + i + 1,
    )
    status = { currentVersion: r.schemaVersion, latestVersion: r.latestVersion, pending, drift: [] }
  }
  const lines = [`schema version ${status.currentVersion} of ${status.latestVersion}`]
  if (status.pending.length > 0)
    lines.push(`pending: ${status.pending.join(', ')} (run: user-engine migrate)`)
  for (const d of status.drift) lines.push(`drift: version ${d.version} ${d.name}: ${d.reason}`)
  out.result(status, lines.join('\n'))
  if (status.drift.length > 0) return ExitCode.SCHEMA_MISMATCH
  return status.pending.length > 0 ? ExitCode.PENDING_MIGRATIONS : ExitCode.OK
}
