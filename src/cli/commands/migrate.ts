import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'

export async function migrateCommand({ store, out }: CommandContext): Promise<ExitCode> {
  out.progress(`migrate: ${store.kind} store, checking schema`)
  const result = await store.migrate()
  for (const a of result.applied)
    out.progress(`migrate: applied ${a.version} ${a.name} in ${a.executionMs} ms`)
  const text =
    result.applied.length === 0
      ? `schema is up to date at version ${result.toVersion}; nothing applied`
      : `migrated from version ${result.fromVersion} to ${result.toVersion} (${result.applied.length} applied, lock wait ${result.lockWaitMs} ms)`
  out.result(result, text)
  return ExitCode.OK
}
