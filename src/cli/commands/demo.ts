import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { UsageError } from '../shared/usage-error.js'
import { runWalkthrough } from '../shared/walkthrough.js'

export async function demoCommand({ store, flags, out }: CommandContext): Promise<ExitCode> {
  // The walkthrough is prose for a person; there is no result to print as JSON.
  if (flags.json) throw new UsageError('demo prints a walkthrough as text; it has no --json output')
  await runWalkthrough(store, (line) => out.print(line))
  return ExitCode.OK
}
