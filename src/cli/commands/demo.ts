import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { runWalkthrough } from '../shared/walkthrough.js'

export async function demoCommand({ store, out }: CommandContext): Promise<ExitCode> {
  await runWalkthrough(store, (line) => out.print(line))
  return ExitCode.OK
}
