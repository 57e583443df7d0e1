import type { SuiteDefinition } from '../shared/context.js'
import { auditSuite } from './audit.js'
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
import { tenantIsolationSuite } from './tenant-isolation.js'
import { throttleSuite } from './throttle.js'
import { versionsSuite } from './versions.js'

/** Every suite, in the order they run: foundations first, so the first failure is the most basic one. */
export const SUITES: readonly SuiteDefinition[] = [
  readinessSuite,
  migrationSuite,
  recordsSuite,
  tenantIsolationSuite,
  readYourWritesSuite,
  identifiersSuite,
  versionsSuite,
  rollbackSuite,
  paginationSuite,
  auditSuite,
  outboxSuite,
  throttleSuite,
  concurrencySuite,
  redactionSuite,
  differentialSuite,
  migratorRaceSuite,
]
