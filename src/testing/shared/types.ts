import type { StoreCapabilities, StoreGuarantee, UserEngineStore } from '../../store/store.js'

/** What the harness asks of a store factory. */
export interface StoreFactoryContext {
  /**
   * True: return a store over a database of its own, brand-new and never migrated (the readiness, migration
   * and outbox cases; the harness migrates it where a case needs that).
   * False: the store may share a database with other cases; the harness calls the idempotent `migrate()`.
   */
  readonly ownDatabase: boolean
  /** @deprecated The earlier name of `ownDatabase`, always equal to it; read `ownDatabase`. */
  readonly empty: boolean
}

export interface ConformanceOptions {
  /** Creates one store. The harness closes (or destroys) every store it creates. */
  createStore(ctx: StoreFactoryContext): Promise<UserEngineStore>
  /** Replaces `close()` for the stores the harness created (drop a database, stop a container). */
  destroyStore?(store: UserEngineStore): Promise<void>
  /**
   * Creates `count` stores over one database, each with its own connections, as separate processes would.
   * Needed by the cases that require `concurrentInstances`; without it they are skipped with the reason.
   */
  createSharedStores?(count: number, ctx: StoreFactoryContext): Promise<UserEngineStore[]>
  /**
   * Writes one row of the store's schema history (insert, or replace the row of that version), as a newer
   * release or a hand edit would. With `reopenStore`, the schema-history cases check that a store refuses a
   * database newer than the code or a drifted history; without both they are skipped with the reason.
   */
  plantSchemaVersion?(store: UserEngineStore, row: PlantedSchemaVersion): Promise<void>
  /** Opens a new store over the same database as `store` (as a restarted process would). */
  reopenStore?(store: UserEngineStore): Promise<UserEngineStore>
  /**
   * Makes the database under `store` refuse, from now on, every audit record whose action is
   * `refusal.auditAction` and every outbox event whose type is `refusal.eventType`, the way a failing
   * constraint would (a `CHECK` constraint or a trigger; the names are random and used by no other case).
   * The atomicity case then commits units whose audit record or event is refused after their record writes,
   * and checks that none of their records, audit or events exist: a store that commits the parts in separate
   * transactions fails it. Without this hook that case is skipped with the reason.
   */
  refuseRows?(store: UserEngineStore, refusal: RowRefusal): Promise<void>
  /** Run only these suites (names from `CONFORMANCE_SUITES`). Default: all. An empty or unknown name is VALIDATION. */
  suites?: readonly string[]
  /**
   * The store's capabilities when known up front, for runners that cannot skip a running test (jest): a case
   * needing a guarantee this leaves out is skipped when the cases are built, with the reason `the capabilities
   * option lacks the X capability`. It only narrows what runs: the `store.capabilities` of the store the
   * factory opens decide, and a guarantee claimed here that the store does not declare fails the case
   * (`capabilities option claims X but the store does not declare it`). Without it each case reads
   * `store.capabilities` when it runs and skips itself (`the store lacks the X capability`).
   */
  capabilities?: StoreCapabilities
  /** The differential suite's fast-check settings. */
  differential?: DifferentialOptions
  /** Lease length the outbox expiry cases wait out. Default 60 ms; raise it for a slow remote database. */
  leaseMs?: number
  /** A case that runs longer fails with a timeout. Default 60 000 ms. */
  caseTimeoutMs?: number
}

/** What `refuseRows` makes a database refuse: harness-chosen, `conformance.refused.` and hex digits. */
export interface RowRefusal {
  readonly auditAction: string
  readonly eventType: string
}

/** A schema history row the harness plants: a version, its name and the checksum recorded for it. */
export interface PlantedSchemaVersion {
  readonly version: number
  readonly name: string
  readonly checksum: string
}

export interface DifferentialOptions {
  /** Property runs per case. Default 25. */
  numRuns?: number
  /** Reproduces a failure: the seed printed in the failure message. */
  seed?: number
  /** Replays one shrunk counterexample: the path printed with the seed. */
  path?: string
  /** Longest generated operation sequence. Default 24. */
  maxOperations?: number
}

/** One runnable conformance check. */
export interface ConformanceCase {
  /** `suite: case`, unique. */
  readonly name: string
  readonly suite: string
  /** Set when the case is known not to apply to this store; the reason says why. Never run a skipped case. */
  readonly skip?: string
  /** Runs the case; resolves when it passed, throws `ConformanceSkip` when it found it does not apply. */
  run(): Promise<void>
}

export type ConformanceStatus = 'passed' | 'failed' | 'skipped'

export interface ConformanceResult {
  readonly name: string
  readonly suite: string
  readonly status: ConformanceStatus
  /** Why the case was skipped. */
  readonly reason?: string
  /** Why it failed. */
  readonly error?: unknown
  readonly durationMs: number
}

export interface ConformanceReport {
  readonly results: ConformanceResult[]
  readonly passed: number
  readonly failed: number
  readonly skipped: number
}

/** Anything shaped like node:test's, vitest's or jest's `test`. */
export type TestRegistrar = ((name: string, fn: (context?: unknown) => Promise<void>) => unknown) & {
  skip?: unknown
}

export interface RegisterConformanceTestsOptions extends ConformanceOptions {
  test: TestRegistrar
  /**
   * Registers a skipped test with its reason, e.g. for node:test
   * `(name, reason) => test(name, { skip: reason }, () => {})`. Without it `test.skip` is used when present.
   */
  skipTest?: (name: string, reason: string) => unknown
}

export interface RunConformanceOptions extends ConformanceOptions {
  /** Called after each case with its result (the CLI prints progress with it). */
  onProgress?: (result: ConformanceResult) => void
}

/** Thrown by a case that finds at run time that it does not apply (a missing capability). */
export class ConformanceSkip extends Error {
  override readonly name = 'ConformanceSkip'
  constructor(readonly reason: string) {
    super(`skipped: ${reason}`)
  }
}

/** A guarantee a case may require (`StoreCapabilities` without its deprecated aliases). */
export type Capability = StoreGuarantee
