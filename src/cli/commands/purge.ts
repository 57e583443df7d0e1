import { createExpiryPurger, type PurgeResult, purgeExpired } from '../../engine/maintenance.js'
import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { durationFlag, positiveIntFlag, untilSignal } from '../shared/flags.js'

const line = (r: PurgeResult) =>
  `purge: ${r.sessions} expired session(s), ${r.tokens} expired token(s) deleted in ${r.batches} batch(es) over ${r.tenants} tenant(s)`

/**
 * `purge`: deletes expired sessions and tokens of every tenant in bounded batches, once; with `--interval`, a
 * pass per interval until SIGINT/SIGTERM (the relay's way of running). Live records are never touched.
 */
export async function purgeCommand({ store, flags, out }: CommandContext): Promise<ExitCode> {
  const batchSize = positiveIntFlag(flags['batch-size'], '--batch-size', 10_000)
  const intervalMs = durationFlag(flags.interval, '--interval')
  if (intervalMs === undefined) {
    const result = await untilSignal((signal) =>
      purgeExpired(store, { ...(batchSize === undefined ? {} : { batchSize }), signal }),
    )
    out.result(result, line(result))
    return ExitCode.OK
  }
  const total = { sessions: 0, tokens: 0, passes: 0, failedPasses: 0 }
  const purger = createExpiryPurger({
    store,
    intervalMs,
    ...(batchSize === undefined ? {} : { batchSize }),
    onPass: (result, error) => {
      total.passes++
      if (result) {
        total.sessions += result.sessions
        total.tokens += result.tokens
        out.progress(line(result))
      } else {
        total.failedPasses++
        out.error(`purge: a pass failed: ${(error as { code?: string })?.code ?? 'FAILURE'}`)
      }
    },
  })
  out.progress(`purge: ${store.kind} store, a pass every ${intervalMs} ms until SIGINT or SIGTERM`)
  await untilSignal(async (signal) => {
    purger.start()
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  })
  await purger.stop()
  out.result(
    total,
    `purge: ${total.passes} pass(es), ${total.sessions} session(s) and ${total.tokens} token(s) deleted`,
  )
  return ExitCode.OK
}
