import { newId } from '../../domain/ids.js'
import type { StoreCapabilities, StoreGuarantee, UserEngineStore } from '../../store/store.js'
import { assert } from './expect.js'
import {
  type Capability,
  type ConformanceOptions,
  ConformanceSkip,
  type StoreFactoryContext,
} from './types.js'

/**
 * Whether a store declares a guarantee: its own name, else the deprecated alias (`multiProcess`, `rowLocking`)
 * a store written against the earlier names sets.
 */
export function hasGuarantee(capabilities: StoreCapabilities, guarantee: StoreGuarantee): boolean {
  const alias = guarantee === 'concurrentInstances' ? capabilities.multiProcess : capabilities.rowLocking
  return (capabilities[guarantee] ?? alias) === true
}

/**
 * Why a case needing `guarantee` is skipped. The wording is stable (`the store lacks the X capability`): test
 * suites of providers match it.
 */
export function guaranteeSkip(guarantee: StoreGuarantee): string {
  return `the store lacks the ${guarantee} capability`
}

/**
 * Why a case is skipped up front when the `capabilities` option leaves out a guarantee. True whatever the
 * store declares: no store has been opened yet. It keeps the words `lacks the X capability`.
 */
export function optionGuaranteeSkip(guarantee: StoreGuarantee): string {
  return `the capabilities option lacks the ${guarantee} capability (skipped up front, before any store was opened)`
}

/** Why a case fails when the `capabilities` option claims a guarantee the store itself does not declare. */
export function overclaimedGuarantee(guarantee: StoreGuarantee): string {
  return `capabilities option claims ${guarantee} but the store does not declare it (store.capabilities): the store's own declaration decides, and the option may not claim more`
}

/** One case of a suite, as suites declare it. */
export interface CaseDefinition {
  readonly name: string
  /** Capabilities the case needs; a store lacking one reports the case skipped. */
  readonly requires?: readonly Capability[]
  /** The case needs `createSharedStores` (several stores over one database). */
  readonly needsSharedStores?: boolean
  /** The case needs `plantSchemaVersion` and `reopenStore` (a schema history row planted, then reopened). */
  readonly needsSchemaPlanting?: boolean
  /** The case needs `refuseRows` (the database refuses a chosen audit record or event). */
  readonly needsRowRefusal?: boolean
  /**
   * The case checks the optional `outbox.subscribe`: a store without it has the case skipped, with
   * SUBSCRIBE_SKIP. Known only once a store is open, so the case itself skips.
   */
  readonly needsSubscribe?: boolean
  run(ctx: CaseContext): Promise<void>
}

export const SCHEMA_PLANTING_SKIP =
  'the store factory cannot plant a schema history row and reopen the database (plantSchemaVersion, reopenStore)'

export const SUBSCRIBE_SKIP = 'the store has no outbox.subscribe; relays poll'

export const ROW_REFUSAL_SKIP =
  'the store factory cannot make its database refuse an audit record or an outbox event (refuseRows)'

export interface SuiteDefinition {
  readonly name: string
  /** The rule the suite checks, one line. */
  readonly description: string
  readonly cases: readonly CaseDefinition[]
}

export function suite(name: string, description: string, cases: readonly CaseDefinition[]): SuiteDefinition {
  return { name, description, cases }
}

/** Random, valid and distinct: every case works in tenants no other case touches. */
export function freshId(prefix: string): string {
  // The shape user-engine issues, so error messages name these ids (shownId withholds other strings).
  return newId(prefix)
}

/** The context a factory gets; `empty` repeats `ownDatabase` for factories written against the earlier name. */
function factoryContext(ownDatabase: boolean): StoreFactoryContext {
  return { ownDatabase, empty: ownDatabase }
}

/**
 * What a case gets: stores it does not have to close, fresh tenant ids, and the harness options.
 * Every store handed out is tracked and closed (or destroyed) when the case ends, pass or fail.
 */
export class CaseContext {
  readonly #created: UserEngineStore[] = []
  #store: Promise<UserEngineStore> | undefined
  #isolated: Promise<UserEngineStore> | undefined

  constructor(readonly options: ConformanceOptions) {}

  /** A migrated store; it may share its database with other cases. */
  store(): Promise<UserEngineStore> {
    this.#store ??= this.#migrated(false)
    return this.#store
  }

  /**
   * A migrated store over a database of its own. The outbox cases use it: a relay claims across tenants, so
   * another case's pending events would otherwise take part in what a case claims.
   */
  isolatedStore(): Promise<UserEngineStore> {
    this.#isolated ??= this.#migrated(true)
    return this.#isolated
  }

  /** A store over a database of its own, brand-new and never migrated. */
  async emptyStore(): Promise<UserEngineStore> {
    return this.track(await this.options.createStore(factoryContext(true)))
  }

  /**
   * Several stores over one database, as several processes would hold them: a database of their own (never
   * migrated) with `ownDatabase`, else one they may share with other cases.
   */
  async sharedStores(count: number, { ownDatabase }: { ownDatabase: boolean }): Promise<UserEngineStore[]> {
    const create = this.options.createSharedStores
    if (!create) {
      throw new ConformanceSkip(
        'the store factory cannot open several stores over one database (createSharedStores)',
      )
    }
    const stores = await create(count, factoryContext(ownDatabase))
    for (const s of stores) this.track(s)
    if (stores.length !== count) assert.fail(`createSharedStores(${count}) returned ${stores.length} stores`)
    return stores
  }

  /**
   * A fresh id of a tenant the store does not know: no record of it exists, so reads find nothing and commits
   * into it fail NOT_FOUND until the case creates the tenant (`newTenant()` does both in one step).
   */
  unknownTenantId(): string {
    return freshId('ct')
  }

  /** Creates a fresh tenant (its record only: no audit, no event) in `store`, by default the case's store. */
  async newTenant(store?: UserEngineStore): Promise<string> {
    const target = store ?? (await this.store())
    const tenantId = this.unknownTenantId()
    await target.transaction(tenantId, async (tx) => {
      tx.putTenant({ id: tenantId, name: 'Conformance', status: 'active' }, { mustNotExist: true })
    })
    return tenantId
  }

  get leaseMs(): number {
    return this.options.leaseMs ?? 60
  }

  /**
   * Throws ConformanceSkip unless the store declares every capability the case needs. The store's own
   * `capabilities` decide: an option claiming a guarantee the store does not declare fails the case, since
   * skipping would hide the mismatch and running would pass on a claim the store never made.
   */
  async checkRequirements(def: CaseDefinition): Promise<void> {
    for (const capability of def.requires ?? []) {
      if (hasGuarantee((await this.store()).capabilities, capability)) continue
      const claimed = this.options.capabilities
      if (claimed && hasGuarantee(claimed, capability)) assert.fail(overclaimedGuarantee(capability))
      throw new ConformanceSkip(guaranteeSkip(capability))
    }
    if (def.needsSharedStores && !this.options.createSharedStores) {
      throw new ConformanceSkip(
        'the store factory cannot open several stores over one database (createSharedStores)',
      )
    }
    if (def.needsSchemaPlanting && !(this.options.plantSchemaVersion && this.options.reopenStore)) {
      throw new ConformanceSkip(SCHEMA_PLANTING_SKIP)
    }
    if (def.needsRowRefusal && !this.options.refuseRows) throw new ConformanceSkip(ROW_REFUSAL_SKIP)
  }

  /** Closes every store the case created; the first failure is rethrown after all were tried. */
  async dispose(): Promise<void> {
    let failure: unknown
    for (const store of this.#created.splice(0)) {
      try {
        if (this.options.destroyStore) await this.options.destroyStore(store)
        else await store.close()
      } catch (error) {
        failure ??= error
      }
    }
    if (failure !== undefined) throw failure
  }

  async #migrated(ownDatabase: boolean): Promise<UserEngineStore> {
    const store = this.track(await this.options.createStore(factoryContext(ownDatabase)))
    await store.migrate()
    return store
  }

  /** Hands `store` to the case's clean-up: it is closed (or destroyed) when the case ends. */
  track(store: UserEngineStore): UserEngineStore {
    this.#created.push(store)
    return store
  }
}
