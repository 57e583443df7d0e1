#!/usr/bin/env node
import { main } from './main.js'

// Once a command is done, nothing should hold the process; a connection a broker or database left hanging
// (a partition: no FIN, no answer) would, for minutes. Give handles a few seconds to close on their own,
// then exit once stdout and stderr have flushed (the unref'd timer never delays a clean exit).
const EXIT_GRACE_MS = 5000

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
  setTimeout(() => {
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)))
  }, EXIT_GRACE_MS).unref()
})
