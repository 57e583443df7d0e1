import type { RelayProgress } from '../../outbox/relay.js'
import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { redactUrl } from '../shared/open-store.js'
import { UsageError } from '../shared/usage-error.js'

const progressLine = (p: RelayProgress) =>
  `relay: published ${p.published}, retried ${p.retried}, dead ${p.dead}, lost leases ${p.lostLeases}, ` +
  `pending ${p.pending}, oldest pending ${p.oldestPendingAgeMs} ms`

/**
 * Publishes committed outbox events to NATS JetStream until SIGINT/SIGTERM (then finishes the batch in flight
 * and releases what it has not published), or drains once with --once.
 */
export async function relayCommand({ store, flags, out }: CommandContext): Promise<ExitCode> {
  const nats = flags.nats
  if (typeof nats !== 'string') throw new UsageError('relay needs --nats URL')
  if (!(await store.readiness()).ready) {
    out.error('the schema is not migrated; run: user-engine migrate')
    return ExitCode.FAILURE
  }
  const stream = typeof flags.stream === 'string' ? flags.stream : undefined
  const subjectPrefix = typeof flags['subject-prefix'] === 'string' ? flags['subject-prefix'] : undefined
  out.progress(`relay: ${store.kind} store -> ${redactUrl(nats)} stream ${stream ?? 'USER_ENGINE'}`)
  // Loaded here, so only the relay command needs the NATS client installed.
  const { createJetStreamRelay } = await import('../../outbox/nats/index.js')
  const relay = await createJetStreamRelay({
    outbox: store.outbox,
    jetstream: {
      servers: nats,
      ...(stream === undefined ? {} : { stream }),
      ...(subjectPrefix === undefined ? {} : { subjectPrefix }),
    },
    progressIntervalMs: 5_000,
    onProgress: (p) => out.progress(progressLine(p)),
  })
  try {
    if (flags.once) {
      const result = await relay.drainOnce()
      const lag = await store.outbox.lag()
      out.result(
        {
          ...result,
          pending: lag.pending,
          deadInOutbox: lag.dead,
          oldestPendingAgeMs: lag.oldestPendingAgeMs,
        },
        `relay: drained once: published ${result.published}, retried ${result.retried}, dead ${result.dead}, ` +
          `${lag.pending} still pending, ${lag.dead} dead in outbox`,
      )
      return ExitCode.OK
    }
    relay.start()
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        out.progress(`relay: ${signal}: finishing the batch in flight`)
        process.off('SIGINT', onInt)
        process.off('SIGTERM', onTerm)
        resolve()
      }
      const onInt = () => stop('SIGINT')
      const onTerm = () => stop('SIGTERM')
      process.on('SIGINT', onInt)
      process.on('SIGTERM', onTerm)
    })
    await relay.stop()
    const p = await relay.progress()
    out.result(p, progressLine(p))
    return ExitCode.OK
  } finally {
    await relay.close()
  }
}
