import { abortedReader } from '../domain/caller-values.js'
import { isUserEngineError } from '../domain/errors.js'
import type { FactorRecord, TenantRecord } from '../domain/records.js'
import { Secret } from '../domain/secret.js'
import { assertFunction, assertIntegerInRange, optionsObject } from '../domain/validation.js'
import { recordUserChange } from '../store/change-user.js'
import type { UserEngineStore } from '../store/store.js'
import type { EngineContext } from './context.js'
import { AUDIT_ACTIONS, EVENT_TYPES } from './events.js'
import { openSeed, sealSeed } from './seed-cipher.js'
import { seedContext } from './totp.js'

/** One key id and how many factor secrets are sealed under it (counts only). */
export interface KeyUse {
  readonly keyId: string
  readonly sealed: number
  /** The keyring holds this key (false: seeds under it no longer open). */
  readonly inKeyring: boolean
  readonly current: boolean
}

/** Which keys seal how many seeds: a key other than the current one at 0 can be removed from the keyring. */
export interface KeyUsage {
  readonly currentKeyId: string
  /** Every key of the keyring and every key id the store counts, in id order. */
  readonly keys: readonly KeyUse[]
}

export async function keyUsage(ctx: EngineContext): Promise<KeyUsage> {
  const { sealedByKeyId } = await ctx.store.diagnostics()
  const ids = [...new Set([...Object.keys(ctx.keyring.keys), ...Object.keys(sealedByKeyId)])].sort()
  return {
    currentKeyId: ctx.keyring.currentKeyId,
    keys: ids.map((keyId) => ({
      keyId,
      sealed: Object.hasOwn(sealedByKeyId, keyId) ? (sealedByKeyId[keyId] ?? 0) : 0,
      inKeyring: Object.hasOwn(ctx.keyring.keys, keyId),
      current: keyId === ctx.keyring.currentKeyId,
    })),
  }
}

export interface ResealOptions {
  /** Factors per unit of work (one tenant's). 1..500, default 100. */
  readonly batchSize?: number
  /** Stop after this many batches (the run reports `complete: false`); a later run resumes. */
  readonly maxBatches?: number
  /** Stops between batches when aborted; a later run resumes. */
  readonly signal?: AbortSignal
  /** Called after every batch. */
  readonly onProgress?: (progress: ResealProgress) => void
}

export interface ResealProgress {
  readonly tenants: number
  readonly batches: number
  readonly resealed: number
  readonly failed: number
}

export interface ResealFailure {
  readonly tenantId: string
  readonly factorId: string
  /** KEY_NOT_FOUND (the seed's key is not in the keyring) or DATA_CORRUPTED. */
  readonly code: string
}

export interface ResealResult extends ResealProgress {
  /** True when every tenant was gone through (not stopped by `maxBatches` or the signal). */
  readonly complete: boolean
  /** Seeds left under each key id once the run ended (`keyUsage`). */
  readonly usage: KeyUsage
  /** Seeds that could not be opened (the first 100), left as they were. */
  readonly failures: readonly ResealFailure[]
}

/**
 * Re-seals every sealed factor secret under the keyring's current key, tenant by tenant, in bounded batches:
 * each batch is one unit of work that re-reads its factors, writes each re-sealed seed with its version
 * precondition and bumps each user with a `user.totp_resealed` event and a `totp.resealed` audit record.
 * Resumable by construction: a run (after a kill, or `maxBatches`) finds only the seeds still under an old
 * key. Seeds are re-sealed whatever their user's or tenant's status. A seed that does not open (its key is
 * gone, or the record is damaged) is reported and left as it was.
 */
export async function resealSeeds(ctx: EngineContext, options: ResealOptions = {}): Promise<ResealResult> {
  const o = optionsObject(options, 'resealSeeds options', ['batchSize', 'maxBatches', 'signal', 'onProgress'])
  const batchSize = o.batchSize === undefined ? 100 : o.batchSize
  assertIntegerInRange(batchSize, 'batchSize', 1, 500)
  if (o.maxBatches !== undefined) assertIntegerInRange(o.maxBatches, 'maxBatches', 1, Number.MAX_SAFE_INTEGER)
  const aborted = abortedReader(o.signal, 'signal')
  if (o.onProgress !== undefined) assertFunction(o.onProgress, 'onProgress')
  const onProgress = o.onProgress as ResealOptions['onProgress']
  const maxBatches = (o.maxBatches as number | undefined) ?? Number.POSITIVE_INFINITY
  const current = ctx.keyring.currentKeyId
  const failures: ResealFailure[] = []
  let failed = 0
  const progress = { tenants: 0, batches: 0, resealed: 0 }
  const stopped = () => aborted() || progress.batches >= maxBatches
  let complete = true
  tenants: for await (const tenant of everyTenant(ctx.store)) {
    progress.tenants++
    let after: string | undefined
    for (;;) {
      if (stopped()) {
        complete = false
        break tenants
      }
      const batch = await ctx.store.listSealedFactors(tenant.id, {
        excludeKeyId: current,
        limit: batchSize,
        ...(after === undefined ? {} : { after }),
      })
      if (batch.length === 0) break
      after = batch[batch.length - 1]!.id
      const result = await resealBatch(ctx, tenant.id, batch)
      progress.batches++
      progress.resealed += result.resealed
      failed += result.failures.length
      for (const f of result.failures) if (failures.length < 100) failures.push(f)
      onProgress?.({ ...progress, failed })
      if (batch.length < batchSize) break
    }
  }
  return { ...progress, failed, complete, usage: await keyUsage(ctx), failures }
}

async function* everyTenant(store: UserEngineStore): AsyncGenerator<TenantRecord> {
  let cursor: string | undefined
  do {
    const page = await store.listTenants({ limit: 100, ...(cursor === undefined ? {} : { cursor }) })
    yield* page.items
    cursor = page.nextCursor ?? undefined
  } while (cursor !== undefined)
}

async function resealBatch(
  ctx: EngineContext,
  tenantId: string,
  listed: readonly FactorRecord[],
): Promise<{ resealed: number; failures: ResealFailure[] }> {
  const userIds = [...new Set(listed.map((f) => f.userId))]
  const wanted = new Set(listed.map((f) => f.id))
  const current = ctx.keyring.currentKeyId
  return ctx.unit(tenantId, async (tx) => {
    let resealed = 0
    const failures: ResealFailure[] = []
    // Fresh reads in the unit: a factor changed since it was listed is judged as it is now.
    const users = await Promise.all(
      userIds.map(async (id) => ({ user: await tx.getUser(id), factors: await tx.listFactors(id) })),
    )
    for (const { user, factors } of users) {
      if (!user) continue
      const moved: { id: string; from: string }[] = []
      for (const f of factors) {
        if (!wanted.has(f.id) || f.keyId === null || f.keyId === current) continue
        const context = seedContext(tenantId, user.id, f.id)
        let seed: Buffer
        try {
          seed = openSeed(ctx.keyring, f.secret.reveal(), context)
        } catch (error) {
          if (!isUserEngineError(error)) throw error
          failures.push({ tenantId, factorId: f.id, code: error.code })
          continue
        }
        try {
          const sealed = sealSeed(ctx.keyring, seed, context)
          const { id, userId, kind, state } = f
          tx.putFactor(
            { id, userId, kind, state, secret: new Secret(sealed), keyId: sealed.keyId },
            { expectedVersion: f.version },
          )
          moved.push({ id: f.id, from: f.keyId })
        } finally {
          seed.fill(0)
        }
      }
      if (moved.length === 0) continue
      resealed += moved.length
      for (const m of moved) {
        tx.appendAudit({
          action: AUDIT_ACTIONS.totpResealed,
          userId: user.id,
          data: { factorId: m.id, fromKeyId: m.from, toKeyId: current },
        })
      }
      await recordUserChange(tx, user.id, user, {
        events: moved.map((m) => ({
          type: EVENT_TYPES.totpResealed,
          payload: { userId: user.id, factorId: m.id, keyId: current },
        })),
      })
    }
    return { resealed, failures }
  })
}
