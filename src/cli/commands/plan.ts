import { hasSchemaAdministration } from '../../store/schema-admin.js'
import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { UsageError } from '../shared/usage-error.js'

export async function planCommand({ store, out }: CommandContext): Promise<ExitCode> {
  if (!hasSchemaAdministration(store))
    throw new UsageError(`the ${store.kind} store cannot print a migration plan`)
  const sql = await store.migrationPlan()
  out.result({ sql }, sql.length === 0 ? '-- nothing to apply: the schema is up to date' : sql)
  return ExitCode.OK
}
