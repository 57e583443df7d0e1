import { abortedReader } from '../domain/caller-values.js'
import { ValidationError } from '../domain/errors.js'
import {
  assertFunction,
  assertIntegerInRange,
  assertTimeMs,
  isIsoInstant,
  MAX_PURGE_BATCH,
  optionsObject,
} from '../domain/validation.js'
import type { UserEngineStore } from '../store/store.js'

export interface PurgeOptions {
  /** Records per `store.purgeExpired` call (one statement). 1..10 000, default 1000. */
  readonly batchSize?: number
  /** Stop after this many calls; a later run goes on. Default: until nothing expired is left. */
  readonly maxBatches?: number
  /** What counts as expired: `expiresAt` before this time in ms. Default: now. */
  readonly now?: number
  readonly signal?: AbortSignal
}

export interface PurgeResult {
  readonly sessions: number
  readonly tokens: number
  readonly tenants: number
  readonly batches: number
  /** False when stopped by `maxBatches` or the signal before every tenant was gone through. */
  readonly complete: boolean
}

const PURGE_OPTION_KEYS = ['batchSize', 'maxBatches', 'now', 'signal']

/** The engine's `purgeExpired`: `now` defaults to the engine's clock. */
export function purgeExpiredByClock(
  store: UserEngineStore,
  clock: () => number,
  options: PurgeOptions | undefined,
): Promise<PurgeResult> {
  // Checked before the spread: spreading null, 42 or an array would quietly purge with the defaults.
  const given = optionsObject(options, 'purgeExpired options', PURGE_OPTION_KEYS)
  return purgeExpired(store, { now: clock(), ...given })
}

/** The two store methods a purge calls: anything without them is VALIDATION, not a TypeError mid-purge. */
function assertPurgingStore(store: unknown): void {
  const s = store as Partial<UserEngineStore> | null
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.purgeExpired !== 'function' ||
    typeof s.listTenants !== 'function'
  ) {
    throw new ValidationError('store must be a UserEngineStore', { details: { field: 'store' } })
  }
}

/**
 * Deletes expired sessions and tokens of every tenant, in bounded batches (store rule 11: one statement per
 * batch, only records that were already expired; live ones are never touched). Needs no keyring: the CLI's
 * `purge` and a service's timer call it with the store alone.
 */
export async function purgeExpired(store: UserEngineStore, options: PurgeOptions = {}): Promise<PurgeResult> {
  assertPurgingStore(store)
  const o = optionsObject(options, 'purgeExpired options', PURGE_OPTION_KEYS)
  const batchSize = o.batchSize === undefined ? 1000 : o.batchSize
  assertIntegerInRange(batchSize, 'batchSize', 1, MAX_PURGE_BATCH)
  if (o.maxBatches !== undefined) assertIntegerInRange(o.maxBatches, 'maxBatches', 1, Number.MAX_SAFE_INTEGER)
  const now = o.now === undefined ? Date.now() : o.now
  assertTimeMs(now, 'now')
  const aborted = abortedReader(o.signal, 'signal')
  const before = new Date(now).toISOString()
  // A time Date can hold may still be past what an ISO instant writes (years beyond 9999): name `now`, not
  // the `before` the store would have refused.
  if (!isIsoInstant(before)) {
    throw new ValidationError('now must be a time before the year 10000', { details: { field: 'now' } })
  }
  const maxBatches = (o.maxBatches as number | undefined) ?? Number.POSITIVE_INFINITY
  const total = { sessions: 0, tokens: 0, tenants: 0, batches: 0 }
  let cursor: string | undefined
  do {
    const page = await store.listTenants({ limit: 100, ...(cursor === undefined ? {} : { cursor }) })
    for (const tenant of page.items) {
      total.tenants++
      for (;;) {
        if (aborted() || total.batches >= maxBatches) return { ...total, complete: false }
        const done = await store.purgeExpired(tenant.id, { before, limit: batchSize })
        total.batches++
        total.sessions += done.sessions
        total.tokens += done.tokens
        if (done.sessions + done.tokens < batchSize) break
      }
    }
    cursor = page.nextCursor ?? undefined
  } while (cursor !== undefined)
  return { ...total, complete: true }
}

export interface ExpiryPurgerOptions {
  readonly store: UserEngineStore
  /** Time between passes. Default 5 minutes. */
  readonly intervalMs?: number
  readonly batchSize?: number
  /** Called after every pass, and with the error when a pass failed (the loop goes on). */
  readonly onPass?: (result: PurgeResult | null, error?: unknown) => void
}

export interface ExpiryPurger {
  /** Starts the loop (a pass at once, then one per interval). */
  start(): void
  /** Stops the loop and waits for the pass in flight. */
  stop(): Promise<void>
  /** One pass now. */
  runOnce(): Promise<PurgeResult>
}

/** A loop that purges expired sessions and tokens every interval, the way a relay drains the outbox. */
export function createExpiryPurger(options: ExpiryPurgerOptions): ExpiryPurger {
  const o = optionsObject(options, 'createExpiryPurger options', [
    'store',
    'intervalMs',
    'batchSize',
    'onPass',
  ])
  const store = o.store as UserEngineStore
  assertPurgingStore(store)
  const intervalMs = o.intervalMs === undefined ? 300_000 : o.intervalMs
  assertIntegerInRange(intervalMs, 'intervalMs', 10, 86_400_000)
  // Checked now, not at the first pass: a bad value would otherwise fail every pass, reported only to onPass.
  if (o.batchSize !== undefined) assertIntegerInRange(o.batchSize, 'batchSize', 1, MAX_PURGE_BATCH)
  if (o.onPass !== undefined) assertFunction(o.onPass, 'onPass')
  const batchSize = o.batchSize as number | undefined
  const onPass = o.onPass as ExpiryPurgerOptions['onPass']
  let timer: NodeJS.Timeout | undefined
  let inFlight: Promise<unknown> | undefined
  let controller: AbortController | undefined
  const runOnce = (signal?: AbortSignal) =>
    purgeExpired(store, {
      ...(batchSize === undefined ? {} : { batchSize }),
      ...(signal === undefined ? {} : { signal }),
    })
  const tick = () => {
    const signal = controller?.signal
    inFlight = runOnce(signal)
      .then(
        (result) => onPass?.(result),
        (error: unknown) => onPass?.(null, error),
      )
      .finally(() => {
        inFlight = undefined
        if (controller && !controller.signal.aborted) timer = setTimeout(tick, intervalMs)
      })
  }
  return {
    start() {
      if (controller && !controller.signal.aborted) return
      controller = new AbortController()
      tick()
    },
    async stop() {
      controller?.abort()
      clearTimeout(timer)
      await inFlight
    },
    runOnce: () => runOnce(),
  }
}
