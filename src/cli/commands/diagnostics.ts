import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'

export async function diagnosticsCommand({ store, out }: CommandContext): Promise<ExitCode> {
  const diagnostics = await store.diagnostics()
  const ready = (await store.readiness()).ready
  // Outbox lag needs a migrated schema; before that there is nothing to lag.
  const outbox = ready ? await store.outbox.lag() : { pending: 0, dead: 0, oldestPendingAgeMs: 0 }
  const lines = [
    `store ${diagnostics.store}, schema ${diagnostics.schemaVersion} of ${diagnostics.latestVersion}`,
    ...Object.entries(diagnostics.counts).map(([k, v]) => `  ${k.padEnd(18)} ${v}`),
    // Which keys still seal TOTP seeds (see `keys status` for the keyring's view).
    ...Object.entries(diagnostics.sealedByKeyId).map(([k, v]) => `  sealed under ${k}: ${v}`),
    `outbox lag: ${outbox.pending} pending, oldest ${outbox.oldestPendingAgeMs} ms, ${outbox.dead} dead`,
  ]
  out.result({ ...diagnostics, outbox }, lines.join('\n'))
  return ExitCode.OK
}
