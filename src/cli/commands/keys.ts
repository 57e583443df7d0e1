import { keyringFromEnv } from '../../engine/keyring.js'
import type { KeyUsage } from '../../engine/keys.js'
import { UserEngine } from '../../engine/user-engine.js'
import type { CommandContext } from '../shared/command.js'
import { ExitCode } from '../shared/exit-codes.js'
import { positiveIntFlag, untilSignal } from '../shared/flags.js'
import { UsageError } from '../shared/usage-error.js'

const usageLines = (usage: KeyUsage) =>
  usage.keys.map(
    (k) =>
      `  ${k.keyId.padEnd(20)} ${String(k.sealed).padStart(8)} sealed` +
      `${k.current ? '  (current)' : k.sealed === 0 ? '  (unused: can be removed)' : ''}` +
      `${k.inKeyring ? '' : '  NOT IN KEYRING'}`,
  )

/**
 * `keys status`: seeds sealed per key id (counts only). `keys reseal`: re-seals every seed under the current
 * key (USER_ENGINE_KEYS, USER_ENGINE_CURRENT_KEY) in bounded batches, progress on stderr; SIGINT/SIGTERM stop
 * after the batch in flight, and a later run resumes. Exit 0 when nothing is left under another key.
 */
export async function keysCommand({
  store,
  flags,
  positionals,
  out,
  env,
}: CommandContext): Promise<ExitCode> {
  const action = positionals[0]
  if (action !== 'status' && action !== 'reseal') throw new UsageError('keys needs status or reseal')
  if (positionals.length > 1) throw new UsageError(`keys ${action} takes no further arguments`)
  const engine = new UserEngine({ store, keyring: keyringFromEnv(env) })
  if (action === 'status') {
    const usage = await engine.keyUsage()
    out.result(usage, [`current key ${usage.currentKeyId}`, ...usageLines(usage)].join('\n'))
    return ExitCode.OK
  }
  const batchSize = positiveIntFlag(flags['batch-size'], '--batch-size', 500)
  const maxBatches = positiveIntFlag(flags['max-batches'], '--max-batches', Number.MAX_SAFE_INTEGER)
  const before = await engine.keyUsage()
  out.progress(`keys reseal: ${store.kind} store, sealing every seed under ${before.currentKeyId}`)
  const result = await untilSignal((signal) =>
    engine.resealSeeds({
      ...(batchSize === undefined ? {} : { batchSize }),
      ...(maxBatches === undefined ? {} : { maxBatches }),
      signal,
      onProgress: (p) =>
        out.progress(
          `keys reseal: batch ${p.batches}, ${p.resealed} re-sealed, ${p.failed} failed, ${p.tenants} tenant(s) reached`,
        ),
    }),
  )
  const left = result.usage.keys.filter((k) => !k.current && k.sealed > 0)
  const text = [
    `keys reseal: ${result.resealed} re-sealed, ${result.failed} failed, ${result.complete ? 'complete' : 'stopped early (run again to resume)'}`,
    ...usageLines(result.usage),
    ...result.failures.map((f) => `  failed: tenant ${f.tenantId} factor ${f.factorId}: ${f.code}`),
  ].join('\n')
  out.result(result, text)
  return result.complete && left.length === 0 && result.failed === 0 ? ExitCode.OK : ExitCode.FAILURE
}
