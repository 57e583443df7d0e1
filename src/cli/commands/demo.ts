import type { CommandContext } from '../command.js'
import { ExitCode } from '../exit-codes.js'
import { runWalkthrough } from '../walkthrough.js'

export async function demoCommand({ store }: CommandContext): Promise<ExitCode> {
  await runWalkthrough(store, (line) => process.stdout.write(`${line}\n`))
  return ExitCode.OK
}
