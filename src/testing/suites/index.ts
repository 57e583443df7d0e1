import type { SuiteDefinition } from '../shared/context.js'
import { auditSuite } from './audit.js'
import { closedStoreSuite } from './closed-store.js'
import { concurrencySuite } from './concurrency.js'
import { differentialSuite } from './differential.js'
import { identifiersSuite } from './identifiers.js'
import { migrationSuite } from './migration.js'
import { migratorRaceSuite } from './migrator-race.js'
import { outboxSuite } from './outbox.js'
import { paginationSuite } from './pagination.js'
import { readYourWritesSuite } from './read-your-writes.js'
import { readinessSuite } from './readiness.js'
import { recordsSuite } from './records.js'
import { redactionSuite } from './redaction.js'
import { rollbackSuite } from './rollback.js'
import { schemaHistorySuite } from './schema-history.js'
import { sessionsSuite } from './sessions.js'
import { tenantIsolationSuite } from './tenant-isolation.js'
import { tenantsSuite } from './tenants.js'
import { throttleSuite } from './throttle.js'
import { userSearchSuite } from './user-search.js'
import { versionsSuite } from './versions.js'

/** Every suite, in the order they run: foundations first, so the first failure is the most basic one. */
export const SUITES: readonly SuiteDefinition[] = [
  readinessSuite,
  migrationSuite,
  schemaHistorySuite,
  recordsSuite,
  tenantIsolationSuite,
  readYourWritesSuite,
  identifiersSuite,
  versionsSuite,
  rollbackSuite,
  paginationSuite,
  userSearchSuite,
  tenantsSuite,
  auditSuite,
  outboxSuite,
  throttleSuite,
  sessionsSuite,
  concurrencySuite,
  redactionSuite,
  closedStoreSuite,
  differentialSuite,
  migratorRaceSuite,
]
